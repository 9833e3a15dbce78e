//! The deployment's smoke test: the CodeDeploy PreTraffic hook inlined in `infra/template.yaml`, run with Python
//! as Lambda runs it, against the three Lambda binaries on DynamoDB Local. A stand-in for the Lambda Invoke API
//! hands its invocations to the binaries (each "version" is a binary), and a stand-in for CodeDeploy's API records
//! the status the hook reports. A hook that passes a broken version, or fails a sound one, or reports nothing,
//! would let a bad deployment through or stop every good one.

use acidizer_store_dynamodb::create_missing_tables;
use acidizer_tests::lambda::Gateway;
use acidizer_tests::{binaries, dynamodb_local};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The functions the stand-in invokes, by the name (a "version") the hook is given; and what CodeDeploy was told.
struct Aws {
    functions: HashMap<&'static str, Gateway>,
    reports: Mutex<Vec<Value>>,
}

async fn invoke(State(aws): State<Arc<Aws>>, Path(name): Path<String>, body: Bytes) -> Response {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // "crowded:1" is acidizer-api on a counter clients keep changing: 150 changes land before each history read.
    let name = if name == "crowded:1" {
        if event["rawPath"].as_str().is_some_and(|path| path.ends_with("/history")) {
            for _ in 0..CLIENT_CHANGES {
                smoke_counter(&aws.functions["api:7"], "POST", "/counters/smoke/increment").await;
            }
        }
        "api:7".to_owned()
    } else {
        name
    };
    let answer = match aws.functions.get(name.as_str()) {
        Some(function) => function.invoke(event).await,
        None => Err(format!("{name} crashed")),
    };
    match answer {
        Ok(payload) => payload.to_string().into_response(),
        Err(error) => {
            let payload = json!({"errorMessage": error, "errorType": "Runtime.ExitError"}).to_string();
            (StatusCode::OK, [("X-Amz-Function-Error", "Unhandled")], payload).into_response()
        }
    }
}

async fn codedeploy(State(aws): State<Arc<Aws>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or_default();
    if target != "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus" {
        return (StatusCode::BAD_REQUEST, format!("unexpected {target}")).into_response();
    }
    let report: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = report["lifecycleEventHookExecutionId"].clone();
    aws.reports.lock().unwrap().push(report);
    json!({"lifecycleEventHookExecutionId": id}).to_string().into_response()
}

/// How many changes clients make of the smoke counter while the "crowded" deployment's hook runs.
const CLIENT_CHANGES: usize = 150;

/// Lambda's ListVersionsByFunction, a version a page (so that the hook must follow the pages): `$LATEST`, then 1 up
/// to the highest `NAME:N` the stand-in has. Versions below it are not invocable ("crashed"): a hook that does not
/// take the newest fails.
async fn versions(
    State(aws): State<Arc<Aws>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let newest = aws
        .functions
        .keys()
        .filter_map(|key| key.strip_prefix(&format!("{name}:")).and_then(|n| n.parse::<u32>().ok()))
        .max();
    let Some(newest) = newest else {
        let error = json!({"Type": "User", "Message": format!("Function not found: {name}")});
        return (StatusCode::NOT_FOUND, [("x-amzn-errortype", "ResourceNotFoundException")], error.to_string())
            .into_response();
    };
    let all: Vec<String> = std::iter::once("$LATEST".to_owned()).chain((1..=newest).map(|n| n.to_string())).collect();
    let at: usize = query.get("Marker").and_then(|m| m.parse().ok()).unwrap_or(0);
    let version = json!({"FunctionName": name, "Version": all[at]});
    let next = (at + 1 < all.len()).then(|| (at + 1).to_string());
    json!({"Versions": [version], "NextMarker": next}).to_string().into_response()
}

/// The hook's code, as the template inlines it.
fn hook_code() -> String {
    let template = std::fs::read_to_string(binaries::repo_root().join("infra/template.yaml")).expect("the template");
    let template: serde_norway::Value = serde_norway::from_str(&template).expect("YAML");
    let code = &template["Resources"]["SmokeHookFunction"]["Properties"]["InlineCode"];
    code.as_str().expect("the hook's inline code").to_owned()
}

/// Runs the hook's handler once for a deployment, the versions it tests named as `versions` (acidizer-ws by its
/// name alone: the hook takes its newest version); the status reported.
fn run_hook(aws_url: &str, code_dir: &std::path::Path, deployment: &str, versions: [&str; 3]) -> String {
    let script = "import sys\nsys.path.insert(0, sys.argv[1])\nimport index\n\
                  print(index.handler({'DeploymentId': sys.argv[2], 'LifecycleEventHookExecutionId': 'hook-' + sys.argv[2]}, None))";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(code_dir)
        .arg(deployment)
        .env("AWS_ENDPOINT_URL", aws_url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("API_VERSION", versions[0])
        .env("WS_FUNCTION", versions[1])
        .env("STREAM_VERSION", versions[2])
        .env("SMOKE_COUNTER", "smoke")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the hook itself never fails:\n{stdout}\n{stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_passes_sound_versions_and_fails_a_broken_one() {
    let emulator = dynamodb_local::shared();
    let dynamodb = dynamodb_local::client(&emulator.endpoint);
    let suffix = uuid::Uuid::new_v4().simple();
    let (counter_table, connections_table) = (format!("hook-c-{suffix}"), format!("hook-w-{suffix}"));
    create_missing_tables(&dynamodb, &counter_table, Some(&connections_table)).await.unwrap();
    let mut env = dynamodb_local::aws_env(&emulator.endpoint);
    env.push(("COUNTER_TABLE", counter_table));
    env.push(("CONNECTIONS_TABLE", connections_table));
    // Neither check posts to a connection.
    env.push(("WEBSOCKET_ENDPOINT", format!("http://127.0.0.1:{}/prod", binaries::free_port())));
    let mut functions = HashMap::new();
    for (version, binary) in [("api:7", "acidizer-api"), ("ws:3", "acidizer-ws"), ("stream:5", "acidizer-stream")] {
        functions.insert(version, Gateway::start(&binaries::lambda(binary), &env, 1).await);
    }
    // The smoke counter is public: clients may take it to the ceiling (here 1), or fill its subscribers (here 1).
    let with = |name: &'static str, value: &str| {
        let mut env = env.clone();
        env.push((name, value.to_owned()));
        env
    };
    let ceiling = Gateway::start(&binaries::lambda("acidizer-api"), &with("COUNTER_MAX", "1"), 1).await;
    functions.insert("at-ceiling:1", ceiling);
    let full = Gateway::start(&binaries::lambda("acidizer-ws"), &with("MAX_SUBSCRIBERS_PER_COUNTER", "1"), 1).await;
    functions.insert("full:1", full);
    let aws = Arc::new(Aws { functions, reports: Mutex::new(Vec::new()) });
    let app = Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .route("/2015-03-31/functions/{name}/versions", get(versions))
        .route("/", post(codedeploy))
        .with_state(Arc::clone(&aws));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let aws_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let code_dir = tempfile::tempdir().unwrap();
    std::fs::write(code_dir.path().join("index.py"), hook_code()).unwrap();

    let run = |deployment: &'static str, versions: [&'static str; 3]| {
        let (url, dir) = (aws_url.clone(), code_dir.path().to_owned());
        tokio::task::spawn_blocking(move || run_hook(&url, &dir, deployment, versions))
    };
    let cases = [
        ("sound", ["api:7", "ws", "stream:5"], "Succeeded"),
        ("again", ["api:7", "ws", "stream:5"], "Succeeded"),
        ("api-crashes", ["broken:1", "ws", "stream:5"], "Failed"),
        // acidizer-api given a WebSocket event does not answer $connect's refusal, nor a stream batch.
        ("ws-is-not-ws", ["api:7", "api", "stream:5"], "Failed"),
        ("ws-is-missing", ["api:7", "nothing", "stream:5"], "Failed"),
        ("stream-is-not-stream", ["api:7", "ws", "api:7"], "Failed"),
    ];
    for (deployment, versions, expected) in cases {
        let printed = run(deployment, versions).await.unwrap();
        assert_eq!(reported(&aws, deployment, &printed), expected, "{deployment}:\n{printed}");
    }
    // The smoke counter went up and back down each time the api's checks ran through.
    let counter = smoke_counter(&aws.functions["api:7"], "GET", "/counters/smoke").await;
    assert_eq!(counter["value"], 0, "each run puts the smoke counter back: {counter}");
    assert_eq!(counter["seq"], 10, "two changes for each of the five runs that reached the api: {counter}");

    // Clients took the counter to the ceiling, and filled its subscribers, and change it all the while: the hook
    // still passes a sound deployment (a decrement makes room, a full counter's refusal is an answer, the record
    // it checks is its own, not among the newest).
    let at_ceiling = smoke_counter(&aws.functions["at-ceiling:1"], "POST", "/counters/smoke/increment").await;
    assert_eq!(at_ceiling["value"], 1, "{at_ceiling}");
    let mut subscriber = aws.functions["full:1"]
        .invoke(json!({"requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "b3RoZXI=",
            "requestId": "other", "apiId": "smoke", "stage": "smoke", "domainName": "smoke.invalid",
            "connectedAt": 0, "requestTimeEpoch": 0, "messageDirection": "IN", "requestTime": "01/Jan/2026:00:00:00 +0000"},
            "headers": {"host": "smoke.invalid"}, "queryStringParameters": {"counter": "smoke"}, "isBase64Encoded": false}))
        .await
        .unwrap();
    assert_eq!(subscriber["statusCode"], 200, "another subscriber fills the counter: {subscriber}");
    let printed = run("at-ceiling", ["at-ceiling:1", "full", "stream:5"]).await.unwrap();
    assert_eq!(reported(&aws, "at-ceiling", &printed), "Succeeded", "{printed}");
    let counter = smoke_counter(&aws.functions["api:7"], "GET", "/counters/smoke").await;
    assert_eq!(counter["value"], 1, "the hook left the counter at the ceiling, as it found it: {counter}");
    let printed = run("crowded", ["crowded:1", "full", "stream:5"]).await.unwrap();
    assert_eq!(reported(&aws, "crowded", &printed), "Succeeded", "{printed}");
    let counter = smoke_counter(&aws.functions["api:7"], "GET", "/counters/smoke").await;
    let expected = 1 + CLIENT_CHANGES;
    assert_eq!(counter["value"], expected, "the hook put back what it changed, among the clients' changes: {counter}");
    subscriber = aws.functions["full:1"]
        .invoke(json!({"requestContext": {"routeKey": "$disconnect", "eventType": "DISCONNECT", "connectionId": "b3RoZXI=",
            "requestId": "other-gone", "apiId": "smoke", "stage": "smoke", "domainName": "smoke.invalid",
            "connectedAt": 0, "requestTimeEpoch": 0, "messageDirection": "IN", "requestTime": "01/Jan/2026:00:00:00 +0000"},
            "headers": {"host": "smoke.invalid"}, "isBase64Encoded": false}))
        .await
        .unwrap();
    assert_eq!(subscriber["statusCode"], 200, "{subscriber}");
}

/// The status the hook reported to CodeDeploy for `deployment`.
fn reported(aws: &Aws, deployment: &str, printed: &str) -> Value {
    let reports = aws.reports.lock().unwrap().clone();
    let report = reports
        .iter()
        .find(|r| r["deploymentId"] == deployment)
        .unwrap_or_else(|| panic!("{deployment}: the hook reports to CodeDeploy: {reports:?}\n{printed}"));
    assert_eq!(report["lifecycleEventHookExecutionId"], format!("hook-{deployment}"));
    report["status"].clone()
}

/// One request to `function` (an acidizer-api) for the smoke counter; its answer's JSON body.
async fn smoke_counter(function: &Gateway, method: &str, path: &str) -> Value {
    let answer = function
        .invoke(json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {"host": "smoke.invalid"}, "isBase64Encoded": false,
            "requestContext": {"accountId": "0", "apiId": "smoke", "domainName": "smoke.invalid",
                "domainPrefix": "smoke", "requestId": "read", "routeKey": "$default", "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                    "userAgent": "test"}}
        }))
        .await
        .unwrap();
    serde_json::from_str(answer["body"].as_str().unwrap()).unwrap()
}

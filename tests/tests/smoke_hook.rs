//! The deployment's smoke test: the CodeDeploy PreTraffic hook inlined in `infra/template.yaml`, run with Python
//! as Lambda runs it, against the three Lambda binaries on DynamoDB Local. A stand-in for CodeDeploy's API says
//! which function each deployment moves and to which version, and records the status the hook reports; a stand-in
//! for the Lambda Invoke API hands its invocations to the binaries (each `name:qualifier` is a binary). A hook that
//! passes a broken version, or fails a sound one, or tests another version than the one moved, or reports nothing,
//! would let a bad deployment through or stop every good one.

use acidizer_store_dynamodb::create_missing_tables;
use acidizer_tests::lambda::Gateway;
use acidizer_tests::{binaries, dynamodb_local};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The functions the stand-in invokes by `name:qualifier`; the function and version each deployment moves; and
/// what CodeDeploy was told.
struct Aws {
    functions: HashMap<&'static str, Arc<Gateway>>,
    deployments: HashMap<&'static str, (&'static str, &'static str)>,
    reports: Mutex<Vec<Value>>,
}

/// How many changes clients make of the smoke counter while the "crowded" deployment's hook runs.
const CLIENT_CHANGES: usize = 150;

async fn invoke(State(aws): State<Arc<Aws>>, Path(name): Path<String>, body: Bytes) -> Response {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // Version 12 of acidizer-api is the live one on a counter clients keep changing: 150 changes land before each
    // history read.
    if name == "api:12" && event["rawPath"].as_str().is_some_and(|path| path.ends_with("/history")) {
        for _ in 0..CLIENT_CHANGES {
            smoke_counter(&aws.functions["api:live"], "POST", "/counters/smoke/increment").await;
        }
    }
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
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let deployment = request["deploymentId"].as_str().unwrap_or_default();
    let moved = aws.deployments.get(deployment);
    match (target.strip_prefix("CodeDeploy_20141006."), moved) {
        (Some("ListDeploymentTargets"), Some(_)) => json!({"targetIds": [format!("target-{deployment}")]}),
        (Some("GetDeploymentTarget"), Some((function, version))) => json!({"deploymentTarget": {
            "deploymentTargetType": "LambdaTarget",
            "lambdaTarget": {"deploymentId": deployment, "targetId": request["targetId"],
                "lambdaFunctionInfo": {"functionName": function, "functionAlias": "live", "currentVersion": "1",
                    "targetVersion": version}}}}),
        (Some("PutLifecycleEventHookExecutionStatus"), _) => {
            let id = request["lifecycleEventHookExecutionId"].clone();
            aws.reports.lock().unwrap().push(request);
            json!({"lifecycleEventHookExecutionId": id})
        }
        _ => return (StatusCode::BAD_REQUEST, format!("unexpected {target} for {deployment}")).into_response(),
    }
    .to_string()
    .into_response()
}

/// The hook's code, as the template inlines it.
fn hook_code() -> String {
    let template = std::fs::read_to_string(binaries::repo_root().join("infra/template.yaml")).expect("the template");
    let template: serde_norway::Value = serde_norway::from_str(&template).expect("YAML");
    let code = &template["Resources"]["SmokeHookFunction"]["Properties"]["InlineCode"];
    code.as_str().expect("the hook's inline code").to_owned()
}

/// Runs the hook's handler once for `deployment`, with the stage's functions named `api`, `ws` and `stream`;
/// what it printed.
fn run_hook(aws_url: &str, code_dir: &std::path::Path, deployment: &str) -> String {
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
        .env("API_FUNCTION", "api")
        .env("WS_FUNCTION", "ws")
        .env("STREAM_FUNCTION", "stream")
        .env("SMOKE_COUNTER", "smoke")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the hook itself never fails:\n{stdout}\n{stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_tests_the_version_a_deployment_moves_and_fails_a_broken_one() {
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
    let start = |binary: &'static str, extra: Option<(&'static str, &'static str)>| {
        let mut env = env.clone();
        env.extend(extra.map(|(name, value)| (name, value.to_owned())));
        async move { Arc::new(Gateway::start(&binaries::lambda(binary), &env, 1).await) }
    };
    let (api, ws, stream) =
        (start("acidizer-api", None).await, start("acidizer-ws", None).await, start("acidizer-stream", None).await);
    // The smoke counter is public: clients may take it to the ceiling (here 1), or fill its subscribers (here 1).
    let ceiling = start("acidizer-api", Some(("COUNTER_MAX", "1"))).await;
    let full = start("acidizer-ws", Some(("MAX_SUBSCRIBERS_PER_COUNTER", "1"))).await;
    let functions = HashMap::from([
        ("api:live", Arc::clone(&api)),
        ("api:7", Arc::clone(&api)),
        ("api:11", ceiling),
        ("api:12", Arc::clone(&api)),
        ("ws:live", Arc::clone(&ws)),
        ("ws:3", Arc::clone(&ws)),
        // acidizer-api where a WebSocket or a stream function should be: it answers neither.
        ("ws:4", Arc::clone(&api)),
        ("ws:13", full),
        ("stream:live", Arc::clone(&stream)),
        ("stream:5", Arc::clone(&stream)),
        ("stream:6", Arc::clone(&api)),
    ]);
    let deployments = HashMap::from([
        ("sound", ("api", "7")),
        ("again", ("api", "7")),
        ("an-arn", ("arn:aws:lambda:us-east-1:000000000000:function:api", "7")),
        ("api-crashes", ("api", "8")),
        ("ws-moves", ("ws", "3")),
        ("ws-is-not-ws", ("ws", "4")),
        ("stream-moves", ("stream", "5")),
        ("stream-is-not-stream", ("stream", "6")),
        ("not-the-stages", ("other", "1")),
        ("at-ceiling", ("api", "11")),
        ("full", ("ws", "13")),
        ("crowded", ("api", "12")),
    ]);
    let aws = Arc::new(Aws { functions, deployments, reports: Mutex::new(Vec::new()) });
    let app = Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .route("/", post(codedeploy))
        .with_state(Arc::clone(&aws));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let aws_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let code_dir = tempfile::tempdir().unwrap();
    std::fs::write(code_dir.path().join("index.py"), hook_code()).unwrap();
    let run = |deployment: &'static str| {
        let (url, dir) = (aws_url.clone(), code_dir.path().to_owned());
        tokio::task::spawn_blocking(move || run_hook(&url, &dir, deployment))
    };

    // (deployment, what it reports, whether acidizer-api's checks ran through: two changes of the counter each)
    let cases = [
        ("sound", "Succeeded", true),
        ("again", "Succeeded", true),
        ("an-arn", "Succeeded", true),
        ("api-crashes", "Failed", false),
        ("ws-moves", "Succeeded", true),
        ("ws-is-not-ws", "Failed", true),
        ("stream-moves", "Succeeded", true),
        ("stream-is-not-stream", "Failed", true),
        ("not-the-stages", "Failed", false),
    ];
    for (deployment, expected, _) in cases {
        let printed = run(deployment).await.unwrap();
        assert_eq!(reported(&aws, deployment, &printed), expected, "{deployment}:\n{printed}");
    }
    let printed = run("sound").await.unwrap();
    assert!(printed.contains("testing api:7, ws:live, stream:live"), "the moved version, the others live:\n{printed}");
    let printed = run("ws-moves").await.unwrap();
    assert!(printed.contains("testing api:live, ws:3, stream:live"), "{printed}");
    // The smoke counter went up and back down each time the api's checks ran through.
    let counter = smoke_counter(&api, "GET", "/counters/smoke").await;
    assert_eq!(counter["value"], 0, "each run puts the smoke counter back: {counter}");
    let ran_through = cases.iter().filter(|(_, _, through)| *through).count() + 2;
    assert_eq!(counter["seq"], 2 * ran_through, "two changes for each run that reached the api: {counter}");

    // Clients took the counter to the ceiling, or filled its subscribers, or change it all the while: the hook
    // still passes a sound deployment (a decrement makes room, a full counter's refusal is an answer, the record
    // it checks is its own, not among the newest).
    let at_ceiling = smoke_counter(&aws.functions["api:11"], "POST", "/counters/smoke/increment").await;
    assert_eq!(at_ceiling["value"], 1, "{at_ceiling}");
    let printed = run("at-ceiling").await.unwrap();
    assert_eq!(reported(&aws, "at-ceiling", &printed), "Succeeded", "{printed}");
    let counter = smoke_counter(&api, "GET", "/counters/smoke").await;
    assert_eq!(counter["value"], 1, "the hook left the counter at the ceiling, as it found it: {counter}");
    let subscriber = subscriber_event("$connect", "CONNECT");
    assert_eq!(aws.functions["ws:13"].invoke(subscriber).await.unwrap()["statusCode"], 200, "it fills the counter");
    let printed = run("full").await.unwrap();
    assert_eq!(reported(&aws, "full", &printed), "Succeeded", "{printed}");
    let gone = aws.functions["ws:13"].invoke(subscriber_event("$disconnect", "DISCONNECT")).await.unwrap();
    assert_eq!(gone["statusCode"], 200, "{gone}");
    let printed = run("crowded").await.unwrap();
    assert_eq!(reported(&aws, "crowded", &printed), "Succeeded", "{printed}");
    let counter = smoke_counter(&api, "GET", "/counters/smoke").await;
    let expected = 1 + CLIENT_CHANGES;
    assert_eq!(counter["value"], expected, "the hook put back what it changed, among the clients' changes: {counter}");
}

/// Another client's subscription to the smoke counter: its `$connect` or `$disconnect`.
fn subscriber_event(route: &str, event_type: &str) -> Value {
    json!({"requestContext": {"routeKey": route, "eventType": event_type, "connectionId": "b3RoZXI=",
        "requestId": "other", "apiId": "smoke", "stage": "smoke", "domainName": "smoke.invalid",
        "connectedAt": 0, "requestTimeEpoch": 0, "messageDirection": "IN", "requestTime": "01/Jan/2026:00:00:00 +0000"},
        "headers": {"host": "smoke.invalid"}, "queryStringParameters": {"counter": "smoke"}, "isBase64Encoded": false})
}

/// The status the hook last reported to CodeDeploy for `deployment`.
fn reported(aws: &Aws, deployment: &str, printed: &str) -> Value {
    let reports = aws.reports.lock().unwrap().clone();
    let report = reports
        .iter()
        .rev()
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

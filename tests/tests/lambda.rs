//! What only the `acidizer-api` Lambda does: JSON logs (as `AWS_LAMBDA_LOG_FORMAT=JSON` asks), one line per
//! request with its status and latency in the spans of its invocation (Lambda's request id and X-Ray trace id) and
//! of its request (its id, method and path), and its metrics as CloudWatch Embedded Metric Format on stdout.

use acidizer_tests::{App, Target, emf};
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_every_request_once_as_json_with_its_id_status_and_latency() {
    let app = App::spawn(Target::Lambda).await;
    let response = app.increment(Some("logged"), Some("log-key-1")).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(app.get("/counters/Bad").await.status(), 422);

    let mut request_lines = Vec::new();
    for _ in 0..50 {
        let logs = app.logs();
        request_lines = logs
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["fields"]["message"] == "answered")
            .collect();
        if request_lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = app.logs();
    assert!(logs.lines().filter(|l| !l.trim().is_empty()).all(|l| l.starts_with('{')), "only JSON lines:\n{logs}");
    let increment: Vec<&Value> =
        request_lines.iter().filter(|line| line["span"]["id"] == request_id.as_str()).collect();
    assert_eq!(increment.len(), 1, "the increment is logged once:\n{logs}");
    let (fields, span) = (&increment[0]["fields"], &increment[0]["span"]);
    assert_eq!(fields["status"], 200);
    assert_eq!((&span["name"], &span["method"]), (&"request".into(), &"POST".into()));
    assert_eq!(span["path"], "/counters/logged/increment");
    assert!(fields["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{fields}");
    let invocation = &increment[0]["spans"][0];
    assert!(invocation["requestId"].is_string() && invocation["xrayTraceId"].is_string(), "{invocation}");
    assert_eq!(increment[0]["level"], "INFO");
    assert!(request_lines.iter().any(|line| line["fields"]["status"] == 422), "the refusal is logged too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_increments_replays_and_store_latency_as_embedded_metrics() {
    let app = App::spawn(Target::Lambda).await;
    for key in ["emf-1", "emf-2", "emf-1"] {
        assert_eq!(app.increment(Some("metered"), Some(key)).await.status(), 200);
    }
    let mut totals = Default::default();
    for _ in 0..50 {
        totals = emf::totals(&app.logs());
        if totals.get("Replays").is_some_and(|n| *n >= 1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(totals.get("Increments"), Some(&2.0), "{totals:?}");
    assert_eq!(totals.get("Replays"), Some(&1.0), "{totals:?}");
    assert!(totals.get("StoreLatency").is_some_and(|ms| *ms > 0.0), "{totals:?}");
    let document = emf::documents(&app.logs()).into_iter().find(|d| d.get("Increments").is_some());
    let document = document.expect("an EMF document with Increments");
    assert_eq!(document["Function"], "acidizer-api");
    let directive = &document["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Acidizer");
    assert!(directive["Dimensions"][0].as_array().unwrap().contains(&Value::from("Function")));
}

/// A store that fails is answered 503: an invocation that succeeded, which Lambda's `Errors` never counts. The
/// function counts it as `ServerErrors`, with the version that answered, for the canary's rollback alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_its_5xx_answers_by_version() {
    use acidizer_tests::dynamodb_local;
    use acidizer_tests::fault_proxy::{Fault, FaultProxy};

    let proxy = FaultProxy::start(&dynamodb_local::shared().endpoint, Fault::InternalError, 1.0).await;
    let app = App::spawn_lambda(&proxy.endpoint, 1, &[("AWS_LAMBDA_FUNCTION_VERSION", "7".to_owned())]).await;
    assert_eq!(app.increment(Some("failing"), Some("fail-1")).await.status(), 503);
    assert_eq!(app.increment(Some("failing"), Some("fail-2")).await.status(), 503);
    assert!(proxy.injected() > 0, "the store failed");
    // Each invocation's metrics are flushed after its answer: wait for both.
    for _ in 0..50 {
        if emf::totals(&app.logs()).get("ServerErrors").is_some_and(|n| *n >= 2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let document = emf::documents(&app.logs()).into_iter().find(|d| d.get("ServerErrors").is_some());
    let document = document.expect("an EMF document with ServerErrors");
    assert_eq!(document["Function"], "acidizer-api");
    assert_eq!(document["Version"], "7");
    let dimensions = &document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0];
    assert_eq!(dimensions, &serde_json::json!(["Function", "Version"]));
    assert_eq!(emf::totals(&app.logs()).get("ServerErrors"), Some(&2.0));
}

/// A stage that lists its counters (`COUNTER_NAMES`) has those and `global`: any other valid name is not found,
/// and commits nothing; an invalid one is still refused as invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_that_lists_its_counters_has_no_others() {
    use acidizer_tests::dynamodb_local;

    let endpoint = &dynamodb_local::shared().endpoint;
    let app = App::spawn_lambda(endpoint, 1, &[("COUNTER_NAMES", "clicks,smoke".to_owned())]).await;
    assert_eq!(app.increment(Some("clicks"), None).await.status(), 200);
    assert_eq!(app.increment(None, None).await.status(), 200, "global is always there");
    let refused = app.increment(Some("elsewhere"), Some("elsewhere-1")).await;
    assert_eq!(refused.status(), 404);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["type"], "urn:acidizer:problem:not-found");
    assert!(problem["detail"].as_str().unwrap().contains("'elsewhere'"), "{problem}");
    for path in ["/counters/elsewhere", "/counters/elsewhere/history"] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
    assert_eq!(app.get("/counters/Bad").await.status(), 422);
    assert_eq!(app.get("/counters/clicks").await.status(), 200);
}

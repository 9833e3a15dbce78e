//! The contract, as test functions that take any running [`App`]: `tests/contract.rs` runs each of them against
//! every target (`acidizer serve` on SQLite and on DynamoDB, and the `acidizer-api` Lambda binary).

use crate::App;
use crate::app::ALLOWED_ORIGIN;
use reqwest::Method;
use serde_json::{Value, json};

fn is_timestamp(value: &Value) -> bool {
    let Some(text) = value.as_str() else { return false };
    let bytes = text.as_bytes();
    text.len() == 24
        && text.ends_with('Z')
        && bytes[10] == b'T'
        && bytes[19] == b'.'
        && time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok()
}

fn is_uuid(value: &Value) -> bool {
    value.as_str().is_some_and(|text| uuid::Uuid::parse_str(text).is_ok())
}

/// Asserts an RFC 9457 problem with `status`, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16, what: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{what}");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(content_type, "application/problem+json", "{what}");
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["status"], json!(status), "{what}: {body}");
    for field in ["type", "title", "detail"] {
        assert!(body[field].as_str().is_some_and(|s| !s.is_empty()), "{what}: no {field} in {body}");
    }
    body
}

pub async fn unknown_counter_reads_zero(app: &App) {
    let fresh = json!({"counter": "fresh", "value": 0, "seq": 0, "updatedAt": null});
    assert_eq!(app.get_json("/counters/fresh").await, fresh);
    assert_eq!(app.get_json("/value").await, json!({"counter": "global", "value": 0, "seq": 0, "updatedAt": null}));
    assert_eq!(app.get_json("/counters/fresh/history").await, json!({"counter": "fresh", "items": [], "next": null}));
}

pub async fn increments_count_by_one_with_request_ids(app: &App) {
    let mut last = Value::Null;
    for expected in 1..=3 {
        let response = app.increment(Some("clicks"), None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
        assert!(response.headers().get("idempotent-replayed").is_none());
        let body: Value = response.json().await.unwrap();
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["counter", "value", "seq", "delta", "requestId", "updatedAt"]);
        assert_eq!(body["counter"], "clicks");
        assert_eq!((&body["value"], &body["seq"], &body["delta"]), (&json!(expected), &json!(expected), &json!(1)));
        assert!(is_uuid(&body["requestId"]), "a generated request id is a UUID: {body}");
        assert!(is_timestamp(&body["updatedAt"]), "{body}");
        last = body;
    }
    let read = app.get_json("/counters/clicks").await;
    assert_eq!(read, json!({"counter": "clicks", "value": 3, "seq": 3, "updatedAt": last["updatedAt"]}));
    // The empty JSON object and unknown fields are accepted; an increment is always by exactly one.
    let response = app
        .http
        .post(app.url("/counters/clicks/increment"))
        .header("content-type", "application/json")
        .body(r#"{"by": 100, "note": "ignored"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["value"], 4);
    let response = app
        .http
        .post(app.url("/counters/clicks/increment"))
        .header("content-type", "application/json; charset=utf-8")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["value"], 5);
    assert_eq!(app.get_json("/counters/other").await["value"], 0, "counters are independent");
}

pub async fn original_routes_serve_the_global_counter(app: &App) {
    let first: Value = app.increment(None, Some("global-1")).await.json().await.unwrap();
    assert_eq!(first["counter"], "global");
    assert_eq!(first["value"], 1);
    let second: Value = app.increment(Some("global"), Some("global-2")).await.json().await.unwrap();
    assert_eq!(second["value"], 2);
    assert_eq!(app.get_json("/value").await, app.get_json("/counters/global").await);
    assert_eq!(app.get_json("/value").await["value"], 2);
    let history = app.get_json("/history").await;
    assert_eq!(history, app.get_json("/counters/global/history").await);
    assert_eq!(history["items"][0]["requestId"], "global-2");
    assert_eq!(history["items"][1]["requestId"], "global-1");
    assert_eq!(app.get_json("/health").await, json!({"status": "ok"}));
}

pub async fn a_repeated_key_replays_the_first_answer_byte_for_byte(app: &App) {
    let first = app.increment(Some("orders"), Some("order-7:try.1")).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.bytes().await.unwrap();
    let other: Value = app.increment(Some("orders"), Some("order-8")).await.json().await.unwrap();
    assert_eq!(other["value"], 2);
    for _ in 0..2 {
        let replay = app.increment(Some("orders"), Some("order-7:try.1")).await;
        assert_eq!(replay.status(), 200);
        assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
        assert_eq!(replay.bytes().await.unwrap(), first_body);
    }
    let first: Value = serde_json::from_slice(&first_body).unwrap();
    assert_eq!(first["value"], 1);
    assert_eq!(first["requestId"], "order-7:try.1");
    assert_eq!(app.get_json("/counters/orders").await["value"], 2);
    let history = app.get_json("/counters/orders/history").await;
    let ids: Vec<&Value> = history["items"].as_array().unwrap().iter().map(|item| &item["requestId"]).collect();
    assert_eq!(ids, [&json!("order-8"), &json!("order-7:try.1")]);

    // A server-made request id is a key too: sending it back replays.
    let made: Value = app.increment(Some("orders"), None).await.json().await.unwrap();
    let again = app.increment(Some("orders"), made["requestId"].as_str()).await;
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.json::<Value>().await.unwrap(), made);
    assert_eq!(app.get_json("/counters/orders").await["value"], 3);
}

pub async fn one_key_sent_by_many_at_once_commits_once(app: &App) {
    const CLIENTS: usize = 16;
    let answers = futures::future::join_all((0..CLIENTS).map(|_| async {
        let response = app.increment(Some("stampede"), Some("same-click")).await;
        let status = response.status().as_u16();
        let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        (status, replayed, response.bytes().await.unwrap())
    }))
    .await;
    for (status, _, body) in &answers {
        assert_eq!(*status, 200, "every client gets the answer: {}", String::from_utf8_lossy(body));
    }
    let fresh = answers.iter().filter(|(_, replayed, _)| !replayed).count();
    assert_eq!(fresh, 1, "one client made the increment, the others are replays");
    let first = &answers[0].2;
    assert!(answers.iter().all(|(_, _, body)| body == first), "every answer is the same body, byte for byte");
    let first: Value = serde_json::from_slice(first).unwrap();
    assert_eq!(first["value"], 1);
    assert_eq!(app.get_json("/counters/stampede").await["value"], 1);
    let history = app.get_json("/counters/stampede/history").await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");
}

pub async fn a_key_used_for_another_counter_is_refused(app: &App) {
    let first = app.increment(Some("apples"), Some("shared-key")).await;
    assert_eq!(first.status(), 200);
    let problem = assert_problem(app.increment(Some("pears"), Some("shared-key")).await, 422, "key reuse").await;
    assert!(problem["detail"].as_str().unwrap().contains("apples"), "{problem}");
    assert_eq!(app.get_json("/counters/pears").await["value"], 0);
    assert_eq!(app.get_json("/counters/apples").await["value"], 1);
}

pub async fn history_pages_newest_first(app: &App) {
    let mut answers = Vec::new();
    for i in 1..=5 {
        let body: Value = app.increment(Some("pages"), Some(&format!("page-{i}"))).await.json().await.unwrap();
        answers.push(body);
    }
    let page = app.get_json("/counters/pages/history?limit=2").await;
    assert_eq!(page["counter"], "pages");
    let values: Vec<u64> = page["items"].as_array().unwrap().iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert_eq!(values, [5, 4]);
    assert_eq!(page["next"], 4);
    let item = &page["items"][0];
    let keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["seq", "delta", "value", "requestId", "at"]);
    assert_eq!(item["requestId"], "page-5");
    assert_eq!(item["at"], answers[4]["updatedAt"]);

    let page = app.get_json("/counters/pages/history?limit=2&before=4").await;
    let values: Vec<u64> = page["items"].as_array().unwrap().iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert_eq!((values, page["next"].clone()), (vec![3, 2], json!(2)));
    let page = app.get_json("/counters/pages/history?limit=2&before=2").await;
    let first = json!({"seq": 1, "delta": 1, "value": 1, "requestId": "page-1", "at": answers[0]["updatedAt"]});
    assert_eq!(page["items"], json!([first]));
    assert_eq!(page["next"], Value::Null);
    let all = app.get_json("/counters/pages/history").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert_eq!(all["next"], Value::Null);
    let exact = app.get_json("/counters/pages/history?limit=5").await;
    assert_eq!(exact["next"], Value::Null, "a page ending at 1 has no next");
    let past_the_end = app.get_json("/counters/pages/history?before=1").await;
    assert_eq!(past_the_end, json!({"counter": "pages", "items": [], "next": null}));
    let above = app.get_json("/counters/pages/history?before=1000&limit=1").await;
    assert_eq!(above["items"][0]["seq"], 5);
}

/// `POST /counters/{counter}/decrement` with an optional key.
async fn decrement(app: &App, counter: &str, key: Option<&str>) -> reqwest::Response {
    app.change(Some(counter), "decrement", key).await
}

pub async fn decrements_stop_at_zero(app: &App) {
    let refused = assert_problem(decrement(app, "seats", Some("down-0")).await, 409, "a decrement at 0").await;
    assert_eq!(refused["type"], "urn:acidizer:problem:counter-at-floor");
    assert!(refused["detail"].as_str().unwrap().contains("at 0"), "{refused}");
    assert_eq!(
        app.get_json("/counters/seats").await,
        json!({"counter": "seats", "value": 0, "seq": 0, "updatedAt": null})
    );
    assert_eq!(app.get_json("/counters/seats/history").await["items"], json!([]), "a 409 commits nothing");

    for i in 1..=3 {
        assert_eq!(app.increment(Some("seats"), Some(&format!("up-{i}"))).await.status(), 200);
    }
    let first = decrement(app, "seats", Some("down-1")).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.bytes().await.unwrap();
    let body: Value = serde_json::from_slice(&first_body).unwrap();
    assert_eq!((&body["value"], &body["seq"], &body["delta"]), (&json!(2), &json!(4), &json!(-1)));
    assert_eq!(body["requestId"], "down-1");
    let replay = decrement(app, "seats", Some("down-1")).await;
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.bytes().await.unwrap(), first_body, "a replayed decrement is byte for byte the first answer");
    let read = app.get_json("/counters/seats").await;
    assert_eq!((&read["value"], &read["seq"]), (&json!(2), &json!(4)));
    let newest = &app.get_json("/counters/seats/history?limit=1").await["items"][0];
    assert_eq!((&newest["seq"], &newest["delta"], &newest["value"]), (&json!(4), &json!(-1), &json!(2)));

    // A key names one request: the other operation with it is refused, whichever way round.
    let reused = assert_problem(decrement(app, "seats", Some("up-1")).await, 422, "an increment's key").await;
    assert!(reused["detail"].as_str().unwrap().contains("increment"), "{reused}");
    assert_problem(app.increment(Some("seats"), Some("down-1")).await, 422, "a decrement's key").await;
    // A 409 is not remembered: the same key tries again, and commits once the counter allows it.
    for i in 2..=3 {
        assert_eq!(decrement(app, "seats", Some(&format!("down-{i}"))).await.status(), 200);
    }
    assert_problem(decrement(app, "seats", Some("down-0")).await, 409, "at 0 again").await;
    assert_eq!(app.increment(Some("seats"), Some("up-4")).await.status(), 200);
    let retried: Value = decrement(app, "seats", Some("down-0")).await.json().await.unwrap();
    assert_eq!((&retried["value"], &retried["seq"]), (&json!(0), &json!(8)));
    let read = app.get_json("/counters/seats").await;
    assert_eq!((&read["value"], &read["seq"]), (&json!(0), &json!(8)));
}

/// A client of the original Number Acidizer: its own routes, no idempotency keys, a burst of clicks both ways.
pub async fn the_original_clients_see_their_counter_come_back(app: &App) {
    let post = |path: &'static str| async move {
        let response =
            app.http.post(app.url(path)).header("x-request-id", uuid::Uuid::new_v4().to_string()).send().await;
        response.expect("the server answers")
    };
    for _ in 0..60 {
        assert_eq!(post("/increment").await.status(), 200);
    }
    let start = app.get_json("/value").await["value"].as_u64().unwrap();
    assert_eq!(start, 60);
    let burst = (0..100).map(|i| post(if i % 2 == 0 { "/increment" } else { "/decrement" }));
    let statuses: Vec<u16> = futures::future::join_all(burst).await.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|status| *status == 200), "every click of the burst counts: {statuses:?}");
    assert_eq!(app.get_json("/value").await["value"], start, "50 up and 50 down: back where it started");
    for left in (0..start).rev() {
        let response = post("/decrement").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["value"], left);
    }
    let last = assert_problem(post("/decrement").await, 409, "one decrement too many").await;
    assert_eq!(last["status"], 409);
    assert_eq!(app.get_json("/value").await["value"], 0);
    assert_eq!(app.get_json("/history").await["items"][0]["delta"], -1);
}

/// Every bad request of the contract's list: the right 4xx, as a problem, and no counter changes.
pub async fn bad_input_is_a_problem_and_changes_nothing(app: &App) {
    let long_name = "a".repeat(65);
    let long_key = "k".repeat(129);
    let big_body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1100));
    type Case<'a> = (Method, String, Vec<(&'a str, &'a str)>, Option<String>, u16);
    let json_type = ("content-type", "application/json");
    let cases: Vec<Case> = vec![
        (Method::GET, "/counters/Global".into(), vec![], None, 422),
        (Method::GET, "/counters/-x".into(), vec![], None, 422),
        (Method::GET, format!("/counters/{long_name}"), vec![], None, 422),
        (Method::GET, "/counters/a%20b".into(), vec![], None, 422),
        (Method::GET, "/counters/%FF".into(), vec![], None, 422),
        (Method::POST, "/counters/Bad!/increment".into(), vec![], None, 422),
        (Method::POST, "/counters/Bad!/decrement".into(), vec![], None, 422),
        (Method::POST, "/counters/victim/decrement".into(), vec![("idempotency-key", "a/b")], None, 422),
        (Method::POST, "/counters/victim/decrement".into(), vec![json_type], Some("[1]".into()), 400),
        (Method::POST, "/decrement".into(), vec![("content-type", "text/plain")], Some("{}".into()), 415),
        (Method::GET, "/counters/victim/decrement".into(), vec![], None, 405),
        (Method::GET, "/decrement".into(), vec![], None, 405),
        (Method::GET, "/counters/bad.name/history".into(), vec![], None, 422),
        (Method::POST, "/counters/victim/increment".into(), vec![("idempotency-key", "has space")], None, 422),
        (Method::POST, "/counters/victim/increment".into(), vec![("idempotency-key", "a/b")], None, 422),
        (Method::POST, "/counters/victim/increment".into(), vec![("idempotency-key", long_key.as_str())], None, 422),
        (Method::POST, "/counters/victim/increment".into(), vec![("idempotency-key", "")], None, 422),
        (Method::GET, "/counters/victim/history?limit=0".into(), vec![], None, 422),
        (Method::GET, "/counters/victim/history?limit=101".into(), vec![], None, 422),
        (Method::GET, "/counters/victim/history?limit=ten".into(), vec![], None, 422),
        (Method::GET, "/counters/victim/history?before=0".into(), vec![], None, 422),
        (Method::GET, "/counters/victim/history?before=-1".into(), vec![], None, 422),
        (Method::GET, "/history?before=x".into(), vec![], None, 422),
        (Method::POST, "/counters/victim/increment".into(), vec![json_type], Some("not json".into()), 400),
        (Method::POST, "/counters/victim/increment".into(), vec![json_type], Some("{\"a\":".into()), 400),
        (Method::POST, "/counters/victim/increment".into(), vec![json_type], Some("[1,2]".into()), 400),
        (Method::POST, "/counters/victim/increment".into(), vec![json_type], Some("42".into()), 400),
        (Method::POST, "/counters/victim/increment".into(), vec![json_type], Some("null".into()), 400),
        (Method::POST, "/counters/victim/increment".into(), vec![json_type], Some(big_body.clone()), 413),
        (Method::POST, "/increment".into(), vec![json_type], Some(big_body), 413),
        (
            Method::POST,
            "/counters/victim/increment".into(),
            vec![("content-type", "text/plain")],
            Some("{}".into()),
            415,
        ),
        (
            Method::POST,
            "/increment".into(),
            vec![("content-type", "application/x-www-form-urlencoded")],
            Some("a=1".into()),
            415,
        ),
        (Method::GET, "/nope".into(), vec![], None, 404),
        (Method::GET, "/counters".into(), vec![], None, 404),
        (Method::GET, "/counters/victim/nope".into(), vec![], None, 404),
        (Method::POST, "/counters/victim/increment/extra".into(), vec![], None, 404),
        (Method::GET, "/counters/victim/increment".into(), vec![], None, 405),
        (Method::POST, "/counters/victim".into(), vec![], None, 405),
        (Method::DELETE, "/value".into(), vec![], None, 405),
        (Method::PUT, "/increment".into(), vec![], None, 405),
        (Method::POST, "/history".into(), vec![], None, 405),
        (Method::POST, "/health".into(), vec![], None, 405),
    ];
    for (method, path, headers, body, status) in cases {
        let response = send(app, method.clone(), &path, &headers, body.as_deref()).await;
        let what = format!("{method} {path} {headers:?}");
        if status == 405 {
            let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
            let allow = allow.unwrap_or_else(|| panic!("{what}: 405 without Allow"));
            assert!(allow.contains("GET") || allow.contains("POST"), "{what}: Allow: {allow}");
        }
        assert_problem(response, status, &what).await;
    }
    assert_eq!(app.get_json("/counters/victim").await["value"], 0);
    assert_eq!(app.get_json("/value").await["value"], 0);
    assert_eq!(app.get_json("/counters/victim/history").await["items"], json!([]));
}

/// A change with more than one thing wrong is answered with the first of them: its counter name, then its
/// Idempotency-Key, then its body; and nothing changes.
pub async fn a_change_answers_its_first_problem(app: &App) {
    let big_body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1100));
    let (bad_key, text) = (("idempotency-key", "a/b"), ("content-type", "text/plain"));
    let json_type = ("content-type", "application/json");
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, Option<&'a str>, u16, &'a str);
    let mut cases: Vec<Case> = Vec::new();
    for change in ["increment", "decrement"] {
        let (bad_name, victim) = (format!("/counters/Bad!/{change}"), format!("/counters/victim/{change}"));
        cases.extend([
            (bad_name.clone(), vec![bad_key, text], Some("[1]"), 422, "invalid-counter-name"),
            (bad_name.clone(), vec![json_type], Some(big_body.as_str()), 422, "invalid-counter-name"),
            (bad_name, vec![bad_key], None, 422, "invalid-counter-name"),
            (victim.clone(), vec![bad_key, json_type], Some("[1]"), 422, "invalid-idempotency-key"),
            (victim.clone(), vec![bad_key, text], Some("{}"), 422, "invalid-idempotency-key"),
            (victim.clone(), vec![bad_key, json_type], Some(big_body.as_str()), 422, "invalid-idempotency-key"),
            (victim, vec![("idempotency-key", "fine"), text], Some("{}"), 415, "unsupported-media-type"),
        ]);
    }
    for (path, headers, body, status, problem) in cases {
        let what = format!("POST {path} {headers:?}");
        let answer = assert_problem(send(app, Method::POST, &path, &headers, body).await, status, &what).await;
        assert_eq!(answer["type"], json!(format!("urn:acidizer:problem:{problem}")), "{what}: {answer}");
    }
    assert_eq!(app.get_json("/counters/victim").await["value"], 0);
    assert_eq!(app.get_json("/counters/victim/history").await["items"], json!([]));
}

/// Sends `method path` with `headers` and, if any, `body`.
async fn send(
    app: &App,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    request.send().await.unwrap()
}

pub async fn cors_allows_the_configured_origins(app: &App) {
    let preflight = app
        .http
        .request(Method::OPTIONS, app.url("/counters/global/increment"))
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "idempotency-key, content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "preflight answered: {}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers.get("access-control-allow-origin").unwrap(), ALLOWED_ORIGIN);
    let methods = headers.get("access-control-allow-methods").unwrap().to_str().unwrap().to_ascii_uppercase();
    assert!(methods.contains("POST") && methods.contains("GET"), "{methods}");
    let allowed = headers.get("access-control-allow-headers").unwrap().to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("idempotency-key"), "{allowed}");

    let read = app.http.get(app.url("/value")).header("origin", ALLOWED_ORIGIN).send().await.unwrap();
    assert_eq!(read.headers().get("access-control-allow-origin").unwrap(), ALLOWED_ORIGIN);
    let stranger = app.http.get(app.url("/value")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(stranger.status(), 200);
    assert!(stranger.headers().get("access-control-allow-origin").is_none());
}

/// The methods an OpenAPI path item can hold an operation for, and that a client can send.
const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// The API is what its OpenAPI document (`crates/acidizer-http/openapi.json`) says, checked by requests: the
/// document is served at `/openapi.json` byte for byte; each documented operation is routed (it answers neither 404
/// nor 405); each other method on a documented path answers 405 with an `Allow` of exactly the documented methods
/// (and HEAD beside GET).
pub async fn the_routes_are_those_of_the_openapi_document(app: &App) {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served = response.bytes().await.expect("the document");
    assert_eq!(served, acidizer_http::OPENAPI_JSON.as_bytes(), "the document, byte for byte");
    let document: Value = serde_json::from_slice(&served).expect("the document is JSON");
    let paths = document["paths"].as_object().expect("the document has paths");
    assert!(paths.len() >= 10, "every route is documented: {:?}", paths.keys());
    for (path, item) in paths {
        let url = path.replace("{name}", "documented");
        let documented: Vec<&Method> =
            METHODS.iter().filter(|method| item.get(method.as_str().to_ascii_lowercase()).is_some()).collect();
        assert!(!documented.is_empty(), "{path} has an operation");
        let mut allowed: Vec<&str> = documented.iter().map(|method| method.as_str()).collect();
        if documented.contains(&&Method::GET) {
            allowed.push("HEAD");
        }
        allowed.sort_unstable();
        for method in METHODS {
            let response = app.http.request(method.clone(), app.url(&url)).send().await.expect("an answer");
            let status = response.status().as_u16();
            if documented.contains(&&method) {
                assert!(![404, 405].contains(&status), "{method} {path} is documented, and answers {status}");
                continue;
            }
            let allow = response.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let problem = assert_problem(response, 405, &format!("{method} {path} is not documented")).await;
            assert_eq!(problem["type"], "urn:acidizer:problem:method-not-allowed");
            let mut advertised: Vec<&str> = allow.split(',').map(str::trim).collect();
            advertised.sort_unstable();
            assert_eq!(advertised, allowed, "{method} {path}: Allow: {allow}");
        }
    }
    for path in ["/openapi.yaml", "/counters", "/counters/documented/reset", "/counters/documented/history/1"] {
        for method in [Method::GET, Method::POST] {
            let response = app.http.request(method.clone(), app.url(path)).send().await.expect("an answer");
            assert_problem(response, 404, &format!("{method} {path} is not a route")).await;
        }
    }
}

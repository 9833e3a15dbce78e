//! Property tests of every input from outside, on stable Rust (proptest): arbitrary HTTP requests through the one
//! router, in-process on the embedded store, also as API Gateway HTTP API events (payload 2.0) read by lambda_http
//! as `acidizer-api` reads them; arbitrary WebSocket client messages; arbitrary API Gateway WebSocket events, as
//! `acidizer-ws` routes them; arbitrary DynamoDB stream records, as the stream function and `acidizer serve --store
//! dynamodb` read them. Nothing panics, nothing answers 5xx, every refusal is a typed problem
//! (`application/problem+json` with its `status`), protocol error or refused event.

use acidizer_core::Counters;
use acidizer_core::live::{ClientAction, ProtocolError, parse_client_message};
use acidizer_core::{AllowedOrigins, CounterName, KnownCounters};
use acidizer_http::router;
use acidizer_store_dynamodb::stream::stream_record;
use acidizer_store_sqlite::SqliteStore;
use acidizer_ws::Route;
use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use axum::body::Body;
use proptest::prelude::*;
use serde_dynamo::AttributeValue;
use std::collections::HashMap;
use tower::ServiceExt;

/// A request as a client could send it: any method, a path built from the API's words and arbitrary segments, an
/// optional query, optional idempotency key, content type and origin, and any body.
#[derive(Debug, Clone)]
struct Input {
    method: String,
    path: Vec<String>,
    query: Option<String>,
    key: Option<String>,
    content_type: Option<String>,
    origin: Option<String>,
    body: Vec<u8>,
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("counters".to_owned()),
        Just("increment".to_owned()),
        Just("decrement".to_owned()),
        Just("history".to_owned()),
        Just("value".to_owned()),
        Just("health".to_owned()),
        Just("global".to_owned()),
        "[a-z0-9_-]{1,70}",
        "[A-Za-z0-9%._~:@!$&'()*+,;=-]{0,30}",
    ]
}

fn input() -> impl Strategy<Value = Input> {
    (
        prop_oneof![
            Just("GET".to_owned()),
            Just("POST".to_owned()),
            Just("HEAD".to_owned()),
            Just("OPTIONS".to_owned()),
            Just("PUT".to_owned()),
            Just("DELETE".to_owned()),
            "[A-Z]{1,10}",
        ],
        proptest::collection::vec(segment(), 0..5),
        proptest::option::of("[ -~]{0,40}"),
        proptest::option::of("[ -~]{0,140}"),
        proptest::option::of(prop_oneof![Just("application/json".to_owned()), "[ -~]{0,40}"]),
        proptest::option::of(prop_oneof![Just("https://app.example".to_owned()), "[ -~]{0,40}"]),
        prop_oneof![
            Just(Vec::new()),
            Just(b"{}".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..2048),
            "[ -~]{0,200}".prop_map(String::into_bytes),
        ],
    )
        .prop_map(|(method, path, query, key, content_type, origin, body)| Input {
            method,
            path,
            query,
            key,
            content_type,
            origin,
            body,
        })
}

fn request(input: &Input) -> Option<http::Request<Body>> {
    let mut uri = format!("/{}", input.path.join("/"));
    if let Some(query) = &input.query {
        uri = format!("{uri}?{query}");
    }
    let mut builder = http::Request::builder().method(input.method.as_str()).uri(uri);
    for (name, value) in
        [("idempotency-key", &input.key), ("content-type", &input.content_type), ("origin", &input.origin)]
    {
        if let Some(value) = value {
            builder = builder.header(name, value.as_str());
        }
    }
    // A request the client library itself cannot build (an invalid URI or header) never reaches the server.
    builder.body(Body::from(input.body.clone())).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_an_answer_or_a_typed_problem(inputs in proptest::collection::vec(input(), 1..8)) {
        on_a_fresh_router(|app| async move {
            for input in &inputs {
                let Some(request) = request(input) else { continue };
                let head = input.method == "HEAD";
                assert_answer_or_problem(app.clone().oneshot(request).await.unwrap(), head, input).await?;
            }
            Ok(())
        })?;
    }

    #[test]
    fn any_http_api_event_gets_an_answer_or_a_typed_problem(
        inputs in proptest::collection::vec(input(), 1..4),
        base64 in any::<bool>(),
        host in proptest::option::of(prop_oneof![Just("api.example".to_owned()), "[ -~]{0,20}"]),
        proto in proptest::option::of(prop_oneof![Just("https".to_owned()), "[ -~]{0,8}"]),
    ) {
        on_a_fresh_router(|app| async move {
            for input in &inputs {
                // What API Gateway hands the function; `acidizer-api` mends it, and lambda_http makes the request the
                // router gets from it.
                let event = http_api_event(input, base64, &host, &proto);
                let parsed = serde_json::from_value::<lambda_http::request::LambdaRequest>(event.clone());
                prop_assert!(parsed.is_ok(), "API Gateway's event shape: {event}");
                let event = parsed.unwrap();
                let request: http::Request<lambda_http::Body> = acidizer_api::http_event::mend(event).into();
                let (parts, body) = request.into_parts();
                let request = http::Request::from_parts(parts, Body::from(body.to_vec()));
                let head = input.method == "HEAD";
                assert_answer_or_problem(app.clone().oneshot(request).await.unwrap(), head, input).await?;
            }
            Ok(())
        })?;
    }

    #[test]
    fn any_websocket_event_is_routed_or_refused_with_a_status(event in websocket_event()) {
        let origins = AllowedOrigins::parse("https://app.example").unwrap();
        let known = KnownCounters::parse("tally").unwrap();
        let request = serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(event.clone());
        prop_assert!(request.is_ok(), "API Gateway's event shape: {event}: {request:?}");
        let request = request.unwrap();
        let route_key = request.request_context.route_key.clone();
        match acidizer_ws::route(&request, &origins, &known) {
            Route::Connect { counter, .. } => {
                prop_assert!(known.admits(&counter));
                prop_assert_eq!(route_key.as_deref(), Some("$connect"));
                let origin = event["headers"]["Origin"].as_str().or(event["headers"]["origin"].as_str());
                prop_assert!(origin.is_none_or(|origin| origin == "https://app.example"), "{event}");
                let asked = event["queryStringParameters"]["counter"].as_str().unwrap_or("global");
                prop_assert_eq!(counter.as_str(), asked);
            }
            Route::Refuse { status, reason } => {
                prop_assert!(matches!(status, 400 | 403 | 404), "{event}: {status}");
                if status == 404 {
                    let asked = event["queryStringParameters"]["counter"].as_str().unwrap_or("global");
                    prop_assert!(!known.admits(&CounterName::parse(asked).unwrap()), "{event}");
                }
                prop_assert!(!reason.is_empty());
            }
            Route::Disconnect { .. } => prop_assert_eq!(route_key.as_deref(), Some("$disconnect")),
            Route::Message { body, .. } => {
                prop_assert!(!matches!(route_key.as_deref(), Some("$connect" | "$disconnect")));
                prop_assert_eq!(body, event["body"].as_str().unwrap_or(""));
            }
        }
    }

    #[test]
    fn any_websocket_message_is_an_action_or_a_protocol_error(text in prop_oneof![
        "\\PC{0,300}",
        Just(r#"{"action":"sync"}"#.to_owned()),
        Just(r#"{"action":"ping"}"#.to_owned()),
        "\\{\"action\":\"[ -~]{0,20}\"\\}",
        "[ -~]{4090,4200}",
    ]) {
        match parse_client_message(&text) {
            Ok(ClientAction::Sync | ClientAction::Ping) => {
                let message: serde_json::Value = serde_json::from_str(&text).unwrap();
                prop_assert!(text.len() <= 4096 && message["action"].is_string());
            }
            Err(ProtocolError::TooLarge) => prop_assert!(text.len() > 4096),
            Err(ProtocolError::NotJson | ProtocolError::UnknownAction | ProtocolError::Binary) => {}
        }
    }

    #[test]
    fn any_stream_record_is_a_counter_change_or_none(
        image in prop_oneof![
            proptest::collection::hash_map(attribute_name(), attribute(), 0..10),
            // A counter item as the store writes it, with up to three attributes replaced by anything.
            proptest::collection::hash_map(attribute_name(), attribute(), 0..3).prop_map(|changes| {
                let mut item = counter_item();
                item.extend(changes);
                item
            }),
        ],
        event in prop_oneof![Just("INSERT"), Just("MODIFY"), Just("REMOVE"), Just("")],
    ) {
        let is_counter = matches!(image.get("kind"), Some(AttributeValue::S(kind)) if kind == "counter");
        let record = stream_record("1".to_owned(), event, serde_dynamo::Item::from(image.clone()));
        if let Some(change) = record.change {
            prop_assert!(is_counter && event != "REMOVE", "{image:?}");
            prop_assert!(matches!(image.get("value"), Some(AttributeValue::N(n)) if n.parse() == Ok(change.value)));
        }
    }
}

/// Runs `test` on the router over a fresh embedded store, on a runtime of its own.
fn on_a_fresh_router<F, Fut>(test: F) -> Result<(), TestCaseError>
where
    F: FnOnce(axum::Router) -> Fut,
    Fut: std::future::Future<Output = Result<(), TestCaseError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let counters = Counters::new(SqliteStore::open(dir.path()).unwrap());
        test(router(counters, &AllowedOrigins::parse("https://app.example").unwrap())).await
    })
}

/// The router's answer is under 500, and a 4xx (but to HEAD, which has no body) is a problem with its status.
async fn assert_answer_or_problem(
    response: axum::response::Response,
    head: bool,
    input: &Input,
) -> Result<(), TestCaseError> {
    let status = response.status();
    prop_assert!(status.as_u16() < 500, "{input:?} answered {status}");
    let problem = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == b"application/problem+json");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    if status.is_client_error() && !head {
        prop_assert!(problem, "{input:?}: {status} is not a problem");
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        prop_assert_eq!(problem["status"].as_u64(), Some(u64::from(status.as_u16())), "{:?}", input);
        prop_assert!(problem["type"].is_string() && problem["title"].is_string(), "{problem}");
    }
    Ok(())
}

/// `input` as an API Gateway HTTP API event (payload format 2.0), its body base64-encoded when `base64` says, with
/// the `Host` and `X-Forwarded-Proto` headers given.
fn http_api_event(input: &Input, base64: bool, host: &Option<String>, proto: &Option<String>) -> serde_json::Value {
    use base64::Engine;
    let path = format!("/{}", input.path.join("/"));
    let mut headers = serde_json::Map::new();
    for (name, value) in [
        ("idempotency-key", &input.key),
        ("content-type", &input.content_type),
        ("origin", &input.origin),
        ("host", host),
        ("x-forwarded-proto", proto),
    ] {
        if let Some(value) = value {
            headers.insert(name.to_owned(), value.as_str().into());
        }
    }
    let body = match (base64, std::str::from_utf8(&input.body)) {
        (false, Ok(text)) => text.to_owned(),
        _ => base64::engine::general_purpose::STANDARD.encode(&input.body),
    };
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": input.query.clone().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api",
            "http": { "method": input.method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "fuzz" },
            "requestId": "req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "03/Dec/2026:10:00:00 +0000",
            "timeEpoch": 1_796_292_000_000_i64,
        },
        "body": body,
        "isBase64Encoded": base64 || std::str::from_utf8(&input.body).is_err(),
    })
}

/// An API Gateway WebSocket event with any route, connection id, `counter`, `Origin` and body.
fn websocket_event() -> impl Strategy<Value = serde_json::Value> {
    (
        prop_oneof![Just("$connect"), Just("$disconnect"), Just("$default")].prop_map(str::to_owned),
        proptest::option::of(prop_oneof![Just("conn-1=".to_owned()), "\\PC{0,20}"]),
        proptest::option::of(prop_oneof![Just("tally".to_owned()), "[a-z0-9_-]{0,70}", "\\PC{0,12}"]),
        proptest::option::of(prop_oneof![
            Just("https://app.example".to_owned()),
            Just("null".to_owned()),
            "[ -~]{0,30}"
        ]),
        proptest::option::of("\\PC{0,60}"),
    )
        .prop_map(|(route, connection, counter, origin, body)| {
            let mut event = serde_json::json!({
                "requestContext": {
                    "routeKey": route,
                    "stage": "test",
                    "domainName": "abc.example",
                    "apiId": "abc",
                    "connectedAt": 1_796_292_000_000_i64,
                    "requestTimeEpoch": 1_796_292_000_000_i64,
                },
                "isBase64Encoded": false,
            });
            if let Some(connection) = connection {
                event["requestContext"]["connectionId"] = connection.into();
            }
            if let Some(counter) = counter {
                event["queryStringParameters"] = serde_json::json!({ "counter": counter });
            }
            if let Some(origin) = origin {
                event["headers"] = serde_json::json!({ "Origin": origin });
            }
            if let Some(body) = body {
                event["body"] = body.into();
            }
            event
        })
}

fn counter_item() -> HashMap<String, AttributeValue> {
    let s = |text: &str| AttributeValue::S(text.to_owned());
    let n = |number: &str| AttributeValue::N(number.to_owned());
    HashMap::from([
        ("pk".to_owned(), s("counter#global")),
        ("sk".to_owned(), n("0")),
        ("kind".to_owned(), s("counter")),
        ("counter".to_owned(), s("global")),
        ("value".to_owned(), n("7")),
        ("seq".to_owned(), n("9")),
        ("updatedAt".to_owned(), n("1795428000000")),
        ("requestId".to_owned(), s("k-1")),
    ])
}

fn attribute_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("pk".to_owned()),
        Just("sk".to_owned()),
        Just("kind".to_owned()),
        Just("counter".to_owned()),
        Just("value".to_owned()),
        Just("seq".to_owned()),
        Just("updatedAt".to_owned()),
        Just("requestId".to_owned()),
        "[a-zA-Z]{1,12}",
    ]
}

fn attribute() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        Just(AttributeValue::S("counter".to_owned())),
        Just(AttributeValue::S("global".to_owned())),
        "\\PC{0,80}".prop_map(AttributeValue::S),
        "-?[0-9]{1,25}(\\.[0-9]{1,5})?".prop_map(AttributeValue::N),
        "[ -~]{0,10}".prop_map(AttributeValue::N),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null(true)),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
            proptest::collection::hash_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map: HashMap<String, AttributeValue>| AttributeValue::M(map)),
        ]
    })
}

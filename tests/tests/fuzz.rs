//! Property tests of every input from outside, on stable Rust (proptest): arbitrary HTTP requests through the one
//! router, in-process on the embedded store; arbitrary WebSocket client messages; arbitrary DynamoDB stream
//! records, as the stream function and `acidizer serve --store dynamodb` read them. Nothing panics, nothing
//! answers 5xx, every refusal is a typed problem (`application/problem+json` with its `status`) or protocol error.

use acidizer_core::Counters;
use acidizer_core::http::{AllowedOrigins, router};
use acidizer_core::live::{ClientAction, ProtocolError, parse_client_message};
use acidizer_store_dynamodb::stream::stream_record;
use acidizer_store_sqlite::SqliteStore;
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
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        runtime.block_on(async {
            let counters = Counters::new(SqliteStore::open(dir.path()).unwrap());
            let app = router(counters, &AllowedOrigins::parse("https://app.example").unwrap());
            for input in &inputs {
                let Some(request) = request(input) else { continue };
                let response = app.clone().oneshot(request).await.unwrap();
                let status = response.status();
                prop_assert!(status.as_u16() < 500, "{input:?} answered {status}");
                let problem = response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|value| value.as_bytes() == b"application/problem+json");
                let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                if status.is_client_error() && input.method != "HEAD" {
                    prop_assert!(problem, "{input:?}: {status} is not a problem");
                    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    prop_assert_eq!(problem["status"].as_u64(), Some(u64::from(status.as_u16())), "{:?}", input);
                    prop_assert!(problem["type"].is_string() && problem["title"].is_string(), "{problem}");
                }
            }
            Ok(())
        })?;
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

//! A stand-in for API Gateway's Management API (`POST /{stage}/@connections/{id}`), for the Lambda tests. How it
//! answers depends on the connection id: `gone…` → 410 Gone, `broken…` → 500 (until healed), `slow…` → 200 after
//! 5 s, others → 200; and to everyone 429 (throttled) while a throttle set by the test lasts. It records every
//! message delivered and every attempt.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const STAGE: &str = "test";

#[derive(Default)]
struct Records {
    delivered: HashMap<String, Vec<Value>>,
    attempts: HashMap<String, usize>,
    throttled_until: Option<Instant>,
    healed: bool,
}

pub struct ManagementApi {
    /// The `WEBSOCKET_ENDPOINT` to give the functions.
    pub endpoint: String,
    records: Arc<Mutex<Records>>,
    _server: tokio::task::JoinHandle<()>,
}

impl ManagementApi {
    pub async fn start() -> ManagementApi {
        let records = Arc::new(Mutex::new(Records::default()));
        let app = Router::new()
            .route("/{stage}/@connections/{id}", post(post_to_connection))
            .with_state(Arc::clone(&records));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ManagementApi { endpoint: format!("http://{addr}/{STAGE}"), records, _server: server }
    }

    /// The messages delivered to `connection`, in order.
    pub fn delivered(&self, connection: &str) -> Vec<Value> {
        self.records.lock().unwrap().delivered.get(connection).cloned().unwrap_or_default()
    }

    /// Answers every post with 429 Too Many Requests for `duration` from now.
    pub fn throttle_for(&self, duration: Duration) {
        self.records.lock().unwrap().throttled_until = Some(Instant::now() + duration);
    }

    /// From now on the `broken…` connections answer 200.
    pub fn heal(&self) {
        self.records.lock().unwrap().healed = true;
    }

    /// How many posts to `connection` were attempted.
    pub fn attempts(&self, connection: &str) -> usize {
        self.records.lock().unwrap().attempts.get(connection).copied().unwrap_or_default()
    }
}

async fn post_to_connection(
    State(records): State<Arc<Mutex<Records>>>,
    Path((stage, id)): Path<(String, String)>,
    body: String,
) -> Response {
    assert_eq!(stage, STAGE);
    let (throttled, healed) = {
        let mut records = records.lock().unwrap();
        *records.attempts.entry(id.clone()).or_default() += 1;
        (records.throttled_until.is_some_and(|until| Instant::now() < until), records.healed)
    };
    if throttled {
        let error = [("x-amzn-errortype", "LimitExceededException")];
        return (StatusCode::TOO_MANY_REQUESTS, error, r#"{"message":"Too Many Requests"}"#).into_response();
    }
    if id.starts_with("gone") {
        return (StatusCode::GONE, [("x-amzn-errortype", "GoneException")], r#"{"message":null}"#).into_response();
    }
    if id.starts_with("broken") && !healed {
        return (StatusCode::INTERNAL_SERVER_ERROR, r#"{"message":"Internal server error"}"#).into_response();
    }
    if id.starts_with("slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let message: Value = serde_json::from_str(&body).expect("messages are JSON");
    records.lock().unwrap().delivered.entry(id).or_default().push(message);
    StatusCode::OK.into_response()
}

//! A stand-in for API Gateway's Management API (`POST /{stage}/@connections/{id}`), for the Lambda tests. How it
//! answers depends on the connection id: `gone…` → 410 Gone, `broken…` → 500 (until healed), `slow…` → 200 after
//! 5 s, others → 200; and to everyone 429 (throttled) while a throttle set by the test lasts, or past a rate of
//! posts a second (a token bucket holding a tenth of a second's worth, as API Gateway's account limit is a rate
//! and a burst), with a time each post takes. It records every message delivered, when, and every attempt.

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
    delivered: HashMap<String, Vec<(Value, Instant)>>,
    attempts: HashMap<String, usize>,
    throttled_until: Option<Instant>,
    healed: bool,
    limit: Option<Limit>,
    in_flight: HashMap<String, usize>,
    /// The most posts in flight to one connection at once, and to all.
    most_in_flight_to_one: usize,
    most_in_flight: usize,
    throttled: usize,
}

/// A rate of posts a second (a token bucket), and the time each post takes.
struct Limit {
    rate: f64,
    latency: Duration,
    tokens: f64,
    filled: Instant,
}

impl Limit {
    fn admit(&mut self) -> bool {
        let now = Instant::now();
        let burst = (self.rate / 10.0).max(1.0);
        self.tokens = (self.tokens + (now - self.filled).as_secs_f64() * self.rate).min(burst);
        self.filled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
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

    /// A stand-in that takes `rate` posts a second (429 past it), each taking `latency`.
    pub async fn start_limited(rate: f64, latency: Duration) -> ManagementApi {
        let api = Self::start().await;
        let limit = Limit { rate, latency, tokens: (rate / 10.0).max(1.0), filled: Instant::now() };
        api.records.lock().unwrap().limit = Some(limit);
        api
    }

    /// The messages delivered to `connection`, in order.
    pub fn delivered(&self, connection: &str) -> Vec<Value> {
        let records = self.records.lock().unwrap();
        records
            .delivered
            .get(connection)
            .map(|messages| messages.iter().map(|(m, _)| m.clone()).collect())
            .unwrap_or_default()
    }

    /// Every connection's delivered messages, with the instant each arrived.
    pub fn all_delivered(&self) -> HashMap<String, Vec<(Value, Instant)>> {
        self.records.lock().unwrap().delivered.clone()
    }

    /// The most posts that were in flight to one connection at once, and to all.
    pub fn most_in_flight(&self) -> (usize, usize) {
        let records = self.records.lock().unwrap();
        (records.most_in_flight_to_one, records.most_in_flight)
    }

    /// How many posts were answered 429.
    pub fn throttled(&self) -> usize {
        self.records.lock().unwrap().throttled
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
    // Counted out when the post ends, also when its client gives up on it; throttled posts count too.
    let _in_flight = InFlight::count(&records, &id);
    let (throttled, healed, latency) = {
        let mut records = records.lock().unwrap();
        let records = &mut *records;
        *records.attempts.entry(id.clone()).or_default() += 1;
        let limited = records.limit.as_mut().map(|limit| (limit.admit(), limit.latency));
        let throttled = records.throttled_until.is_some_and(|until| Instant::now() < until)
            || limited.is_some_and(|(admitted, _)| !admitted);
        records.throttled += usize::from(throttled);
        (throttled, records.healed, limited.map(|(_, latency)| latency))
    };
    if throttled {
        let error = [("x-amzn-errortype", "LimitExceededException")];
        return (StatusCode::TOO_MANY_REQUESTS, error, r#"{"message":"Too Many Requests"}"#).into_response();
    }
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
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
    records.lock().unwrap().delivered.entry(id).or_default().push((message, Instant::now()));
    StatusCode::OK.into_response()
}

/// A post in flight to a connection, while it lasts.
struct InFlight {
    records: Arc<Mutex<Records>>,
    id: String,
}

impl InFlight {
    fn count(records: &Arc<Mutex<Records>>, id: &str) -> InFlight {
        let mut locked = records.lock().unwrap();
        let locked = &mut *locked;
        let to_one = locked.in_flight.entry(id.to_owned()).or_default();
        *to_one += 1;
        locked.most_in_flight_to_one = locked.most_in_flight_to_one.max(*to_one);
        let all: usize = locked.in_flight.values().sum();
        locked.most_in_flight = locked.most_in_flight.max(all);
        InFlight { records: Arc::clone(records), id: id.to_owned() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut records = self.records.lock().unwrap();
        if let Some(to_one) = records.in_flight.get_mut(&self.id) {
            *to_one -= 1;
            if *to_one == 0 {
                records.in_flight.remove(&self.id);
            }
        }
    }
}

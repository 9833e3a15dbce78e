//! A proxy in front of DynamoDB Local that counts the requests it forwards and can inject faults into a share of
//! the requests on the increment path (`GetItem`, `TransactWriteItems`): throttling answers, HTTP 500, a
//! connection dropped after the request was applied, or an answer delayed past the SDK's attempt timeout. It can
//! also behave as DynamoDB does under a hot item — latency, transactions cancelled by conflicts, a partition's
//! write budget — which DynamoDB Local does not (dynamo_model.rs).

use crate::dynamo_model::{DynamoModel, ModelCounts, ModelState};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to the requests it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// 400 `ThrottlingException`, not applied.
    Throttling,
    /// 400 `ProvisionedThroughputExceededException`, not applied.
    ProvisionedThroughputExceeded,
    /// 500 `InternalServerError`, not applied.
    InternalError,
    /// Applied, then the connection is cut before the answer's body arrives.
    DropAfterApply,
    /// Applied, and answered only after the SDK's attempt timeout (3 s).
    SlowAfterApply,
}

/// The operations faults are injected into.
const FAULTED: [&str; 2] = ["DynamoDB_20120810.GetItem", "DynamoDB_20120810.TransactWriteItems"];

struct Shared {
    upstream: String,
    http: reqwest::Client,
    fault: Fault,
    rate: f64,
    /// Whether faults are injected now.
    faulting: AtomicBool,
    /// How many faults were injected.
    injected: AtomicUsize,
    /// Requests forwarded (or faulted), by operation (`GetItem`, `TransactWriteItems`, …).
    counts: Mutex<HashMap<String, usize>>,
    /// What DynamoDB does that DynamoDB Local does not, when modelled.
    model: Option<Arc<ModelState>>,
}

pub struct FaultProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    _server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy to `upstream` that applies `fault` to the first faultable request and about `rate` of the others.
    pub async fn start(upstream: &str, fault: Fault, rate: f64) -> FaultProxy {
        Self::start_with(upstream, fault, rate, None).await
    }

    /// A proxy to `upstream` that behaves as DynamoDB does under `model`.
    pub async fn start_modelled(upstream: &str, model: DynamoModel) -> FaultProxy {
        Self::start_with(upstream, Fault::None, 0.0, Some(model)).await
    }

    /// A proxy to `upstream` that applies `fault` to about `rate` of the faultable requests, and `model` to all.
    pub async fn start_with(upstream: &str, fault: Fault, rate: f64, model: Option<DynamoModel>) -> FaultProxy {
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            http: reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("an HTTP client"),
            fault,
            rate,
            faulting: AtomicBool::new(fault != Fault::None),
            injected: AtomicUsize::new(0),
            counts: Mutex::new(HashMap::new()),
            model: model.map(ModelState::new),
        });
        let app = Router::new().fallback(forward).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy { endpoint: format!("http://{addr}"), shared, _server: server }
    }

    /// How many `operation` requests (`GetItem`, `TransactWriteItems`, …) came through so far.
    pub fn count(&self, operation: &str) -> usize {
        self.shared.counts.lock().unwrap().get(operation).copied().unwrap_or_default()
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> usize {
        self.shared.injected.load(Ordering::Relaxed)
    }

    /// Forwards every request from now on, faultless.
    pub fn stop_faults(&self) {
        self.shared.faulting.store(false, Ordering::Relaxed);
    }

    /// Forgets the counts so far.
    pub fn reset_counts(&self) {
        self.shared.counts.lock().unwrap().clear();
    }

    /// What the model counted so far (all zero without one).
    pub fn model_counts(&self) -> ModelCounts {
        self.shared.model.as_ref().map(|model| model.counts()).unwrap_or_default()
    }
}

fn error_answer(status: StatusCode, kind: &str) -> Response {
    let body =
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected by the test proxy"}}"#);
    (status, [("content-type", "application/x-amz-json-1.0")], body).into_response()
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let operation = target.rsplit('.').next().unwrap_or("").to_owned();
    *shared.counts.lock().unwrap().entry(operation.clone()).or_default() += 1;
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    // Under the model, a call takes its latency, and a write holds its items meanwhile (or is refused as DynamoDB
    // would refuse it).
    let _held = match &shared.model {
        Some(model) => {
            let admitted = model.admit(&operation, &body);
            tokio::time::sleep(model.latency(&operation)).await;
            match admitted {
                Ok(held) => Some(held),
                Err(refused) => return *refused,
            }
        }
        None => None,
    };
    let faulting = shared.faulting.load(Ordering::Relaxed);
    // The first faultable request is always picked (a group commit makes few requests: at a low rate, a run could
    // meet no fault at all), then about `rate` of them.
    let first = shared.injected.load(Ordering::Relaxed) == 0;
    let picked = faulting && FAULTED.contains(&target.as_str()) && (first || fastrand::f64() < shared.rate);
    let fault = if picked { shared.fault } else { Fault::None };
    if picked {
        shared.injected.fetch_add(1, Ordering::Relaxed);
    }
    match fault {
        Fault::Throttling => return error_answer(StatusCode::BAD_REQUEST, "ThrottlingException"),
        Fault::ProvisionedThroughputExceeded => {
            return error_answer(StatusCode::BAD_REQUEST, "ProvisionedThroughputExceededException");
        }
        Fault::InternalError => return error_answer(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        _ => {}
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            headers.insert(name.clone(), value.clone());
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let upstream = shared
        .http
        .request(parts.method.clone(), format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(upstream) = upstream else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = upstream.status();
    let content_type = upstream.headers().get("content-type").cloned();
    let Ok(answer) = upstream.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    match fault {
        Fault::DropAfterApply => {
            // The headers promise the whole body; the stream then fails, and the connection is cut.
            let length = answer.len().to_string();
            let cut = futures::stream::once(async { Err::<Bytes, std::io::Error>(std::io::Error::other("cut")) });
            return Response::builder()
                .status(status)
                .header("content-length", length)
                .body(Body::from_stream(cut))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response());
        }
        Fault::SlowAfterApply => tokio::time::sleep(Duration::from_millis(3500)).await,
        _ => {}
    }
    let mut response = (status, answer).into_response();
    if let Some(content_type) = content_type {
        response.headers_mut().insert("content-type", content_type);
    }
    response
}

//! Logs every request once: its request id, method, path, status and latency.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

pub(super) async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id =
        request.headers().get(super::REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or("-").to_owned();
    let response = next.run(request).await;
    tracing::info!(
        request_id,
        %method,
        path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

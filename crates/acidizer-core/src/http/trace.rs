//! The access log, as tower-http's `TraceLayer`: every request runs in a span that carries its request id, method
//! and path — so whatever it logs (a store warning, say) says which request it was — and is logged once when
//! answered, with its status and latency.
//!
//! The span is at WARN level, so that it is there whenever warnings are logged; the line per request is at INFO, in
//! the target [`ACCESS_LOG`](super::ACCESS_LOG), which a host can leave out: a line that is filtered out costs
//! nothing.

use axum::body::Body;
use http::{Request, Response};
use std::time::Duration;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

/// The span of one request.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RequestSpan;

impl MakeSpan<Body> for RequestSpan {
    fn make_span(&mut self, request: &Request<Body>) -> Span {
        let id = request.headers().get(super::REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or("-");
        tracing::warn_span!("request", id, method = %request.method(), path = request.uri().path())
    }
}

/// The line logged when a request is answered.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Answered;

impl<B> OnResponse<B> for Answered {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        tracing::info!(
            target: super::ACCESS_LOG,
            status = response.status().as_u16(),
            latency_ms = latency.as_secs_f64() * 1000.0,
            "answered"
        );
    }
}

/// The layer: a span per request, a line per answer; nothing when a request starts, and failures (5xx) only as
/// their answer's line (their cause is logged where it happened, inside the span).
pub(super) fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), Answered, (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(Answered)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

//! What is logged about a request. Every request runs with its context — its request id, method and path — at
//! hand (a task-local: a few cheap clones), and the span `request` with those fields is made only when a line about
//! the request is logged: a store's failure ([`in_request_span`]) or the access log's line. So every such line
//! names its request, and a request that logs nothing makes no span — a span's fields are formatted and its
//! bookkeeping done on every request, which cost a tenth of the server's time per increment.
//!
//! The access log is tower-http's `TraceLayer`: a line per answered request, at INFO, in the target
//! [`ACCESS_LOG`](super::ACCESS_LOG), which a host can leave out: a line that is filtered out costs nothing.

use http::{HeaderValue, Method, Request, Response, Uri};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::{Level, Span};

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// The request being served: what the lines logged about it name.
pub(super) struct RequestContext {
    id: Option<HeaderValue>,
    method: Method,
    uri: Uri,
}

impl RequestContext {
    fn of<B>(request: &Request<B>) -> Self {
        Self {
            id: request.headers().get(super::REQUEST_ID).cloned(),
            method: request.method().clone(),
            uri: request.uri().clone(),
        }
    }

    /// At WARN, so that it is there whenever warnings are logged.
    fn span(&self) -> Span {
        let id = self.id.as_ref().and_then(|value| value.to_str().ok()).unwrap_or("-");
        tracing::warn_span!("request", id, method = %self.method, path = self.uri.path())
    }
}

/// Runs `log` in the span of the request being served, if it runs for one.
pub(crate) fn in_request_span<T>(log: impl FnOnce() -> T) -> T {
    match REQUEST.try_with(RequestContext::span) {
        Ok(span) => span.in_scope(log),
        Err(_) => log(),
    }
}

/// The layer that keeps each request's context for as long as it runs (outside the access log, whose line is
/// logged in the request's span).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct KeepContext;

impl<S> Layer<S> for KeepContext {
    type Service = WithContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithContext(inner)
    }
}

/// A service whose requests each run with their context.
#[derive(Debug, Clone)]
pub(super) struct WithContext<S>(S);

impl<S, B> Service<Request<B>> for WithContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<RequestContext, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let context = RequestContext::of(&request);
        REQUEST.scope(context, self.0.call(request))
    }
}

/// The line logged when a request is answered.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Answered;

impl<B> OnResponse<B> for Answered {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        if tracing::enabled!(target: super::ACCESS_LOG, Level::INFO) {
            in_request_span(|| {
                tracing::info!(
                    target: super::ACCESS_LOG,
                    status = response.status().as_u16(),
                    latency_ms = latency.as_secs_f64() * 1000.0,
                    "answered"
                );
            });
        }
    }
}

/// No span of its own: the request's span is made when a line needs it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct NoSpan;

impl<B> MakeSpan<B> for NoSpan {
    fn make_span(&mut self, _request: &Request<B>) -> Span {
        Span::none()
    }
}

/// The access log: a line per answer; nothing when a request starts, and failures (5xx) only as their answer's
/// line (their cause is logged where it happened, in the request's span).
pub(super) fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, NoSpan, (), Answered, (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(NoSpan)
        .on_request(())
        .on_response(Answered)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

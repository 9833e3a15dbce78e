//! What is logged about a request. Every request runs with its context — its request id, method and path — at
//! hand (a task-local: a few cheap clones), and the span `request` with those fields is made only when a line about
//! the request is logged: the cause of a 5xx answer ([`in_request_span`]) or the access log's line. So every such line
//! names its request, and a request that logs nothing makes no span — a span's fields are formatted and its
//! bookkeeping done on every request, which cost 8 % of the throughput under load.
//!
//! A filter that names the span (`RUST_LOG='[request]=debug'`) does not select a request's lines: the span does not
//! exist yet when the filter decides.
//!
//! The access log is tower-http's `TraceLayer`: a line per answered request, at INFO, in the target
//! [`ACCESS_LOG`](super::ACCESS_LOG), which a host can leave out. Left out when the router is built, the layer is
//! not in it: a request then pays nothing for the access log, not even its timing.

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

/// Runs `log` — a line about the request being served — in the request's span, if it runs for one (in the future
/// of a request through the router; not in a task it spawned).
pub fn in_request_span<T>(log: impl FnOnce() -> T) -> T {
    match REQUEST.try_with(RequestContext::span) {
        Ok(span) => span.in_scope(log),
        Err(_) => log(),
    }
}

/// The layer that keeps each request's context while its answer is made: while the inner service's future runs
/// (not in its `call`, nor while the body streams out). Outside the access log, whose line is logged in the
/// request's span.
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
    /// Only in a router built with the access log enabled ([`access_log_enabled`]): no check again here.
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
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

/// No span of its own: the request's span is made when a line needs it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct NoSpan;

impl<B> MakeSpan<B> for NoSpan {
    fn make_span(&mut self, _request: &Request<B>) -> Span {
        Span::none()
    }
}

/// Whether the access log's lines are logged (by the subscriber of the calling thread).
pub(super) fn access_log_enabled() -> bool {
    tracing::enabled!(target: super::ACCESS_LOG, Level::INFO)
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

#[cfg(test)]
mod tests {
    use crate::router;
    use acidizer_core::store::{ChangeCommand, ChangeOutcome, CounterStore, HistoryQuery, StoreError};
    use acidizer_core::{AllowedOrigins, AuditRecord, CounterName, CounterSnapshot, Counters};
    use std::sync::{Arc, Mutex};
    use tower::ServiceExt;

    /// A store that is down.
    struct Down;

    impl CounterStore for Down {
        async fn change(&self, _: ChangeCommand) -> Result<ChangeOutcome, StoreError> {
            Err(StoreError::unavailable(std::io::Error::other("down")))
        }
        async fn read(&self, _: &CounterName) -> Result<CounterSnapshot, StoreError> {
            Err(StoreError::unavailable(std::io::Error::other("down")))
        }
        async fn history(&self, _: &CounterName, _: HistoryQuery) -> Result<Vec<AuditRecord>, StoreError> {
            Err(StoreError::unavailable(std::io::Error::other("down")))
        }
        async fn health(&self) -> Result<(), StoreError> {
            Err(StoreError::unavailable(std::io::Error::other("down")))
        }
    }

    /// The log lines written while `run` runs, at `filter`.
    fn logged(filter: &str, run: impl FnOnce()) -> String {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let bytes = lines.lock().map(|lines| lines.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut lines) = self.0.lock() {
                lines.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn increment_on_a_store_that_is_down() -> http::StatusCode {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let app = router(Counters::new(Down), &AllowedOrigins::None);
        let request = http::Request::post("/counters/down/increment").body(axum::body::Body::empty()).unwrap();
        runtime.block_on(app.oneshot(request)).unwrap().status()
    }

    #[test]
    fn a_store_warning_and_the_access_line_are_each_in_the_request_span_once() {
        let logs = logged("info", || assert_eq!(increment_on_a_store_that_is_down(), 503));
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines.len(), 2, "{logs}");
        for line in lines {
            assert_eq!(line.matches("request{id=\"").count(), 1, "{line}");
            assert!(line.contains(r#"method=POST path="/counters/down/increment"}"#), "{line}");
        }
        assert!(logs.contains("WARN") && logs.contains("the store cannot serve this request"), "{logs}");
        assert!(
            logs.contains(r#"error="the change "#) && logs.contains("failed: the store is unavailable: down"),
            "the failure's whole chain, once: {logs}"
        );
        assert!(logs.contains("answered") && logs.contains("status=503"), "{logs}");
    }

    #[test]
    fn without_the_access_log_only_the_warning_is_logged() {
        let logs = logged("info,acidizer::access=warn", || assert_eq!(increment_on_a_store_that_is_down(), 503));
        assert_eq!(logs.lines().count(), 1, "{logs}");
        assert!(logs.contains("request{id=\"") && logs.contains("the store cannot serve this request"), "{logs}");
    }

    #[test]
    fn a_line_outside_any_request_has_no_request_span() {
        let logs = logged("info", || super::in_request_span(|| tracing::info!("not about a request")));
        assert!(logs.contains("not about a request") && !logs.contains("request{"), "{logs}");
    }
}

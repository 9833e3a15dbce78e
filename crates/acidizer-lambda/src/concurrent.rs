//! The runtime loop of a function that may take several invocations at once: on Lambda Managed Instances, as many
//! as `AWS_LAMBDA_MAX_CONCURRENCY` says, in one process (one store, one set of groups, shared by them all); on
//! on-demand Lambda, where the variable is not set, one at a time, as before. Each invocation is traced and the
//! metrics are flushed after it, as `metrics_cloudwatch_embedded`'s own loop does.

use crate::{COLD_START_METRIC, Collector, REQUEST_ID_PROPERTY};
use futures::Stream;
use lambda_runtime::layers::TracingLayer;
use lambda_runtime::{Diagnostic, IntoFunctionResponse, LambdaEvent, LambdaInvocation, Runtime};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};
use tower::Service;

/// Runs `handler` until the runtime stops.
pub async fn run<A, F, R, B, S, D, E>(metrics: &'static Collector, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Service<LambdaEvent<A>, Response = R> + Clone + Send + 'static,
    F::Future: Future<Output = Result<R, F::Error>> + Send + 'static,
    F::Error: Into<Diagnostic> + std::fmt::Debug,
    A: for<'de> Deserialize<'de> + Send + 'static,
    R: IntoFunctionResponse<B, S> + Send + 'static,
    B: Serialize + Send + 'static,
    S: Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send + 'static,
    E: Into<lambda_runtime::Error> + Send + std::fmt::Debug + 'static,
{
    Runtime::new(handler)
        .layer(TracingLayer::new())
        .layer(tower::layer::layer_fn(move |inner| Flushed { metrics, inner }))
        .run_concurrent()
        .await
}

/// Names each invocation's metrics by its request id, counts the cold start, and flushes the metrics after each
/// invocation. (`metrics_cloudwatch_embedded`'s own layer does the same, but its future holds a span that cannot
/// move between threads, and invocations that run at once must.)
#[derive(Clone)]
struct Flushed<S> {
    metrics: &'static Collector,
    inner: S,
}

impl<S> Service<LambdaInvocation> for Flushed<S>
where
    S: Service<LambdaInvocation>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let metrics = self.metrics;
        // Invocations that run at once share the collector: the last to start names the metrics flushed.
        metrics.set_property(REQUEST_ID_PROPERTY, invocation.context.request_id.clone());
        static COLD_START: Once = Once::new();
        COLD_START.call_once(|| {
            if let Err(error) =
                metrics.write_single(COLD_START_METRIC, Some(metrics::Unit::Count), 1, std::io::stdout())
            {
                tracing::warn!(%error, "cannot write the cold start metric");
            }
        });
        let handled = self.inner.call(invocation);
        Box::pin(async move {
            let result = handled.await;
            if let Err(error) = metrics.flush(std::io::stdout()) {
                tracing::warn!(%error, "cannot flush the metrics");
            }
            result
        })
    }
}

//! What every acidizer Lambda function starts with: logs as Lambda's log format asks (`AWS_LAMBDA_LOG_FORMAT`,
//! JSON in the template), and the metrics of `acidizer_core::telemetry` in CloudWatch Embedded Metric Format,
//! flushed to stdout after each invocation, under `METRICS_NAMESPACE` with a `Function` dimension.

pub use metrics_cloudwatch_embedded::Collector;
pub use metrics_cloudwatch_embedded::lambda::{handler, service};

/// The environment variable naming the metrics' CloudWatch namespace.
pub const METRICS_NAMESPACE_ENV: &str = "METRICS_NAMESPACE";
/// The namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Acidizer";

/// The metrics could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start metrics")]
pub struct MetricsError(#[source] metrics_cloudwatch_embedded::Error);

/// Starts logging and metrics for the function `function` (the `Function` dimension of its metrics).
pub fn init(function: &'static str) -> Result<&'static Collector, lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let namespace = std::env::var(METRICS_NAMESPACE_ENV).unwrap_or_else(|_| DEFAULT_NAMESPACE.to_owned());
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace)
        .with_dimension("Function", function)
        .lambda_cold_start_metric("ColdStart")
        .with_lambda_request_id("RequestId")
        .init()
        .map_err(MetricsError)?;
    Ok(collector)
}

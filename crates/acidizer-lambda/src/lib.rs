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
#[derive(thiserror::Error)]
#[error("cannot start metrics")]
pub struct MetricsError(#[source] metrics_cloudwatch_embedded::Error);

/// What a function's environment lacks, or holds that it cannot use: it does not start.
#[derive(thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is not valid")]
    Invalid {
        name: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ConfigError {
    pub fn invalid(name: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Invalid { name, source: Box::new(source) }
    }
}

/// The variable `name`, which must be set.
pub fn required_env(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError::Missing(name))
}

// A function that cannot start returns its error from `main`, which prints it with `Debug`: the whole chain, on one
// line, rather than the structure.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&acidizer_core::telemetry::error_chain(self))
    }
}

impl std::fmt::Debug for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&acidizer_core::telemetry::error_chain(self))
    }
}

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

//! What every acidizer Lambda function starts with: logs as Lambda's log format asks (`AWS_LAMBDA_LOG_FORMAT`,
//! JSON in the template), and the metrics of `acidizer_core::telemetry` in CloudWatch Embedded Metric Format,
//! flushed to stdout after each invocation, under `METRICS_NAMESPACE` with a `Function` dimension.

pub mod concurrent;

pub use metrics_cloudwatch_embedded::Collector;
pub use metrics_cloudwatch_embedded::lambda::{handler, service};

/// The environment variable naming the metrics' CloudWatch namespace.
pub const METRICS_NAMESPACE_ENV: &str = "METRICS_NAMESPACE";
/// The namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Acidizer";
/// The metric of each cold start.
const COLD_START_METRIC: &str = "ColdStart";
/// The property that names the invocation a line of metrics is from.
const REQUEST_ID_PROPERTY: &str = "RequestId";

/// Why a function does not start: its metrics, or what its environment lacks or holds that it cannot use.
#[derive(thiserror::Error)]
pub enum StartError {
    #[error("cannot start metrics")]
    Metrics(#[source] metrics_cloudwatch_embedded::Error),
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is not valid")]
    Invalid {
        name: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StartError {
    pub fn invalid(name: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Invalid { name, source: Box::new(source) }
    }
}

/// The variable `name`, which must be set.
pub fn required_env(name: &'static str) -> Result<String, StartError> {
    std::env::var(name).map_err(|_| StartError::Missing(name))
}

// A function that cannot start returns its error from `main`, which prints it with `Debug`: the whole chain, on one
// line, rather than the structure.
impl std::fmt::Debug for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&acidizer_core::telemetry::error_chain(self))
    }
}

/// Starts logging and metrics for the function `function` (the `Function` dimension of its metrics).
pub fn init(function: &'static str) -> Result<&'static Collector, StartError> {
    lambda_runtime::tracing::init_default_subscriber();
    let namespace = std::env::var(METRICS_NAMESPACE_ENV).unwrap_or_else(|_| DEFAULT_NAMESPACE.to_owned());
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace)
        .with_dimension("Function", function)
        // What metrics_cloudwatch_embedded's own loop writes (acidizer-ws, acidizer-stream); `concurrent` writes the
        // same for acidizer-api.
        .lambda_cold_start_metric(COLD_START_METRIC)
        .with_lambda_request_id(REQUEST_ID_PROPERTY)
        .init()
        .map_err(StartError::Metrics)?;
    Ok(collector)
}

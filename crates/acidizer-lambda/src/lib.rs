//! What every acidizer Lambda function starts with: logs as Lambda's log format asks (`AWS_LAMBDA_LOG_FORMAT`,
//! JSON in the template), and the metrics of `acidizer_core::telemetry` in CloudWatch Embedded Metric Format,
//! flushed to stdout after each invocation, under `METRICS_NAMESPACE` with a `Function` dimension.

pub mod http_event;

pub use metrics_cloudwatch_embedded::Collector;
pub use metrics_cloudwatch_embedded::lambda::{handler, service};

/// The environment variable naming the metrics' CloudWatch namespace.
pub const METRICS_NAMESPACE_ENV: &str = "METRICS_NAMESPACE";
/// The namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Acidizer";

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
        .map_err(|error| format!("cannot start metrics: {error}"))?;
    Ok(collector)
}

/// Counts the 5xx answers of `app` as `ServerErrors`, with the function version that gave them (`Version`, from
/// `AWS_LAMBDA_FUNCTION_VERSION`): a store failure answered as 503 is an invocation that succeeded, which Lambda's
/// own `Errors` never counts, and a canary deployment is judged on its new version alone.
pub fn count_server_errors(app: axum::Router) -> axum::Router {
    let version = std::env::var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|_| "$LATEST".to_owned());
    let version: &'static str = Box::leak(version.into_boxed_str());
    app.layer(axum::middleware::map_response(move |response: axum::response::Response| async move {
        if response.status().is_server_error() {
            metrics::counter!(acidizer_core::telemetry::SERVER_ERRORS, "Version" => version).increment(1);
        }
        response
    }))
}

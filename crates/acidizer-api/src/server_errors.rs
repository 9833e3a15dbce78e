//! The `ServerErrors` metric of the HTTP API.

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

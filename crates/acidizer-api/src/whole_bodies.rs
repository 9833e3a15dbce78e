//! The router's answers with their bodies read whole. Lambda sends an answer back whole in any case; a whole body
//! can also be shared between threads, which lambda_http asks of an answer when invocations run at once (Lambda
//! Managed Instances), and axum's streaming body cannot.

use axum::Router;
use axum::response::Response;
use std::convert::Infallible;
use tower::ServiceExt;
use tower::util::AndThen;

/// How a router's answer becomes a whole one.
type Whole = fn(Response) -> WholeFuture;
type WholeFuture =
    std::pin::Pin<Box<dyn Future<Output = Result<http::Response<lambda_http::Body>, Infallible>> + Send>>;

/// `app`, answering with whole bodies.
pub fn whole_bodies(app: Router) -> AndThen<Router, Whole> {
    ServiceExt::<lambda_http::Request>::and_then(app, read_whole as Whole)
}

fn read_whole(response: Response) -> WholeFuture {
    Box::pin(async move {
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) if bytes.is_empty() => lambda_http::Body::Empty,
            Ok(bytes) => lambda_http::Body::from(bytes.to_vec()),
            // The router's bodies are in memory: this is not expected, and is answered as a server error.
            Err(error) => {
                tracing::error!(error = acidizer_core::telemetry::error_chain(&error), "cannot read an answer's body");
                let mut failed = http::Response::new(lambda_http::Body::Empty);
                *failed.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                return Ok(failed);
            }
        };
        Ok(http::Response::from_parts(parts, body))
    })
}

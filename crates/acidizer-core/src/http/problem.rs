//! The HTTP boundary's one error type, and the one place it becomes a status and an RFC 9457 body.

use crate::domain::{Bound, InvalidCounterName, InvalidHistoryLimit, InvalidIdempotencyKey};
use crate::store::StoreError;
use crate::usecase::ChangeError;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Every way a request can fail, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid: {0}")]
    MalformedBody(String),
    #[error("there is nothing at this path")]
    NotFound,
    #[error("this path takes WebSocket connections only: {0}")]
    NotWebSocket(String),
    #[error("pages from this origin may not open a WebSocket here")]
    OriginNotAllowed,
    #[error("this path does not answer this method")]
    MethodNotAllowed,
    #[error("the request body is larger than {} bytes", super::MAX_BODY_BYTES)]
    BodyTooLarge,
    #[error("the request body must be JSON (application/json)")]
    UnsupportedMediaType,
    #[error(transparent)]
    InvalidCounterName(#[from] InvalidCounterName),
    #[error(transparent)]
    InvalidIdempotencyKey(#[from] InvalidIdempotencyKey),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}; use a new key")]
    IdempotencyKeyReused(#[source] ChangeError),
    #[error("{0}")]
    OutOfBounds(#[source] ChangeError, Bound),
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the counter store could not serve this request; retry with the same Idempotency-Key")]
    Unavailable(#[source] StoreError),
    #[error("the service failed; the failure was logged")]
    Internal(#[source] StoreError),
    #[error("the service failed; the failure was logged")]
    Render(#[source] serde_json::Error),
}

impl From<InvalidHistoryLimit> for ApiError {
    fn from(error: InvalidHistoryLimit) -> Self {
        Self::InvalidParameter(error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Corrupt(_) => Self::Internal(error),
            other => Self::Unavailable(other),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::KeyUsedForAnotherRequest { .. } => Self::IdempotencyKeyReused(error),
            ChangeError::OutOfBounds { bound, .. } => Self::OutOfBounds(error, bound),
            ChangeError::Store(store) => store.into(),
        }
    }
}

impl ApiError {
    /// Status, problem type and title: the one mapping of errors to HTTP.
    fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::MalformedBody(_) => (StatusCode::BAD_REQUEST, "malformed-body", "Malformed request body"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::NotWebSocket(_) => (StatusCode::BAD_REQUEST, "not-a-websocket", "Not a WebSocket request"),
            Self::OriginNotAllowed => (StatusCode::FORBIDDEN, "origin-not-allowed", "Origin not allowed"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
            Self::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", "Request body too large"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            }
            Self::InvalidCounterName(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-counter-name", "Invalid counter name")
            }
            Self::InvalidIdempotencyKey(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-idempotency-key", "Invalid Idempotency-Key")
            }
            Self::InvalidParameter(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-parameter", "Invalid parameter"),
            Self::IdempotencyKeyReused(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused", "Idempotency-Key already used")
            }
            Self::OutOfBounds(_, Bound::Floor) => (StatusCode::CONFLICT, "counter-at-floor", "The counter is at 0"),
            Self::OutOfBounds(_, Bound::Ceiling(_)) => {
                (StatusCode::CONFLICT, "counter-at-ceiling", "The counter is at its ceiling")
            }
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Self::Internal(_) | Self::Render(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::Unavailable(_) => Some(1),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.classify();
        // A store's failures are logged by the use case that met them, in its span.
        if let Self::Render(source) = &self {
            tracing::error!(error = %source, "could not render an answer");
        }
        let body = serde_json::json!({
            "type": format!("urn:acidizer:problem:{slug}"),
            "title": title,
            "status": status.as_u16(),
            "detail": self.to_string(),
        })
        .to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

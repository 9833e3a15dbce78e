//! The HTTP boundary's one error type, and the one place it becomes a status and an RFC 9457 body.

use acidizer_core::domain::{Bound, CounterName, InvalidCounterName, InvalidHistoryLimit, InvalidIdempotencyKey};
use acidizer_core::store::StoreError;
use acidizer_core::telemetry::error_chain;
use acidizer_core::usecase::ChangeError;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Every way a request can fail, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid: {0}")]
    MalformedBody(String),
    #[error("there is nothing at this path")]
    NotFound,
    #[error("there is no counter '{0}' here")]
    UnknownCounter(CounterName),
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
    Unavailable(#[source] Failure),
    #[error("the service failed; the failure was logged")]
    Internal(#[source] Failure),
    #[error("the service failed; the failure was logged")]
    Render(#[source] serde_json::Error),
}

impl From<InvalidHistoryLimit> for ApiError {
    fn from(error: InvalidHistoryLimit) -> Self {
        Self::InvalidParameter(error.to_string())
    }
}

/// What failed behind a 5xx answer, with its causes: logged, never shown to the client.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Logs a failure at `$level` with its chain of causes on one line; a change's failure also names the change.
macro_rules! failure_line {
    ($level:ident, $failure:expr) => {{
        let error = error_chain($failure.as_ref());
        match $failure.downcast_ref::<ChangeError>() {
            Some(ChangeError::Store { counter, delta, request_id, .. }) => tracing::$level!(
                error,
                %counter,
                delta = delta.as_i64(),
                %request_id,
                "the store cannot serve this request"
            ),
            _ => tracing::$level!(error, "the store cannot serve this request"),
        }
    }};
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Corrupt(_) => Self::Internal(Box::new(error)),
            other => Self::Unavailable(Box::new(other)),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::KeyUsedForAnotherRequest { .. } => Self::IdempotencyKeyReused(error),
            ChangeError::OutOfBounds { bound, .. } => Self::OutOfBounds(error, bound),
            ChangeError::Store { source: StoreError::Corrupt(_), .. } => Self::Internal(Box::new(error)),
            ChangeError::Store { .. } => Self::Unavailable(Box::new(error)),
        }
    }
}

/// Every kind of problem an answer can carry: its status, the `SLUG` of its type (`urn:acidizer:problem:SLUG`)
/// and its title, listed once.
macro_rules! problems {
    ($($kind:ident: $status:ident, $slug:literal, $title:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Problem {
            $($kind,)*
        }

        impl Problem {
            const ALL: &'static [Problem] = &[$(Problem::$kind,)*];

            fn describe(self) -> (StatusCode, &'static str, &'static str) {
                match self {
                    $(Problem::$kind => (StatusCode::$status, $slug, $title),)*
                }
            }
        }
    };
}

problems! {
    MalformedBody: BAD_REQUEST, "malformed-body", "Malformed request body";
    NotFound: NOT_FOUND, "not-found", "Not found";
    NotWebSocket: BAD_REQUEST, "not-a-websocket", "Not a WebSocket request";
    OriginNotAllowed: FORBIDDEN, "origin-not-allowed", "Origin not allowed";
    MethodNotAllowed: METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed";
    BodyTooLarge: PAYLOAD_TOO_LARGE, "body-too-large", "Request body too large";
    UnsupportedMediaType: UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type";
    InvalidCounterName: UNPROCESSABLE_ENTITY, "invalid-counter-name", "Invalid counter name";
    InvalidIdempotencyKey: UNPROCESSABLE_ENTITY, "invalid-idempotency-key", "Invalid Idempotency-Key";
    InvalidParameter: UNPROCESSABLE_ENTITY, "invalid-parameter", "Invalid parameter";
    IdempotencyKeyReused: UNPROCESSABLE_ENTITY, "idempotency-key-reused", "Idempotency-Key already used";
    CounterAtFloor: CONFLICT, "counter-at-floor", "The counter is at 0";
    CounterAtCeiling: CONFLICT, "counter-at-ceiling", "The counter is at its ceiling";
    RateLimited: TOO_MANY_REQUESTS, "rate-limited", "Too many requests";
    Unavailable: SERVICE_UNAVAILABLE, "unavailable", "Service unavailable";
    Internal: INTERNAL_SERVER_ERROR, "internal", "Internal error";
}

/// The prefix of every problem type.
const PROBLEM_TYPE_PREFIX: &str = "urn:acidizer:problem:";

impl ApiError {
    /// Every problem type an answer can carry (`urn:acidizer:problem:SLUG`), with the status it comes with.
    pub fn problem_types() -> impl Iterator<Item = (StatusCode, String)> {
        Problem::ALL.iter().map(|problem| {
            let (status, slug, _) = problem.describe();
            (status, format!("{PROBLEM_TYPE_PREFIX}{slug}"))
        })
    }

    /// The one mapping of errors to problems.
    fn problem(&self) -> Problem {
        match self {
            Self::MalformedBody(_) => Problem::MalformedBody,
            Self::NotFound | Self::UnknownCounter(_) => Problem::NotFound,
            Self::NotWebSocket(_) => Problem::NotWebSocket,
            Self::OriginNotAllowed => Problem::OriginNotAllowed,
            Self::MethodNotAllowed => Problem::MethodNotAllowed,
            Self::BodyTooLarge => Problem::BodyTooLarge,
            Self::UnsupportedMediaType => Problem::UnsupportedMediaType,
            Self::InvalidCounterName(_) => Problem::InvalidCounterName,
            Self::InvalidIdempotencyKey(_) => Problem::InvalidIdempotencyKey,
            Self::InvalidParameter(_) => Problem::InvalidParameter,
            Self::IdempotencyKeyReused(_) => Problem::IdempotencyKeyReused,
            Self::OutOfBounds(_, Bound::Floor) => Problem::CounterAtFloor,
            Self::OutOfBounds(_, Bound::Ceiling(_)) => Problem::CounterAtCeiling,
            Self::RateLimited { .. } => Problem::RateLimited,
            Self::Unavailable(_) => Problem::Unavailable,
            Self::Internal(_) | Self::Render(_) => Problem::Internal,
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
        let (status, slug, title) = self.problem().describe();
        // What failed is logged here, once, with its causes, in the request's span; the client gets the detail.
        match &self {
            Self::Unavailable(failure) => crate::in_request_span(|| failure_line!(warn, failure)),
            Self::Internal(failure) => crate::in_request_span(|| failure_line!(error, failure)),
            Self::Render(source) => {
                crate::in_request_span(|| tracing::error!(error = %source, "could not render an answer"));
            }
            _ => {}
        }
        let body = serde_json::json!({
            "type": format!("{PROBLEM_TYPE_PREFIX}{slug}"),
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

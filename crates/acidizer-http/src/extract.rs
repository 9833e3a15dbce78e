//! The extractors: what a request carries — path, query, headers, body — parsed into domain values, or refused
//! with the [`ApiError`] the client gets.

use crate::{ApiError, IDEMPOTENCY_KEY, MAX_BODY_BYTES};
use acidizer_core::Counters;
use acidizer_core::domain::{
    CounterName, HistoryLimit, IdempotencyKey, InvalidCounterName, InvalidIdempotencyKey, Seq,
};
use acidizer_core::store::HistoryQuery;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use http::request::Parts;
use http::{HeaderMap, header};

/// The counter a route is about: its `{name}`, or `global` on the routes without one (`/value`, `/increment`, …).
/// A valid name of a counter that does not exist on this host (`COUNTER_NAMES`) is not found.
pub(crate) struct RouteCounter(pub(crate) CounterName);

impl<S: Send + Sync> FromRequestParts<Counters<S>> for RouteCounter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, counters: &Counters<S>) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, counters).await.map_err(|_| InvalidCounterName)?;
        let counter = match params.iter().find(|(key, _)| *key == "name") {
            Some((_, raw)) => CounterName::parse(raw)?,
            None => CounterName::global(),
        };
        if !counters.known().admits(&counter) {
            return Err(ApiError::UnknownCounter(counter));
        }
        Ok(Self(counter))
    }
}

/// A page of history asked for in the query: `limit` (1..=100, default 20) and `before` (a `seq` ≥ 1); other
/// parameters are ignored.
pub(crate) struct HistoryParams(pub(crate) HistoryQuery);

impl<S: Sync> FromRequestParts<S> for HistoryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        history_query(parts.uri.query()).map(Self)
    }
}

/// What a change carries besides its path: the client's idempotency key, if any, and a body that is empty or a JSON
/// object. Read from the request's own headers, which are not copied.
pub(crate) struct ChangeRequest {
    pub(crate) key: Option<IdempotencyKey>,
}

impl<S: Sync> FromRequest<S> for ChangeRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let key = idempotency_key(&parts.headers)?;
        change_body(&parts.headers, body).await?;
        Ok(Self { key })
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let raw = value.to_str().map_err(|_| InvalidIdempotencyKey)?;
    Ok(Some(IdempotencyKey::parse(raw)?))
}

fn history_query(raw_query: Option<&str>) -> Result<HistoryQuery, ApiError> {
    let mut query = HistoryQuery { before: None, limit: HistoryLimit::default() };
    for (name, value) in form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "limit" => query.limit = HistoryLimit::parse(&value)?,
            "before" => query.before = Some(parse_before(&value)?),
            _ => {}
        }
    }
    Ok(query)
}

fn parse_before(raw: &str) -> Result<Seq, ApiError> {
    match raw.parse::<Seq>() {
        Ok(value) if value >= 1 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(value),
        _ => Err(ApiError::InvalidParameter("before is a whole number of at least 1".to_owned())),
    }
}

/// A change's body is empty or a JSON object (unknown fields ignored), at most [`MAX_BODY_BYTES`].
async fn change_body(headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| ApiError::BodyTooLarge)?;
    if bytes.is_empty() {
        return Ok(());
    }
    if !is_json_content_type(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(ApiError::MalformedBody("the body must be a JSON object, such as {}".to_owned())),
        Err(error) => Err(ApiError::MalformedBody(format!("the body is not JSON: {error}"))),
    }
}

/// A body without a content type is taken as JSON; otherwise the type must be `application/json` or `*/*+json`.
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_query_defaults_and_bounds() {
        let default = history_query(None).unwrap();
        assert_eq!((default.before, default.limit.get()), (None, 20));
        let page = history_query(Some("limit=5&before=42&other=x")).unwrap();
        assert_eq!((page.before, page.limit.get()), (Some(42), 5));
        for bad in ["limit=0", "limit=101", "limit=x", "before=0", "before=-3", "before=abc", "before="] {
            assert!(matches!(history_query(Some(bad)), Err(ApiError::InvalidParameter(_))), "{bad}");
        }
    }

    #[test]
    fn json_content_types() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static(value));
            is_json_content_type(&headers)
        };
        assert!(is_json_content_type(&HeaderMap::new()));
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
    }

    #[tokio::test]
    async fn increment_bodies() {
        let json = {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            headers
        };
        assert!(change_body(&json, Body::empty()).await.is_ok());
        assert!(change_body(&json, Body::from("{}")).await.is_ok());
        assert!(change_body(&json, Body::from(r#"{"by": 5}"#)).await.is_ok());
        for bad in ["[]", "1", "\"x\"", "null", "{", "nope"] {
            assert!(matches!(change_body(&json, Body::from(bad)).await, Err(ApiError::MalformedBody(_))));
        }
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert!(matches!(change_body(&json, Body::from(big)).await, Err(ApiError::BodyTooLarge)));
    }
}

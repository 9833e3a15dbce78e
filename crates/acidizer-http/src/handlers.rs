//! The route handlers, one per operation: the extractors parse the request, the handler runs the use case, and
//! the answer is JSON or an [`ApiError`]. The `global` routes (`/value`, `/increment`, …) share their handlers with
//! the named routes: the [`RouteCounter`] extractor names the counter.

use crate::extract::{ChangeRequest, HistoryParams, RouteCounter};
use crate::{ApiError, IDEMPOTENT_REPLAYED};
use acidizer_core::domain::Delta;
use acidizer_core::store::CounterStore;
use acidizer_core::usecase::Counters;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// A JSON answer, rendered: `application/json`, never cached.
pub(crate) struct Json(String);

impl Json {
    fn of(value: &impl serde::Serialize) -> Result<Self, ApiError> {
        serde_json::to_string(value).map(Self).map_err(ApiError::Render)
    }
}

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::OK, self.0).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A change's answer: the body the change was first answered with, byte for byte, marked when it is a replay.
pub(crate) struct Changed {
    body: Json,
    replayed: bool,
}

impl IntoResponse for Changed {
    fn into_response(self) -> Response {
        let mut response = self.body.into_response();
        if self.replayed {
            response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}

pub(crate) async fn read<S: CounterStore>(
    State(counters): State<Counters<S>>,
    RouteCounter(counter): RouteCounter,
) -> Result<Json, ApiError> {
    Json::of(&counters.read(&counter).await?)
}

pub(crate) async fn increment<S: CounterStore>(
    State(counters): State<Counters<S>>,
    RouteCounter(counter): RouteCounter,
    ChangeRequest { key }: ChangeRequest,
) -> Result<Changed, ApiError> {
    change(&counters, counter, Delta::Increment, key).await
}

pub(crate) async fn decrement<S: CounterStore>(
    State(counters): State<Counters<S>>,
    RouteCounter(counter): RouteCounter,
    ChangeRequest { key }: ChangeRequest,
) -> Result<Changed, ApiError> {
    change(&counters, counter, Delta::Decrement, key).await
}

pub(crate) async fn history<S: CounterStore>(
    State(counters): State<Counters<S>>,
    RouteCounter(counter): RouteCounter,
    HistoryParams(query): HistoryParams,
) -> Result<Json, ApiError> {
    Json::of(&counters.history(&counter, query).await?)
}

pub(crate) async fn health<S: CounterStore>(State(counters): State<Counters<S>>) -> Result<Json, ApiError> {
    // A store that cannot serve requests is unavailable, whatever the reason.
    counters.health().await.map_err(|error| ApiError::Unavailable(Box::new(error)))?;
    Ok(Json(r#"{"status":"ok"}"#.to_owned()))
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn change<S: CounterStore>(
    counters: &Counters<S>,
    counter: acidizer_core::CounterName,
    delta: Delta,
    key: Option<acidizer_core::IdempotencyKey>,
) -> Result<Changed, ApiError> {
    let reply = counters.change(counter, delta, key).await?;
    Ok(Changed { body: Json(reply.body), replayed: reply.replayed })
}

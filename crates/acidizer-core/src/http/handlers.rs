//! The route handlers: parse the request, run the use case, render the answer.

use super::input::{self, ChangeInput};
use super::{ApiError, IDEMPOTENT_REPLAYED};
use crate::domain::{CounterName, Delta};
use crate::store::CounterStore;
use crate::usecase::Counters;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

type PathName = Result<Path<String>, PathRejection>;
/// A change's input, or why it is not valid: answered after an invalid counter name, which is reported first.
type Change = Result<ChangeInput, ApiError>;

pub(super) async fn read<S: CounterStore>(State(counters): State<Counters<S>>, name: PathName) -> Response {
    respond(read_counter(&counters, input::counter_name(name)).await)
}

pub(super) async fn read_global<S: CounterStore>(State(counters): State<Counters<S>>) -> Response {
    respond(read_counter(&counters, Ok(CounterName::global())).await)
}

pub(super) async fn increment<S: CounterStore>(
    State(counters): State<Counters<S>>,
    name: PathName,
    change: Change,
) -> Response {
    respond(change_counter(&counters, input::counter_name(name), Delta::Increment, change).await)
}

pub(super) async fn increment_global<S: CounterStore>(State(counters): State<Counters<S>>, change: Change) -> Response {
    respond(change_counter(&counters, Ok(CounterName::global()), Delta::Increment, change).await)
}

pub(super) async fn decrement<S: CounterStore>(
    State(counters): State<Counters<S>>,
    name: PathName,
    change: Change,
) -> Response {
    respond(change_counter(&counters, input::counter_name(name), Delta::Decrement, change).await)
}

pub(super) async fn decrement_global<S: CounterStore>(State(counters): State<Counters<S>>, change: Change) -> Response {
    respond(change_counter(&counters, Ok(CounterName::global()), Delta::Decrement, change).await)
}

pub(super) async fn history<S: CounterStore>(
    State(counters): State<Counters<S>>,
    name: PathName,
    RawQuery(query): RawQuery,
) -> Response {
    respond(counter_history(&counters, input::counter_name(name), query.as_deref()).await)
}

pub(super) async fn history_global<S: CounterStore>(
    State(counters): State<Counters<S>>,
    RawQuery(query): RawQuery,
) -> Response {
    respond(counter_history(&counters, Ok(CounterName::global()), query.as_deref()).await)
}

pub(super) async fn health<S: CounterStore>(State(counters): State<Counters<S>>) -> Response {
    match counters.health().await {
        Ok(()) => json(serde_json::json!({ "status": "ok" }).to_string()),
        Err(error) => ApiError::Unavailable(error).into_response(),
    }
}

pub(super) async fn not_found() -> Response {
    ApiError::NotFound.into_response()
}

pub(super) async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

async fn read_counter<S: CounterStore>(
    counters: &Counters<S>,
    name: Result<CounterName, ApiError>,
) -> Result<Response, ApiError> {
    let snapshot = counters.read(&name?).await?;
    json_of(&snapshot)
}

async fn change_counter<S: CounterStore>(
    counters: &Counters<S>,
    name: Result<CounterName, ApiError>,
    delta: Delta,
    change: Change,
) -> Result<Response, ApiError> {
    let name = name?;
    let ChangeInput { key } = change?;
    let reply = counters.change(name, delta, key).await?;
    let mut response = json(reply.body);
    if reply.replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn counter_history<S: CounterStore>(
    counters: &Counters<S>,
    name: Result<CounterName, ApiError>,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let name = name?;
    let query = input::history_query(query)?;
    let page = counters.history(&name, query).await?;
    json_of(&page)
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn json_of(value: &impl serde::Serialize) -> Result<Response, ApiError> {
    Ok(json(serde_json::to_string(value).map_err(ApiError::Render)?))
}

fn json(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

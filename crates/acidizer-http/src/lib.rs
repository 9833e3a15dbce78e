//! The one HTTP router of acidizer, over `http` types: the `acidizer-api` Lambda and `acidizer serve` both run it.
//! Its routes are listed once ([`Route`]), its errors become answers in one place ([`ApiError`]), and its OpenAPI
//! document is checked against both.

mod cors;
mod extract;
mod handlers;
mod openapi;
mod problem;
mod routes;
mod trace;

pub use openapi::OPENAPI_JSON;
pub use problem::{ApiError, Failure};
pub use routes::Route;
pub use trace::in_request_span;

use acidizer_core::AllowedOrigins;
use acidizer_core::store::CounterStore;
use acidizer_core::usecase::Counters;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// The header that tells a client its change is a replay of an earlier answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// The header a client sends to make a change idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header that carries the id of each HTTP request, in the logs and in the answer.
pub const REQUEST_ID: &str = "x-request-id";
/// The log target of the line written for every answered request (the access log).
pub const ACCESS_LOG: &str = "acidizer::access";
/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024;

/// Builds the router answering every route of the contract. Whether it writes the access log (the target
/// [`ACCESS_LOG`] at INFO) is decided here, by the logs the calling thread has then: a host sets its logs up
/// before it builds the router, and a filter changed later does not add or remove the access log.
pub fn router<S: CounterStore>(counters: Counters<S>, origins: &AllowedOrigins) -> Router {
    router_with_fallback(counters, origins, Router::new().fallback(handlers::not_found))
}

/// The same router, with `fallback` answering the paths that are not routes of the API (a host's own pages);
/// the access log as [`router`] says.
pub fn router_with_fallback<S: CounterStore>(
    counters: Counters<S>,
    origins: &AllowedOrigins,
    fallback: Router,
) -> Router {
    guarded_router(counters, origins, fallback, |routes| routes)
}

/// The same router, with `guard` (a host's own limits) around every route, inside the request id, the access log
/// and CORS: what it refuses is logged and answered with CORS headers like any other answer; the access log as
/// [`router`] says.
pub fn guarded_router<S: CounterStore>(
    counters: Counters<S>,
    origins: &AllowedOrigins,
    fallback: Router,
    guard: impl FnOnce(Router) -> Router,
) -> Router {
    let request_id = http::HeaderName::from_static(REQUEST_ID);
    // The API's routes are exactly those of `Route::ALL`, which the OpenAPI document is checked against.
    let routes = Route::ALL
        .into_iter()
        .fold(Router::new(), |router, route| router.route(route.path(), route.handler::<S>()))
        .fallback_service(fallback)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(counters);
    // One stack, applied once (outermost first): each `Router::layer` boxes every route anew, and a request then
    // pays a boxed clone and a boxed future per layer. The access log is in it only when its lines are logged
    // (decided here, by the logs as they are set up when the router is built): otherwise it would still time every
    // answer and every frame of its body.
    let context = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(trace::KeepContext);
    let routes = guard(routes);
    if trace::access_log_enabled() {
        routes.layer(context.layer(trace::layer()).layer(cors::layer(origins)))
    } else {
        routes.layer(context.layer(cors::layer(origins)))
    }
}

//! The routes of the API, listed once: the router is built from this list, and the OpenAPI document is checked
//! against it.

use crate::{handlers, openapi};
use acidizer_core::store::CounterStore;
use acidizer_core::usecase::Counters;
use axum::routing::{MethodFilter, MethodRouter, on};
use http::Method;

/// One route of the API: a path (in the syntax axum and OpenAPI share) and the method it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Read,
    Increment,
    Decrement,
    History,
    ReadGlobal,
    IncrementGlobal,
    DecrementGlobal,
    HistoryGlobal,
    Health,
    OpenApi,
}

impl Route {
    /// Every route the router answers.
    pub const ALL: [Route; 10] = [
        Route::Read,
        Route::Increment,
        Route::Decrement,
        Route::History,
        Route::ReadGlobal,
        Route::IncrementGlobal,
        Route::DecrementGlobal,
        Route::HistoryGlobal,
        Route::Health,
        Route::OpenApi,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Route::Read => "/counters/{name}",
            Route::Increment => "/counters/{name}/increment",
            Route::Decrement => "/counters/{name}/decrement",
            Route::History => "/counters/{name}/history",
            Route::ReadGlobal => "/value",
            Route::IncrementGlobal => "/increment",
            Route::DecrementGlobal => "/decrement",
            Route::HistoryGlobal => "/history",
            Route::Health => "/health",
            Route::OpenApi => "/openapi.json",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Route::Increment | Route::Decrement | Route::IncrementGlobal | Route::DecrementGlobal => Method::POST,
            Route::Read
            | Route::History
            | Route::ReadGlobal
            | Route::HistoryGlobal
            | Route::Health
            | Route::OpenApi => Method::GET,
        }
    }

    /// The route's handler, under its method: a `global` route shares the named route's.
    pub(crate) fn handler<S: CounterStore>(self) -> MethodRouter<Counters<S>> {
        let method = MethodFilter::try_from(self.method()).expect("a route's method is one axum can route");
        match self {
            Route::Read | Route::ReadGlobal => on(method, handlers::read::<S>),
            Route::Increment | Route::IncrementGlobal => on(method, handlers::increment::<S>),
            Route::Decrement | Route::DecrementGlobal => on(method, handlers::decrement::<S>),
            Route::History | Route::HistoryGlobal => on(method, handlers::history::<S>),
            Route::Health => on(method, handlers::health::<S>),
            Route::OpenApi => on(method, openapi::serve),
        }
    }
}

//! The core of acidizer: domain types that can only hold valid values, the store port, the use cases
//! (increment, read, history) and the one HTTP router that every host — the `acidizer-api` Lambda and
//! `acidizer serve` — runs unchanged.

pub mod domain;
pub mod http;
pub mod live;
pub mod store;
pub mod telemetry;
pub mod usecase;

pub use domain::{
    AuditRecord, ConnectionId, CounterChange, CounterName, CounterSnapshot, CounterValue, HistoryLimit, IdempotencyKey,
    Increment, RequestId, Timestamp,
};
pub use store::{CounterStore, HistoryQuery, IncrementCommand, IncrementOutcome, StoreError};
pub use usecase::Counters;

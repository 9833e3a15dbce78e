//! The core of acidizer: domain types that can only hold valid values, the store port, the use cases
//! (change, read, history) and the one HTTP router that every host — the `acidizer-api` Lambda and
//! `acidizer serve` — runs unchanged.

pub mod domain;
pub mod http;
pub mod live;
pub mod store;
pub mod telemetry;
pub mod usecase;

pub use domain::{
    AuditRecord, Bound, Change, ConnectionId, CounterChange, CounterMax, CounterName, CounterSnapshot, CounterValue,
    Delta, HistoryLimit, IdempotencyKey, RequestId, Seq, Timestamp,
};
pub use store::{ChangeCommand, ChangeOutcome, CounterStore, HistoryQuery, StoreError};
pub use usecase::Counters;

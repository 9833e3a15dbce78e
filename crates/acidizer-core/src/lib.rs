//! The core of acidizer: domain types that can only hold valid values, the ports (the counter store, the
//! connection store, the notifier), the use cases (change, read, history, health) and the broadcast use case. No
//! HTTP: the router every HTTP host runs is `acidizer-http`.

pub mod backoff;
pub mod domain;
pub mod live;
pub mod store;
pub mod telemetry;
pub mod usecase;

pub use domain::{
    ALLOWED_ORIGINS_ENV, AllowedOrigins, AuditRecord, Bound, Change, ConnectionId, CounterChange, CounterMax,
    CounterName, CounterSnapshot, CounterValue, Delta, HistoryLimit, IdempotencyKey, InvalidOrigin, KnownCounters,
    RequestId, Seq, Timestamp,
};
pub use store::{ChangeCommand, ChangeOutcome, CounterStore, HistoryQuery, StoreError};
pub use usecase::Counters;

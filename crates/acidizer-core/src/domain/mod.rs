//! Domain types. Each newtype can only be built from a valid value ("parse, don't validate").

mod allowed_origins;
mod bounds;
mod client_address;
mod connection_id;
mod counter_name;
mod history_limit;
mod known_counters;
mod records;
mod request_id;
mod timestamp;

pub use allowed_origins::{ALLOWED_ORIGINS_ENV, AllowedOrigins, InvalidOrigin};
pub use bounds::{Bound, COUNTER_MAX_ENV, CounterMax, Delta, InvalidCounterMax, InvalidDelta, LARGEST_CEILING};
pub use client_address::ClientAddress;
pub use connection_id::{ConnectionId, InvalidConnectionId};
pub use counter_name::{CounterName, InvalidCounterName};
pub use history_limit::{HistoryLimit, InvalidHistoryLimit};
pub use known_counters::{COUNTER_NAMES_ENV, InvalidCounterNames, KnownCounters};
pub use records::{AuditRecord, Change, CounterChange, CounterSnapshot, CounterValue, Seq, UnrenderableChange};
pub use request_id::{IdempotencyKey, InvalidIdempotencyKey, RequestId};
pub use timestamp::Timestamp;

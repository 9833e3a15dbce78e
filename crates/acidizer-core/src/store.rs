//! The store port: what a counter store must do, and how it fails.

use crate::domain::{
    AuditRecord, Bound, CounterMax, CounterName, CounterSnapshot, CounterValue, Delta, HistoryLimit, RequestId, Seq,
    Timestamp,
};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a key's answer is remembered for replays (the contract promises at least 24 h).
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(48 * 60 * 60);

/// One change to commit: the counter, +1 or -1, the request id it is known by, the ceiling it must stay under, and
/// the instant of the request (both stores stamp a change with the instant of the commit that carries it instead,
/// so that `updatedAt` follows the `seq`s).
#[derive(Debug, Clone)]
pub struct ChangeCommand {
    pub counter: CounterName,
    pub delta: Delta,
    pub request_id: RequestId,
    pub max: CounterMax,
    pub at: Timestamp,
    /// The store gives up (with [`StoreError::Timeout`]) rather than commit after this instant.
    pub deadline: Instant,
}

/// What a store did with a [`ChangeCommand`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The change committed with its audit record; `body` is the answer, now remembered under the request id.
    Committed { value: CounterValue, seq: Seq, body: String },
    /// The request id was used before: `body` is the answer given then, to a change of `counter` by `delta`.
    Replayed { counter: CounterName, delta: Delta, body: String },
    /// The change would cross a bound: nothing was committed or remembered.
    Refused(Bound),
}

/// A page of history: records with `seq`s below `before` (all when `None`), newest first.
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery {
    pub before: Option<Seq>,
    pub limit: HistoryLimit,
}

/// Why a store failed, as its adapter met it: kept whole, so a caller can look through it and the log line shows
/// its whole chain. Shared, because one failed commit fails every change of its group.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// How a store fails. None of these is the client's fault; all of them are worth a retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Other increments of the same counter kept winning until the deadline; nothing was committed.
    #[error("too much contention on the counter; nothing was committed")]
    Contention,
    /// The store is throttling or its queue is full; nothing was committed.
    #[error("the store is overloaded; nothing was committed")]
    Overloaded,
    /// The deadline passed before the store answered; the outcome may be unknown.
    #[error("the store did not answer in time")]
    Timeout,
    /// The store could not be reached or failed.
    #[error("the store is unavailable")]
    Unavailable(#[source] Cause),
    /// The store holds data this code cannot read.
    #[error("the store holds an unreadable record")]
    Corrupt(#[source] Cause),
}

impl StoreError {
    /// The store failed because of `cause`.
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Arc::new(cause))
    }

    /// The store holds a record that `cause` says cannot be read.
    pub fn corrupt(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Corrupt(Arc::new(cause))
    }
}

/// A change whose answer cannot be written holds a time no timestamp can show: an unreadable record.
impl From<crate::domain::UnrenderableChange> for StoreError {
    fn from(error: crate::domain::UnrenderableChange) -> Self {
        Self::corrupt(error)
    }
}

/// A durable counter store. Implementations uphold the contract's promises: a change commits its counter value and
/// `seq`, its audit record and its remembered answer together, durably, before it returns; the bounds are checked
/// inside the same transaction.
pub trait CounterStore: Send + Sync + 'static {
    fn change(&self, command: ChangeCommand) -> impl Future<Output = Result<ChangeOutcome, StoreError>> + Send;

    fn read(&self, counter: &CounterName) -> impl Future<Output = Result<CounterSnapshot, StoreError>> + Send;

    fn history(
        &self,
        counter: &CounterName,
        query: HistoryQuery,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;

    /// Answers `Ok` when the store can serve requests.
    fn health(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

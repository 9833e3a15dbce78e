//! Why the embedded store failed a request, and what it found unreadable: the causes its `StoreError`s carry.

use acidizer_core::{CounterName, RequestId};

/// The store's own failures (SQLite's errors are carried as they are).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("the writer has stopped")]
    WriterStopped,
    #[error("a read task failed")]
    ReadTask(#[source] tokio::task::JoinError),
    #[error("commits can no longer be made durable")]
    NotDurable,
    #[error("the WAL could not be made durable: the outcome of the change is unknown")]
    UnknownOutcome,
}

/// A stored record this code cannot read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unreadable {
    #[error("audit record {seq} of {counter}")]
    AuditRecord {
        seq: i64,
        counter: CounterName,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the change {request_id}")]
    Change {
        request_id: RequestId,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("a counter overflows at {0}")]
    Overflow(u64),
    #[error("a negative counter value or seq {0}")]
    Negative(i64),
}

//! The use cases every host runs: increment, read, history and health.

use crate::domain::{AuditRecord, CounterName, CounterSnapshot, CounterValue, IdempotencyKey, RequestId, Timestamp};
use crate::store::{CounterStore, HistoryQuery, IncrementCommand, IncrementOutcome, StoreError};
use crate::telemetry;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request may spend in the store: the contract answers every request within 10 s.
pub const STORE_DEADLINE: Duration = Duration::from_secs(8);

/// The answer to an increment: the body sent the first time, and whether this is a replay of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementReply {
    pub body: String,
    pub replayed: bool,
}

/// Why an increment was refused.
#[derive(Debug, thiserror::Error)]
pub enum IncrementError {
    #[error("this Idempotency-Key was already used for the counter '{0}'")]
    KeyUsedForAnotherCounter(CounterName),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A page of a counter's history, newest first; `next` is the `before` of the following page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryPage {
    pub counter: CounterName,
    pub items: Vec<AuditRecord>,
    pub next: Option<CounterValue>,
}

/// The counters, over one store.
pub struct Counters<S> {
    store: Arc<S>,
}

impl<S> Clone for Counters<S> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store) }
    }
}

impl<S: CounterStore> Counters<S> {
    pub fn new(store: S) -> Self {
        Self { store: Arc::new(store) }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Increments `counter` once per request id: a repeated key replays the first answer.
    pub async fn increment(
        &self,
        counter: CounterName,
        key: Option<IdempotencyKey>,
    ) -> Result<IncrementReply, IncrementError> {
        let request_id = key.map_or_else(RequestId::generate, RequestId::from);
        let deadline = Instant::now() + STORE_DEADLINE;
        let command = IncrementCommand { counter: counter.clone(), request_id, at: Timestamp::now(), deadline };
        let started = Instant::now();
        let outcome = within_deadline(self.store.increment(command)).await;
        metrics::histogram!(telemetry::STORE_LATENCY).record(started.elapsed().as_secs_f64() * 1000.0);
        match outcome? {
            IncrementOutcome::Committed { body, .. } => {
                metrics::counter!(telemetry::INCREMENTS).increment(1);
                Ok(IncrementReply { body, replayed: false })
            }
            IncrementOutcome::Replayed { counter: first, body } if first == counter => {
                metrics::counter!(telemetry::REPLAYS).increment(1);
                Ok(IncrementReply { body, replayed: true })
            }
            IncrementOutcome::Replayed { counter: first, .. } => Err(IncrementError::KeyUsedForAnotherCounter(first)),
        }
    }

    pub async fn read(&self, counter: &CounterName) -> Result<CounterSnapshot, StoreError> {
        within_deadline(self.store.read(counter)).await
    }

    pub async fn history(&self, counter: &CounterName, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        let items = within_deadline(self.store.history(counter, query)).await?;
        // Values are gap-free 1..N, so a page ending above 1 has a successor.
        let next = items.last().map(|record| record.value).filter(|value| *value > 1);
        Ok(HistoryPage { counter: counter.clone(), items, next })
    }

    pub async fn health(&self) -> Result<(), StoreError> {
        within_deadline(self.store.health()).await
    }
}

async fn within_deadline<T>(work: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    // A little grace over the store's own deadline, so a store that honours it answers for itself.
    match tokio::time::timeout(STORE_DEADLINE + Duration::from_millis(500), work).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Timeout),
    }
}

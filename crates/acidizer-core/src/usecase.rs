//! The use cases every host runs: change (increment, decrement), read, history and health. They return their
//! failures with their causes; the host that answers the request logs them, once.

use crate::domain::{
    AuditRecord, Bound, CounterMax, CounterName, CounterSnapshot, Delta, IdempotencyKey, KnownCounters, RequestId, Seq,
    Timestamp,
};
use crate::store::{ChangeCommand, ChangeOutcome, CounterStore, HistoryQuery, StoreError};
use crate::telemetry;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request may spend in the store: the contract answers every request within 10 s.
pub const STORE_DEADLINE: Duration = Duration::from_secs(8);

/// The answer to a change: the body sent the first time, and whether this is a replay of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeReply {
    pub body: String,
    pub replayed: bool,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The key names another request: a change of another counter, or the other operation.
    #[error("this Idempotency-Key was already used for {} of the counter '{counter}'", match delta {
        Delta::Increment => "an increment",
        Delta::Decrement => "a decrement",
    })]
    KeyUsedForAnotherRequest { counter: CounterName, delta: Delta },
    /// The change would take the counter below 0 or above its ceiling; nothing was committed.
    #[error("{}", refusal(counter, *bound))]
    OutOfBounds { counter: CounterName, bound: Bound },
    /// The store failed; whether the change committed is unknown only after a [`StoreError::Timeout`].
    #[error("the change failed")]
    Store {
        counter: CounterName,
        delta: Delta,
        request_id: RequestId,
        #[source]
        source: StoreError,
    },
}

fn refusal(counter: &CounterName, bound: Bound) -> String {
    match bound {
        Bound::Floor => format!("the counter '{counter}' is at 0 and cannot go lower; nothing was changed"),
        Bound::Ceiling(max) => {
            format!("the counter '{counter}' is at its ceiling of {max} and cannot go higher; nothing was changed")
        }
    }
}

/// A page of a counter's history, newest first; `next` is the `before` of the following page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryPage {
    pub counter: CounterName,
    pub items: Vec<AuditRecord>,
    pub next: Option<Seq>,
}

/// The counters, over one store, each kept between 0 and `max`; those that exist are `known`.
pub struct Counters<S> {
    store: Arc<S>,
    max: CounterMax,
    known: KnownCounters,
}

impl<S> Clone for Counters<S> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), max: self.max, known: self.known.clone() }
    }
}

impl<S> Counters<S> {
    /// The counters that exist: a host answers any other as it answers an unknown path.
    pub fn known(&self) -> &KnownCounters {
        &self.known
    }
}

impl<S: CounterStore> Counters<S> {
    /// The counters with the default ceiling, every valid name existing.
    pub fn new(store: S) -> Self {
        Self { store: Arc::new(store), max: CounterMax::DEFAULT, known: KnownCounters::any() }
    }

    /// The same counters with another ceiling.
    pub fn with_max(self, max: CounterMax) -> Self {
        Self { max, ..self }
    }

    /// The same counters, only `known` ones existing.
    pub fn with_known(self, known: KnownCounters) -> Self {
        Self { known, ..self }
    }

    pub fn max(&self) -> CounterMax {
        self.max
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Changes `counter` by `delta` once per request id: a repeated key replays the first answer.
    pub async fn change(
        &self,
        counter: CounterName,
        delta: Delta,
        key: Option<IdempotencyKey>,
    ) -> Result<ChangeReply, ChangeError> {
        let request_id = key.map_or_else(RequestId::generate, RequestId::from);
        let started = Instant::now();
        let command = ChangeCommand {
            counter: counter.clone(),
            delta,
            request_id: request_id.clone(),
            max: self.max,
            at: Timestamp::now(),
            deadline: started + STORE_DEADLINE,
        };
        let outcome = within_deadline(self.store.change(command)).await;
        metrics::histogram!(telemetry::STORE_LATENCY).record(started.elapsed().as_secs_f64() * 1000.0);
        let outcome =
            outcome.map_err(|source| ChangeError::Store { counter: counter.clone(), delta, request_id, source })?;
        match outcome {
            ChangeOutcome::Committed { body, .. } => {
                let committed = match delta {
                    Delta::Increment => telemetry::INCREMENTS,
                    Delta::Decrement => telemetry::DECREMENTS,
                };
                metrics::counter!(committed).increment(1);
                Ok(ChangeReply { body, replayed: false })
            }
            ChangeOutcome::Replayed { counter: first, delta: first_delta, body }
                if first == counter && first_delta == delta =>
            {
                metrics::counter!(telemetry::REPLAYS).increment(1);
                Ok(ChangeReply { body, replayed: true })
            }
            ChangeOutcome::Replayed { counter, delta, .. } => {
                Err(ChangeError::KeyUsedForAnotherRequest { counter, delta })
            }
            ChangeOutcome::Refused(bound) => {
                metrics::counter!(telemetry::BOUND_REFUSALS).increment(1);
                Err(ChangeError::OutOfBounds { counter, bound })
            }
        }
    }

    pub async fn read(&self, counter: &CounterName) -> Result<CounterSnapshot, StoreError> {
        within_deadline(self.store.read(counter)).await
    }

    pub async fn history(&self, counter: &CounterName, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        let items = within_deadline(self.store.history(counter, query)).await?;
        // `seq`s are gap-free 1..N, so a page ending above 1 has a successor.
        let next = items.last().map(|record| record.seq).filter(|seq| *seq > 1);
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

//! The broadcast use case: the latest value of each changed counter to each of its subscribers.

use super::{ConnectionStore, Notifier, NotifyError, Outbound, SubscriberPage};
use crate::domain::{ConnectionId, CounterChange, CounterName};
use crate::telemetry;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What a broadcast did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Counters broadcast (after coalescing).
    pub counters: usize,
    /// Messages delivered.
    pub reached: usize,
    /// Subscribers found gone, and forgotten.
    pub gone: usize,
    /// Subscribers given up on after brief retries.
    pub failed: usize,
    /// Counters whose subscribers could not be listed: their broadcast was not (fully) attempted.
    pub unreachable: Vec<CounterName>,
}

enum Delivery {
    Reached,
    Gone,
    Failed,
}

/// Keeps the latest change of each counter: a batch of K increments costs one message per subscriber.
pub fn coalesce(changes: impl IntoIterator<Item = CounterChange>) -> Vec<CounterChange> {
    let mut latest: BTreeMap<CounterName, CounterChange> = BTreeMap::new();
    for change in changes {
        match latest.get(&change.counter) {
            Some(kept) if kept.value >= change.value => {}
            _ => {
                latest.insert(change.counter.clone(), change);
            }
        }
    }
    latest.into_values().collect()
}

/// Sends committed changes to subscribers through a [`Notifier`], with bounded concurrency; a subscriber that is
/// gone is forgotten, one that fails is retried briefly and then given up on, never failing the broadcast.
pub struct Broadcaster<C, N> {
    connections: Arc<C>,
    notifier: Arc<N>,
    concurrency: usize,
    attempts: u32,
    attempt_timeout: Duration,
    retry_pause: Duration,
}

impl<C, N> Clone for Broadcaster<C, N> {
    fn clone(&self) -> Self {
        Self {
            connections: Arc::clone(&self.connections),
            notifier: Arc::clone(&self.notifier),
            concurrency: self.concurrency,
            attempts: self.attempts,
            attempt_timeout: self.attempt_timeout,
            retry_pause: self.retry_pause,
        }
    }
}

impl<C: ConnectionStore, N: Notifier> Broadcaster<C, N> {
    pub fn new(connections: Arc<C>, notifier: Arc<N>) -> Self {
        Self {
            connections,
            notifier,
            concurrency: 64,
            attempts: 3,
            attempt_timeout: Duration::from_secs(2),
            retry_pause: Duration::from_millis(25),
        }
    }

    pub fn connections(&self) -> &C {
        &self.connections
    }

    pub fn notifier(&self) -> &N {
        &self.notifier
    }

    pub async fn broadcast(&self, changes: impl IntoIterator<Item = CounterChange>) -> BroadcastReport {
        let started = std::time::Instant::now();
        let mut report = BroadcastReport::default();
        for change in coalesce(changes) {
            report.counters += 1;
            let message = Outbound::change(&change);
            let mut page = None;
            loop {
                let SubscriberPage { connections, next } =
                    match self.connections.subscribers(&change.counter, page.take()).await {
                        Ok(found) => found,
                        Err(error) => {
                            tracing::warn!(counter = %change.counter, %error, "cannot list subscribers");
                            report.unreachable.push(change.counter.clone());
                            break;
                        }
                    };
                let deliveries: Vec<Delivery> = futures::stream::iter(connections)
                    .map(|connection| self.deliver(connection, &message))
                    .buffer_unordered(self.concurrency)
                    .collect()
                    .await;
                for delivery in deliveries {
                    match delivery {
                        Delivery::Reached => report.reached += 1,
                        Delivery::Gone => report.gone += 1,
                        Delivery::Failed => report.failed += 1,
                    }
                }
                match next {
                    Some(next) => page = Some(next),
                    None => break,
                }
            }
        }
        tracing::debug!(?report, "broadcast");
        metrics::counter!(telemetry::SUBSCRIBERS_REACHED).increment(report.reached as u64);
        metrics::counter!(telemetry::GONE_CONNECTIONS).increment(report.gone as u64);
        metrics::counter!(telemetry::POSTS_FAILED).increment(report.failed as u64);
        metrics::histogram!(telemetry::BROADCAST_DURATION).record(started.elapsed().as_secs_f64() * 1000.0);
        report
    }

    async fn deliver(&self, connection: ConnectionId, message: &Outbound) -> Delivery {
        for attempt in 0..self.attempts {
            match tokio::time::timeout(self.attempt_timeout, self.notifier.send(&connection, message)).await {
                Ok(Ok(())) => return Delivery::Reached,
                Ok(Err(NotifyError::Gone)) => {
                    if let Err(error) = self.connections.unsubscribe(&connection).await {
                        tracing::warn!(%connection, %error, "cannot forget a gone connection");
                    }
                    return Delivery::Gone;
                }
                Ok(Err(NotifyError::Failed(error))) => {
                    tracing::debug!(%connection, %error, attempt, "send failed");
                }
                Err(_) => {
                    // A slow send may still arrive: retrying could deliver it twice, so give up on this one.
                    tracing::debug!(%connection, "send timed out; giving up on this subscriber");
                    return Delivery::Failed;
                }
            }
            if attempt + 1 < self.attempts {
                tokio::time::sleep(self.retry_pause * 2u32.pow(attempt)).await;
            }
        }
        tracing::info!(%connection, "giving up on a subscriber after retries");
        Delivery::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::live::ConnectionStoreError;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn change(counter: &str, value: u64) -> CounterChange {
        CounterChange {
            counter: CounterName::parse(counter).unwrap(),
            value,
            updated_at: Timestamp::from_unix_millis(value as i64),
        }
    }

    #[test]
    fn coalescing_keeps_the_latest_value_per_counter() {
        let kept = coalesce([change("a", 1), change("b", 7), change("a", 3), change("a", 2)]);
        assert_eq!(kept, [change("a", 3), change("b", 7)]);
    }

    /// Subscribers in pages of two; a counter named `broken` cannot be listed.
    #[derive(Default)]
    struct Connections {
        subscribed: Mutex<BTreeMap<String, String>>,
    }

    impl ConnectionStore for Connections {
        async fn subscribe(&self, c: &ConnectionId, counter: &CounterName) -> Result<(), ConnectionStoreError> {
            self.subscribed.lock().unwrap().insert(c.to_string(), counter.to_string());
            Ok(())
        }
        async fn unsubscribe(&self, c: &ConnectionId) -> Result<(), ConnectionStoreError> {
            self.subscribed.lock().unwrap().remove(c.as_str());
            Ok(())
        }
        async fn subscription(&self, c: &ConnectionId) -> Result<Option<CounterName>, ConnectionStoreError> {
            Ok(self.subscribed.lock().unwrap().get(c.as_str()).map(|n| CounterName::parse(n).unwrap()))
        }
        async fn subscribers(
            &self,
            counter: &CounterName,
            page: Option<String>,
        ) -> Result<SubscriberPage, ConnectionStoreError> {
            if counter.as_str() == "broken" {
                return Err(ConnectionStoreError::Unavailable("down".into()));
            }
            // Pages of two, continued after the last id of the previous page (as a key-ordered store does).
            let after: Vec<ConnectionId> = self
                .subscribed
                .lock()
                .unwrap()
                .iter()
                .filter(|(id, c)| *c == counter.as_str() && page.as_ref().is_none_or(|last| *id > last))
                .map(|(id, _)| ConnectionId::parse(id).unwrap())
                .collect();
            let connections: Vec<ConnectionId> = after.iter().take(2).cloned().collect();
            let next = (after.len() > 2).then(|| connections[1].to_string());
            Ok(SubscriberPage { connections, next })
        }
    }

    /// Records what each connection received; `gone-*` are gone, `flaky-*` fail once, `bad-*` always fail.
    #[derive(Default)]
    struct Inboxes {
        received: Mutex<HashMap<String, Vec<u64>>>,
        attempts: Mutex<HashMap<String, u32>>,
    }

    impl Notifier for Inboxes {
        async fn send(&self, c: &ConnectionId, message: &Outbound) -> Result<(), NotifyError> {
            let attempt = {
                let mut attempts = self.attempts.lock().unwrap();
                let n = attempts.entry(c.to_string()).or_default();
                *n += 1;
                *n
            };
            let id = c.as_str();
            if id.starts_with("gone") {
                return Err(NotifyError::Gone);
            }
            if id.starts_with("bad") || (id.starts_with("flaky") && attempt == 1) {
                return Err(NotifyError::Failed("500".into()));
            }
            self.received.lock().unwrap().entry(id.to_owned()).or_default().push(message.value().unwrap());
            Ok(())
        }
    }

    #[tokio::test]
    async fn delivers_the_latest_value_once_forgets_the_gone_and_survives_the_failing() {
        let connections = Arc::new(Connections::default());
        for (id, counter) in
            [("ok-1", "a"), ("ok-2", "a"), ("flaky-1", "a"), ("gone-1", "a"), ("bad-1", "a"), ("ok-3", "b")]
        {
            connections
                .subscribe(&ConnectionId::parse(id).unwrap(), &CounterName::parse(counter).unwrap())
                .await
                .unwrap();
        }
        let inboxes = Arc::new(Inboxes::default());
        let broadcaster = Broadcaster::new(Arc::clone(&connections), Arc::clone(&inboxes));
        let report = broadcaster
            .broadcast([change("a", 1), change("a", 2), change("b", 5), change("a", 3), change("broken", 1)])
            .await;
        assert_eq!(report.counters, 3);
        assert_eq!((report.reached, report.gone, report.failed), (4, 1, 1));
        assert_eq!(report.unreachable, [CounterName::parse("broken").unwrap()]);
        let received = inboxes.received.lock().unwrap().clone();
        for id in ["ok-1", "ok-2", "flaky-1"] {
            assert_eq!(received[id], [3], "{id} got the latest value once");
        }
        assert_eq!(received["ok-3"], [5], "no subscriber sees another counter's values");
        assert_eq!(inboxes.attempts.lock().unwrap()["bad-1"], 3, "a failing subscriber is retried, then given up");
        let gone = connections.subscription(&ConnectionId::parse("gone-1").unwrap()).await.unwrap();
        assert_eq!(gone, None, "a gone subscriber is forgotten");
    }
}

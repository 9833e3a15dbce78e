//! The broadcast use case: the latest value of each changed counter to each of its subscribers.

use super::{ConnectionStore, Notifier, NotifyError, Outbound, SubscriberPage};
use crate::backoff::Backoff;
use crate::domain::{ConnectionId, CounterChange, CounterName};
use crate::telemetry::{self, error_chain};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How many subscribers a broadcast hands a message at once before letting other tasks run.
const YIELD_EVERY: usize = 1024;

/// What a broadcast did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Counters broadcast (after coalescing).
    pub counters: usize,
    /// Messages delivered.
    pub reached: usize,
    /// Subscribers found gone, and forgotten.
    pub gone: usize,
    /// Subscribers given up on after retries.
    pub failed: usize,
    /// Counters whose latest value did not reach every subscriber: their subscribers could not be listed, or a
    /// subscriber still failed when the time ran out. Their records are worth another broadcast later.
    pub undelivered: Vec<CounterName>,
}

enum Delivery {
    Reached,
    Gone,
    Failed,
}

/// Keeps the latest change (the highest `seq`) of each counter: a batch of K changes costs one message per
/// subscriber.
pub fn coalesce(changes: impl IntoIterator<Item = CounterChange>) -> Vec<CounterChange> {
    let mut latest: BTreeMap<CounterName, CounterChange> = BTreeMap::new();
    for change in changes {
        match latest.get(&change.counter) {
            Some(kept) if kept.seq >= change.seq => {}
            _ => {
                latest.insert(change.counter.clone(), change);
            }
        }
    }
    latest.into_values().collect()
}

/// Sends committed changes to subscribers through a [`Notifier`], with bounded concurrency; a subscriber that is
/// gone is forgotten, one that fails (a throttled or failing Management API) is retried with backoff until the
/// broadcast's time runs out, and then reported in [`BroadcastReport::undelivered`].
pub struct Broadcaster<C, N> {
    connections: Arc<C>,
    notifier: Arc<N>,
    concurrency: usize,
    attempt_timeout: Duration,
    retry_pause: Duration,
    max_retry_pause: Duration,
    time_budget: Duration,
}

impl<C, N> Clone for Broadcaster<C, N> {
    fn clone(&self) -> Self {
        Self {
            connections: Arc::clone(&self.connections),
            notifier: Arc::clone(&self.notifier),
            concurrency: self.concurrency,
            attempt_timeout: self.attempt_timeout,
            retry_pause: self.retry_pause,
            max_retry_pause: self.max_retry_pause,
            time_budget: self.time_budget,
        }
    }
}

impl<C: ConnectionStore, N: Notifier> Broadcaster<C, N> {
    pub fn new(connections: Arc<C>, notifier: Arc<N>) -> Self {
        Self {
            connections,
            notifier,
            concurrency: 64,
            attempt_timeout: Duration::from_secs(2),
            retry_pause: Duration::from_millis(25),
            max_retry_pause: Duration::from_secs(1),
            time_budget: Duration::from_secs(5),
        }
    }

    /// How long a [`Broadcaster::broadcast`] may keep retrying failing subscribers (5 s unless set).
    pub fn with_time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = budget;
        self
    }

    pub fn connections(&self) -> &C {
        &self.connections
    }

    pub fn notifier(&self) -> &N {
        &self.notifier
    }

    /// Broadcasts within the broadcaster's time budget.
    pub async fn broadcast(&self, changes: impl IntoIterator<Item = CounterChange>) -> BroadcastReport {
        self.broadcast_until(changes, Instant::now() + self.time_budget).await
    }

    /// Broadcasts the latest change of each counter; failing subscribers are retried until `deadline`.
    pub async fn broadcast_until(
        &self,
        changes: impl IntoIterator<Item = CounterChange>,
        deadline: Instant,
    ) -> BroadcastReport {
        let started = Instant::now();
        let mut report = BroadcastReport::default();
        for change in coalesce(changes) {
            report.counters += 1;
            let message = Outbound::change(&change);
            let failed_before = report.failed;
            let mut page = None;
            loop {
                if Instant::now() >= deadline {
                    // Out of time: this counter is left to the next broadcast, unsent rather than late.
                    tracing::info!(counter = %change.counter, "no time left to broadcast");
                    report.undelivered.push(change.counter.clone());
                    break;
                }
                let SubscriberPage { connections, next } =
                    match self.connections.subscribers(&change.counter, page.take()).await {
                        Ok(found) => found,
                        Err(error) => {
                            let error = error_chain(&error);
                            tracing::warn!(counter = %change.counter, error, "cannot list subscribers");
                            report.undelivered.push(change.counter.clone());
                            break;
                        }
                    };
                // What the notifier sends at once is counted here; the rest is sent concurrently, and retried.
                let mut waiting = Vec::new();
                for (handed, connection) in connections.into_iter().enumerate() {
                    if handed % YIELD_EVERY == YIELD_EVERY - 1 {
                        // Thousands of subscribers take milliseconds: other tasks on this thread get a turn.
                        tokio::task::yield_now().await;
                    }
                    match self.notifier.send_now(&connection, &message) {
                        Some(Ok(())) => report.reached += 1,
                        Some(Err(NotifyError::Gone)) => {
                            self.forget(&connection).await;
                            report.gone += 1;
                        }
                        Some(Err(error @ NotifyError::Failed(_))) => {
                            tracing::debug!(%connection, error = error_chain(&error), "send failed");
                            waiting.push(connection);
                        }
                        None => waiting.push(connection),
                    }
                }
                let deliveries: Vec<Delivery> = futures::stream::iter(waiting)
                    .map(|connection| self.deliver(connection, &message, deadline))
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
            if report.failed > failed_before && report.undelivered.last() != Some(&change.counter) {
                report.undelivered.push(change.counter.clone());
            }
        }
        tracing::debug!(?report, "broadcast");
        metrics::counter!(telemetry::SUBSCRIBERS_REACHED).increment(report.reached as u64);
        metrics::counter!(telemetry::GONE_CONNECTIONS).increment(report.gone as u64);
        metrics::counter!(telemetry::POSTS_FAILED).increment(report.failed as u64);
        metrics::histogram!(telemetry::BROADCAST_DURATION).record(started.elapsed().as_secs_f64() * 1000.0);
        report
    }

    /// Forgets a connection that is gone.
    async fn forget(&self, connection: &ConnectionId) {
        if let Err(error) = self.connections.unsubscribe(connection).await {
            tracing::warn!(%connection, error = error_chain(&error), "cannot forget a gone connection");
        }
    }

    async fn deliver(&self, connection: ConnectionId, message: &Outbound, deadline: Instant) -> Delivery {
        let mut backoff = Backoff::new(self.retry_pause, self.max_retry_pause);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Delivery::Failed;
            }
            match tokio::time::timeout(self.attempt_timeout.min(left), self.notifier.send(&connection, message)).await {
                Ok(Ok(())) => return Delivery::Reached,
                Ok(Err(NotifyError::Gone)) => {
                    self.forget(&connection).await;
                    return Delivery::Gone;
                }
                Ok(Err(error @ NotifyError::Failed(_))) => {
                    tracing::debug!(%connection, error = error_chain(&error), "send failed");
                }
                Err(_) => {
                    // A slow send may still arrive: the next broadcast (a retried batch) sends it again.
                    tracing::info!(%connection, "send timed out; leaving this subscriber to the next broadcast");
                    return Delivery::Failed;
                }
            }
            // While the broadcast's time lasts.
            let pause = backoff.next_delay();
            if Instant::now() + pause + self.attempt_timeout.min(Duration::from_millis(100)) >= deadline {
                tracing::info!(%connection, "giving up on a subscriber for this broadcast");
                return Delivery::Failed;
            }
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::live::ConnectionStoreError;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A change to `seq` (its value: `seq`, as if every change so far were an increment).
    fn change(counter: &str, seq: u64) -> CounterChange {
        CounterChange {
            counter: CounterName::parse(counter).unwrap(),
            value: seq,
            seq,
            updated_at: Timestamp::from_unix_millis(seq as i64),
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
                return Err(ConnectionStoreError::unavailable(std::io::Error::other("down")));
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

    /// Records what each connection received; `gone-*` are gone, `flaky-*` fail once, `bad-*` always fail. With
    /// `at_once`, it sends without waiting, as an in-process notifier does.
    #[derive(Default)]
    struct Inboxes {
        at_once: bool,
        received: Mutex<HashMap<String, Vec<u64>>>,
        attempts: Mutex<HashMap<String, u32>>,
        /// The connections sent to with `send` (rather than at once), once per attempt.
        waited_for: Mutex<Vec<String>>,
    }

    impl Inboxes {
        fn attempt(&self, c: &ConnectionId, message: &Outbound) -> Result<(), NotifyError> {
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
                return Err(NotifyError::failed(std::io::Error::other("500")));
            }
            self.received.lock().unwrap().entry(id.to_owned()).or_default().push(message.seq().unwrap());
            Ok(())
        }
    }

    impl Notifier for Inboxes {
        async fn send(&self, c: &ConnectionId, message: &Outbound) -> Result<(), NotifyError> {
            self.waited_for.lock().unwrap().push(c.to_string());
            self.attempt(c, message)
        }

        fn send_now(&self, c: &ConnectionId, message: &Outbound) -> Option<Result<(), NotifyError>> {
            self.at_once.then(|| self.attempt(c, message))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn delivers_the_latest_value_once_forgets_the_gone_and_survives_the_failing() {
        for at_once in [false, true] {
            let connections = Arc::new(Connections::default());
            for (id, counter) in
                [("ok-1", "a"), ("ok-2", "a"), ("flaky-1", "a"), ("gone-1", "a"), ("bad-1", "a"), ("ok-3", "b")]
            {
                connections
                    .subscribe(&ConnectionId::parse(id).unwrap(), &CounterName::parse(counter).unwrap())
                    .await
                    .unwrap();
            }
            let inboxes = Arc::new(Inboxes { at_once, ..Inboxes::default() });
            let broadcaster = Broadcaster::new(Arc::clone(&connections), Arc::clone(&inboxes))
                .with_time_budget(Duration::from_millis(300));
            let report = broadcaster
                .broadcast([change("a", 1), change("a", 2), change("b", 5), change("a", 3), change("broken", 1)])
                .await;
            assert_eq!(report.counters, 3);
            assert_eq!((report.reached, report.gone, report.failed), (4, 1, 1), "at once: {at_once}");
            let undelivered = ["a", "broken"].map(|name| CounterName::parse(name).unwrap());
            assert_eq!(report.undelivered, undelivered, "a failing subscriber and an unlistable counter are reported");
            let received = inboxes.received.lock().unwrap().clone();
            for id in ["ok-1", "ok-2", "flaky-1"] {
                assert_eq!(received[id], [3], "{id} got the latest value once");
            }
            assert_eq!(received["ok-3"], [5], "no subscriber sees another counter's values");
            let attempts = inboxes.attempts.lock().unwrap()["bad-1"];
            assert!(attempts >= 3, "a failing subscriber is retried until the time runs out: {attempts}");
            let gone = connections.subscription(&ConnectionId::parse("gone-1").unwrap()).await.unwrap();
            assert_eq!(gone, None, "a gone subscriber is forgotten");
            let waited_for = inboxes.waited_for.lock().unwrap().clone();
            if at_once {
                assert!(
                    waited_for.iter().all(|id| id == "flaky-1" || id == "bad-1"),
                    "only a failed send is made again with `send`: {waited_for:?}"
                );
                assert_eq!(waited_for.iter().filter(|id| *id == "flaky-1").count(), 1);
            } else {
                assert_eq!(waited_for.iter().filter(|id| id.starts_with("ok")).count(), 3);
            }
        }
    }

    /// Answers every send with a failure (a throttled Management API) until `until`, then delivers.
    struct ThrottledUntil {
        until: Instant,
        received: Mutex<HashMap<String, Vec<u64>>>,
    }

    impl Notifier for ThrottledUntil {
        async fn send(&self, c: &ConnectionId, message: &Outbound) -> Result<(), NotifyError> {
            if Instant::now() < self.until {
                return Err(NotifyError::failed(std::io::Error::other("429 Too Many Requests")));
            }
            self.received.lock().unwrap().entry(c.to_string()).or_default().push(message.seq().unwrap());
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_notifier_still_delivers_the_final_value_within_the_budget() {
        let connections = Arc::new(Connections::default());
        for id in ["s-1", "s-2", "s-3"] {
            connections.subscribe(&ConnectionId::parse(id).unwrap(), &CounterName::parse("a").unwrap()).await.unwrap();
        }
        let throttled =
            Arc::new(ThrottledUntil { until: Instant::now() + Duration::from_millis(400), received: Mutex::default() });
        let broadcaster =
            Broadcaster::new(Arc::clone(&connections), Arc::clone(&throttled)).with_time_budget(Duration::from_secs(5));
        let report = broadcaster.broadcast([change("a", 1), change("a", 9)]).await;
        assert_eq!((report.reached, report.failed), (3, 0));
        assert!(report.undelivered.is_empty());
        for id in ["s-1", "s-2", "s-3"] {
            assert_eq!(throttled.received.lock().unwrap()[id], [9]);
        }

        // Throttled past the budget: reported, so that the batch is sent again.
        let throttled =
            Arc::new(ThrottledUntil { until: Instant::now() + Duration::from_secs(60), received: Mutex::default() });
        let broadcaster = Broadcaster::new(connections, throttled).with_time_budget(Duration::from_millis(300));
        let report = broadcaster.broadcast([change("a", 10)]).await;
        assert_eq!(report.failed, 3);
        assert_eq!(report.undelivered, [CounterName::parse("a").unwrap()]);
    }
}

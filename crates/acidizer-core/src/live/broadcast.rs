//! The broadcast use case: the latest value of each changed counter to each of its subscribers.
//!
//! Each counter is swept lap by lap ([`Sweep`]), its subscribers listed a page at a time while the posts go out,
//! so memory holds a page and the posts in flight, not every subscriber. The posts in flight are as many as the
//! Management API takes ([`PostWidth`]); a throttled or failing post is retried with backoff while the time lasts,
//! with at most one post in flight to a subscriber. Every so often the counter's newest state is read
//! ([`NewestState`]): the subscribers not yet reached get it instead, and those already reached get it next. When
//! the time runs out, where the broadcast stood is kept ([`ConnectionStore::keep_progress`]) and the counter is
//! reported undelivered: the next broadcast goes on from there, the subscribers that missed the state first.

use super::sweep::Sweep;
use super::width::{PostWidth, Slot};
use super::{ConnectionStore, NewestState, Notifier, NotifyError, Outbound};
use crate::backoff::Backoff;
use crate::domain::{ConnectionId, CounterChange, CounterName, Timestamp};
use crate::telemetry::{self, error_chain};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How many subscribers a broadcast hands a message at once before letting other tasks run.
const YIELD_EVERY: usize = 1024;

/// The most posts in flight at once, unless set: 500 posts of 20 ms are 25 000 a second, past any account's rate.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 500;

/// How often a long broadcast reads the counter's newest state.
const REFRESH_EVERY: Duration = Duration::from_millis(250);

/// A broadcast takes no further page while this many subscribers it reached are left without the state: it ends,
/// and the next one serves them first. Their ids are kept in one item (DynamoDB's items hold 400 KB).
const MAX_PENDING: usize = 1000;

/// A subscriber whose posts fail (not throttled, not slow: refused) this many times in a row is left to the next
/// broadcast; left again by that one, it is given up on until the counter's next state.
const MAX_FAILED_ATTEMPTS: usize = 3;

/// What a broadcast did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Counters broadcast (after coalescing).
    pub counters: usize,
    /// Messages delivered.
    pub reached: usize,
    /// Subscribers found gone, and forgotten.
    pub gone: usize,
    /// Subscribers that did not get the state (failing, throttled or slow until the time ran out): the next
    /// broadcast serves them first; or that kept failing through two broadcasts, given up on until the next state.
    pub failed: usize,
    /// Posts answered "throttled" (each is tried again).
    pub throttled: usize,
    /// Counters whose latest value did not reach every subscriber: their subscribers could not be listed, or
    /// some were not reached when the time ran out. Their records are worth another broadcast later.
    pub undelivered: Vec<CounterName>,
}

impl BroadcastReport {
    fn add(&mut self, counter: &CounterName, sweep: CounterReport) {
        self.counters += 1;
        self.reached += sweep.reached;
        self.gone += sweep.gone;
        self.failed += sweep.failed;
        self.throttled += sweep.throttled;
        if !sweep.finished {
            self.undelivered.push(counter.clone());
        }
    }
}

/// What a broadcast did for one counter.
#[derive(Debug, Default)]
struct CounterReport {
    reached: usize,
    gone: usize,
    failed: usize,
    throttled: usize,
    finished: bool,
}

enum Delivery {
    Reached,
    Gone,
    /// Throttled or slow until the time ran out.
    Failed,
    /// Refused [`MAX_FAILED_ATTEMPTS`] times in a row.
    Refused,
}

/// The message of a broadcast's current state, shared with its posts: an attempt always sends the newest.
#[derive(Clone)]
struct Current(Arc<std::sync::Mutex<Arc<Outbound>>>);

impl Current {
    fn new(message: Outbound) -> Self {
        Self(Arc::new(std::sync::Mutex::new(Arc::new(message))))
    }

    fn get(&self) -> Arc<Outbound> {
        Arc::clone(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn set(&self, message: Outbound) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(message);
    }
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

/// How a subscriber's post is retried.
#[derive(Debug, Clone, Copy)]
struct Retries {
    attempt_timeout: Duration,
    first_pause: Duration,
    max_pause: Duration,
}

/// Sends committed changes to subscribers through a [`Notifier`] (see the module's documentation).
pub struct Broadcaster<C, N> {
    connections: Arc<C>,
    notifier: Arc<N>,
    newest: Option<Arc<dyn NewestState>>,
    width: Arc<PostWidth>,
    max_in_flight: usize,
    retries: Retries,
    time_budget: Duration,
}

impl<C, N> Clone for Broadcaster<C, N> {
    fn clone(&self) -> Self {
        Self {
            connections: Arc::clone(&self.connections),
            notifier: Arc::clone(&self.notifier),
            newest: self.newest.clone(),
            width: Arc::clone(&self.width),
            max_in_flight: self.max_in_flight,
            retries: self.retries,
            time_budget: self.time_budget,
        }
    }
}

impl<C: ConnectionStore, N: Notifier> Broadcaster<C, N> {
    pub fn new(connections: Arc<C>, notifier: Arc<N>) -> Self {
        Self {
            connections,
            notifier,
            newest: None,
            width: PostWidth::new(DEFAULT_MAX_IN_FLIGHT),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            retries: Retries {
                attempt_timeout: Duration::from_secs(2),
                first_pause: Duration::from_millis(25),
                max_pause: Duration::from_secs(1),
            },
            time_budget: Duration::from_secs(5),
        }
    }

    /// How long a [`Broadcaster::broadcast`] may go on (5 s unless set).
    pub fn with_time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = budget;
        self
    }

    /// At most `max` posts in flight at once ([`DEFAULT_MAX_IN_FLIGHT`] unless set).
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.width = PostWidth::new(max);
        self.max_in_flight = max.max(1);
        self
    }

    /// Reads each counter's newest state from `newest` while broadcasting it.
    pub fn with_newest_state(mut self, newest: Arc<dyn NewestState>) -> Self {
        self.newest = Some(newest);
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

    /// Broadcasts the latest change of each counter, the counters side by side, until `deadline`.
    pub async fn broadcast_until(
        &self,
        changes: impl IntoIterator<Item = CounterChange>,
        deadline: Instant,
    ) -> BroadcastReport {
        let started = Instant::now();
        let latest = coalesce(changes);
        let swept =
            futures::future::join_all(latest.iter().map(|change| self.broadcast_counter(change.clone(), deadline)))
                .await;
        let mut report = BroadcastReport::default();
        for (change, swept) in latest.iter().zip(swept) {
            report.add(&change.counter, swept);
        }
        tracing::debug!(?report, "broadcast");
        metrics::counter!(telemetry::SUBSCRIBERS_REACHED).increment(report.reached as u64);
        metrics::counter!(telemetry::GONE_CONNECTIONS).increment(report.gone as u64);
        metrics::counter!(telemetry::POSTS_FAILED).increment(report.failed as u64);
        metrics::counter!(telemetry::POSTS_THROTTLED).increment(report.throttled as u64);
        metrics::histogram!(telemetry::BROADCAST_DURATION).record(started.elapsed().as_secs_f64() * 1000.0);
        report
    }

    /// The counter's newest state, if one is known newer than `than`.
    async fn newer(&self, than: &CounterChange) -> Option<CounterChange> {
        let newest = self.newest.as_ref()?.newest(&than.counter).await?;
        (newest.seq > than.seq).then_some(newest)
    }

    async fn broadcast_counter(&self, change: CounterChange, deadline: Instant) -> CounterReport {
        let (counter, change_seq) = (change.counter.clone(), change.seq);
        let earlier = match self.connections.progress(&counter).await {
            Ok(earlier) => earlier,
            Err(error) => {
                // Without it, subscribers already reached would get the state again: the batch is tried again.
                tracing::warn!(%counter, error = error_chain(&error), "cannot read where the last broadcast stopped");
                return CounterReport::default();
            }
        };
        let state = self.newer(&change).await.unwrap_or(change);
        let (sweep, first, ahead) = match &earlier {
            None => (Sweep::new(state), Vec::new(), Vec::new()),
            Some(progress) => match Sweep::resume(state, progress) {
                Some(sweep) if sweep.state().seq == progress.seq => {
                    (sweep, progress.pending.clone(), progress.ahead.clone())
                }
                // A newer state: those left behind get it first, and the new lap passes them by.
                Some(sweep) => (sweep, progress.pending.clone(), Vec::new()),
                None => {
                    // An earlier broadcast sent this state, or a newer one, to everyone already, or is sending a
                    // newer one, which its own records (later in the stream) take on.
                    tracing::debug!(%counter, "a broadcast of this state or a newer one was made already");
                    return CounterReport { finished: true, ..CounterReport::default() };
                }
            },
        };
        let mut run = Run::new(self, sweep, deadline, &first, ahead);
        let listed = run.sweep(first).await;
        let pending = run.finish().await;
        let Run { sweep, mut report, given_up, ahead, .. } = run;
        let current = sweep.state().seq;
        let ahead: Vec<ConnectionId> = ahead.into_iter().filter(|(_, seq)| *seq >= current).map(|(id, _)| id).collect();
        let everyone = listed && sweep.is_done() && pending.is_empty();
        // A newer state than the batch's own was sent: its records follow in the stream, and the broadcast they
        // start goes on from here. Only a broadcast of the newest state known is worth a retry of its records.
        let taken_on = listed && sweep.state().seq > change_seq;
        report.finished = everyone || taken_on;
        report.failed = pending.len() + given_up;
        let progress = sweep.progress(pending, ahead, everyone);
        if let Err(error) = self.connections.keep_progress(&counter, &progress).await {
            // The next broadcast would go on from an older place: this batch is tried again instead.
            tracing::warn!(%counter, error = error_chain(&error), "cannot keep where the broadcast stopped");
            report.finished = false;
        }
        report
    }
}

/// One counter's broadcast under way.
struct Run<'a, C, N> {
    broadcaster: &'a Broadcaster<C, N>,
    sweep: Sweep,
    /// The message of the current state, which every post's next attempt sends.
    message: Current,
    deadline: Instant,
    /// No post starts after this, so that those in flight can end by the deadline.
    last_post: Instant,
    refreshed: Instant,
    /// Subscribers with a post in flight, and those of them the sweep has reached again meanwhile.
    in_flight: HashSet<ConnectionId>,
    revisit: HashSet<ConnectionId>,
    /// Subscribers whose post has ended that are due the newer state.
    again: Vec<ConnectionId>,
    posts: JoinSet<Ended>,
    /// Subscribers reached that did not get the state.
    pending: Vec<ConnectionId>,
    /// Subscribers an earlier broadcast left without the state (served first), and how many of them failed again.
    left_before: HashSet<ConnectionId>,
    given_up: usize,
    /// Subscribers a post brought a newer state than the lap it began in: the newer lap need not send it again.
    ahead: HashMap<ConnectionId, u64>,
    handed: usize,
    report: CounterReport,
    /// Whom each post's task is for: told when a task fails (panics) instead of ending.
    tasks: HashMap<tokio::task::Id, (ConnectionId, u64)>,
}

impl<'a, C: ConnectionStore, N: Notifier> Run<'a, C, N> {
    fn new(
        broadcaster: &'a Broadcaster<C, N>,
        sweep: Sweep,
        deadline: Instant,
        left_before: &[ConnectionId],
        ahead: Vec<ConnectionId>,
    ) -> Self {
        let seq = sweep.state().seq;
        let message = Current::new(Outbound::change(sweep.state()));
        let left = deadline.saturating_duration_since(Instant::now());
        let last_post = deadline - broadcaster.retries.attempt_timeout.min(left / 4);
        Self {
            broadcaster,
            sweep,
            message,
            deadline,
            last_post,
            refreshed: Instant::now(),
            in_flight: HashSet::new(),
            revisit: HashSet::new(),
            again: Vec::new(),
            posts: JoinSet::new(),
            pending: Vec::new(),
            left_before: left_before.iter().cloned().collect(),
            given_up: 0,
            ahead: ahead.into_iter().map(|id| (id, seq)).collect(),
            handed: 0,
            report: CounterReport::default(),
            tasks: HashMap::new(),
        }
    }

    fn counter(&self) -> &CounterName {
        &self.sweep.state().counter
    }

    /// Serves `first`, then sweeps the subscribers page by page until the lap ends or the time runs out. `false`
    /// if the subscribers could not be listed.
    async fn sweep(&mut self, first: Vec<ConnectionId>) -> bool {
        self.hand_all(first, false).await;
        while !self.sweep.is_done() {
            if Instant::now() >= self.last_post {
                // Out of time: the rest is left to the next broadcast, unsent rather than late.
                tracing::info!(counter = %self.counter(), "no time left to broadcast");
                return true;
            }
            if self.pending.len() >= MAX_PENDING {
                tracing::info!(counter = %self.counter(), pending = self.pending.len(), "too many subscribers left behind");
                return true;
            }
            self.refresh().await;
            let listed = self.broadcaster.connections.subscribers(self.counter(), self.sweep.listing_from()).await;
            let page = match listed {
                Ok(page) => page,
                Err(error) => {
                    let error = error_chain(&error);
                    tracing::warn!(counter = %self.counter(), error, "cannot list subscribers");
                    return false;
                }
            };
            let taken = self.sweep.take(page.connections, page.next.is_none());
            if !taken.is_empty() {
                let staleness = Timestamp::now().unix_millis() - self.sweep.state().updated_at.unix_millis();
                metrics::histogram!(telemetry::BROADCAST_STALENESS).record(staleness.max(0) as f64);
                metrics::histogram!(telemetry::POSTS_IN_FLIGHT).record(self.broadcaster.width.limit() as f64);
            }
            self.hand_all(taken, true).await;
            self.collect_finished();
            let again = std::mem::take(&mut self.again);
            self.hand_all(again, false).await;
        }
        true
    }

    /// Reads the counter's newest state, at most every [`REFRESH_EVERY`]: a newer one is sent from here on, in a
    /// new lap. Returns whether there was one.
    async fn refresh(&mut self) -> bool {
        if self.broadcaster.newest.is_none() || self.refreshed.elapsed() < REFRESH_EVERY {
            return false;
        }
        self.refreshed = Instant::now();
        let Some(newer) = self.broadcaster.newer(self.sweep.state()).await else { return false };
        if !self.sweep.offer(newer) {
            return false;
        }
        self.message.set(Outbound::change(self.sweep.state()));
        // The new lap goes round every subscriber: those that missed the older state get the newer one in it.
        self.pending.clear();
        true
    }

    /// Hands the current message to each of `connections` until the time runs out; if they are of a page the sweep
    /// took (`from_page`), also until a newer state begins a new lap, which reaches the rest.
    async fn hand_all(&mut self, connections: Vec<ConnectionId>, from_page: bool) {
        let mut connections = connections.into_iter();
        while let Some(connection) = connections.next() {
            if Instant::now() >= self.last_post {
                // A page's rest is listed again from the last subscriber reached; others are served first.
                if !from_page {
                    self.pending.push(connection);
                    self.pending.extend(connections);
                }
                return;
            }
            if from_page {
                if self.refresh().await {
                    return;
                }
                self.sweep.reached(&connection);
            }
            self.hand(connection).await;
        }
    }

    /// Hands the current message to `connection`: at once if the notifier can, else as a post in flight.
    async fn hand(&mut self, connection: ConnectionId) {
        if self.in_flight.contains(&connection) {
            // At most one post in flight to a subscriber: it gets the current state once that one ends.
            self.revisit.insert(connection);
            return;
        }
        if self.ahead.get(&connection).is_some_and(|seq| *seq >= self.sweep.state().seq) {
            return;
        }
        self.handed += 1;
        if self.handed.is_multiple_of(YIELD_EVERY) {
            // Thousands of subscribers take milliseconds: other tasks on this thread get a turn.
            tokio::task::yield_now().await;
        }
        let notifier = &self.broadcaster.notifier;
        let message = self.message.get();
        match notifier.send_now(&connection, &message) {
            Some(Ok(())) => {
                self.report.reached += 1;
                return;
            }
            Some(Err(NotifyError::Gone)) => {
                forget(&*self.broadcaster.connections, &connection).await;
                self.report.gone += 1;
                return;
            }
            Some(Err(error)) => {
                self.report.throttled += usize::from(matches!(error, NotifyError::Throttled(_)));
                tracing::debug!(%connection, error = error_chain(&error), "send failed");
            }
            None => {}
        }
        // Posts waiting to be tried again hold no slot; they are bounded too.
        while self.posts.len() >= 2 * self.broadcaster.max_in_flight {
            let Ok(Some(ended)) = tokio::time::timeout_at(self.last_post, self.posts.join_next_with_id()).await else {
                break;
            };
            self.ended(ended);
        }
        let Ok(slot) = tokio::time::timeout_at(self.last_post, self.broadcaster.width.acquire()).await else {
            self.pending.push(connection);
            return;
        };
        self.in_flight.insert(connection.clone());
        let post = Post {
            connections: Arc::clone(&self.broadcaster.connections),
            notifier: Arc::clone(&self.broadcaster.notifier),
            width: Arc::clone(&self.broadcaster.width),
            message: self.message.clone(),
            began: message.seq().unwrap_or_default(),
            retries: self.broadcaster.retries,
            last_post: self.last_post,
            deadline: self.deadline,
        };
        let began = post.began;
        let task = self.posts.spawn(post.deliver(connection.clone(), slot));
        self.tasks.insert(task.id(), (connection, began));
    }

    /// Takes in the posts that have ended, without waiting.
    fn collect_finished(&mut self) {
        while let Some(ended) = self.posts.try_join_next_with_id() {
            self.ended(ended);
        }
    }

    /// Takes in a post that has ended.
    fn ended(&mut self, ended: Result<(tokio::task::Id, Ended), tokio::task::JoinError>) {
        let Ended { connection, delivery, throttled, began, seq } = match ended {
            Ok((task, ended)) => {
                self.tasks.remove(&task);
                ended
            }
            Err(error) => {
                tracing::error!(%error, "a post's task failed");
                let Some((connection, began)) = self.tasks.remove(&error.id()) else { return };
                // Not delivered, as far as anyone knows: left for the next broadcast, as a failed post is.
                Ended { connection, delivery: Delivery::Failed, throttled: 0, began, seq: began }
            }
        };
        self.in_flight.remove(&connection);
        self.report.throttled += throttled;
        let current = self.sweep.state().seq;
        let mut again = self.revisit.remove(&connection);
        match delivery {
            Delivery::Reached => {
                self.report.reached += 1;
                if seq > began || self.left_before.contains(&connection) {
                    // It got a newer state than its lap's, on a later attempt; or, left behind by the last
                    // broadcast, it was served first: the lap passes it by.
                    self.ahead.insert(connection.clone(), seq);
                }
                again &= seq < current;
            }
            Delivery::Gone => {
                self.report.gone += 1;
                return;
            }
            Delivery::Refused if self.left_before.contains(&connection) && !again => {
                tracing::warn!(%connection, "giving up on a subscriber whose posts keep failing, until the next state");
                self.given_up += 1;
            }
            // A post of an older lap: the present lap reaches this subscriber (or has, and `again` is set).
            Delivery::Failed | Delivery::Refused if !again && seq == current => self.pending.push(connection.clone()),
            Delivery::Failed | Delivery::Refused => {}
        }
        if again {
            // Reached again by a newer lap while its post was in flight: it gets the newer state next.
            self.again.push(connection);
        }
    }

    /// Waits for the posts in flight to end (each gives up at the deadline), handing the newest state to those the
    /// sweep reached again meanwhile; returns the subscribers that did not get the state.
    async fn finish(&mut self) -> Vec<ConnectionId> {
        while let Some(ended) = self.posts.join_next_with_id().await {
            self.ended(ended);
            let again = std::mem::take(&mut self.again);
            self.hand_all(again, false).await;
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable();
        pending.dedup();
        pending
    }
}

/// Forgets a connection that is gone.
async fn forget<C: ConnectionStore>(connections: &C, connection: &ConnectionId) {
    if let Err(error) = connections.unsubscribe(connection).await {
        tracing::warn!(%connection, error = error_chain(&error), "cannot forget a gone connection");
    }
}

/// How a post ended: to whom, how, how many times it was throttled, the state it began with, and the state of its
/// last attempt (newer, if one arrived while it was retried).
struct Ended {
    connection: ConnectionId,
    delivery: Delivery,
    throttled: usize,
    began: u64,
    seq: u64,
}

/// One subscriber's post, retried with backoff while the broadcast's time lasts.
struct Post<C, N> {
    connections: Arc<C>,
    notifier: Arc<N>,
    width: Arc<PostWidth>,
    message: Current,
    /// The state when the sweep handed it this post.
    began: u64,
    retries: Retries,
    last_post: Instant,
    deadline: Instant,
}

impl<C: ConnectionStore, N: Notifier> Post<C, N> {
    /// Returns the subscriber, how its post ended, and how many times it was throttled.
    /// Holds a slot of the width while a post is in flight, not while it waits to be tried again.
    async fn deliver(self, connection: ConnectionId, slot: Slot) -> Ended {
        let began = self.began;
        let mut ended = Ended { connection, delivery: Delivery::Failed, throttled: 0, began, seq: began };
        ended.delivery = self.attempts(&mut ended, slot).await;
        ended
    }

    /// Tries until the post is delivered, found gone, refused [`MAX_FAILED_ATTEMPTS`] times in a row, or out of
    /// time; each attempt sends the current state's message.
    async fn attempts(&self, ended: &mut Ended, slot: Slot) -> Delivery {
        let Retries { attempt_timeout, first_pause, max_pause } = self.retries;
        let connection = ended.connection.clone();
        let mut backoff = Backoff::new(first_pause, max_pause);
        let mut refused = 0;
        let mut slot = Some(slot);
        loop {
            let slot = match slot.take() {
                Some(slot) => slot,
                None => match tokio::time::timeout_at(self.last_post, self.width.acquire()).await {
                    Ok(slot) => slot,
                    Err(_) => return Delivery::Failed,
                },
            };
            let left = self.deadline.saturating_duration_since(Instant::now());
            if Instant::now() >= self.last_post {
                return Delivery::Failed;
            }
            let message = self.message.get();
            ended.seq = message.seq().unwrap_or_default();
            let sent = Instant::now();
            match tokio::time::timeout(attempt_timeout.min(left), self.notifier.send(&connection, &message)).await {
                Ok(Ok(())) => {
                    slot.succeeded(sent);
                    return Delivery::Reached;
                }
                Ok(Err(NotifyError::Gone)) => {
                    forget(&*self.connections, &connection).await;
                    return Delivery::Gone;
                }
                Ok(Err(NotifyError::Throttled(_))) => {
                    ended.throttled += 1;
                    slot.backed_off(sent);
                }
                Ok(Err(error @ NotifyError::Failed(_))) => {
                    tracing::debug!(%connection, error = error_chain(&error), "send failed");
                    refused += 1;
                    if refused >= MAX_FAILED_ATTEMPTS {
                        return Delivery::Refused;
                    }
                }
                Err(_) => {
                    // A slow send may still arrive: the next broadcast sends it again. Slow posts mean fewer at once.
                    slot.backed_off(sent);
                    tracing::info!(%connection, "send timed out; leaving this subscriber to the next broadcast");
                    return Delivery::Failed;
                }
            }
            let pause = backoff.next_delay();
            if Instant::now() + pause >= self.last_post {
                tracing::info!(%connection, "giving up on a subscriber for this broadcast");
                return Delivery::Failed;
            }
            drop(slot);
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::live::{BroadcastProgress, ConnectionStoreError, SubscriberPage};
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
        progress: Mutex<HashMap<String, BroadcastProgress>>,
    }

    impl Connections {
        async fn with(counter: &str, ids: impl IntoIterator<Item = String>) -> Arc<Self> {
            let connections = Arc::new(Connections::default());
            for id in ids {
                let (id, counter) = (ConnectionId::parse(&id).unwrap(), CounterName::parse(counter).unwrap());
                connections.subscribe(&id, &counter).await.unwrap();
            }
            connections
        }
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
        async fn progress(&self, counter: &CounterName) -> Result<Option<BroadcastProgress>, ConnectionStoreError> {
            Ok(self.progress.lock().unwrap().get(counter.as_str()).cloned())
        }
        async fn keep_progress(
            &self,
            counter: &CounterName,
            progress: &BroadcastProgress,
        ) -> Result<(), ConnectionStoreError> {
            self.progress.lock().unwrap().insert(counter.to_string(), progress.clone());
            Ok(())
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

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_whose_posts_keep_failing_is_given_up_on_after_two_broadcasts() {
        let connections = Connections::with("a", ["ok-1".to_owned(), "bad-1".to_owned()]).await;
        let inboxes = Arc::new(Inboxes::default());
        let broadcaster =
            Broadcaster::new(Arc::clone(&connections), Arc::clone(&inboxes)).with_time_budget(Duration::from_secs(5));
        let first = broadcaster.broadcast([change("a", 4)]).await;
        assert_eq!(first.undelivered, [CounterName::parse("a").unwrap()], "left to the next broadcast: {first:?}");
        assert_eq!(inboxes.attempts.lock().unwrap()["bad-1"], MAX_FAILED_ATTEMPTS as u32);
        let second = broadcaster.broadcast([change("a", 4)]).await;
        assert!(second.undelivered.is_empty(), "given up on: the batch is done {second:?}");
        assert_eq!((second.reached, second.failed), (0, 1));
        assert_eq!(inboxes.attempts.lock().unwrap()["bad-1"], 2 * MAX_FAILED_ATTEMPTS as u32);
        assert_eq!(inboxes.received.lock().unwrap()["ok-1"], [4], "the others once");
    }

    /// Delivers to everyone but `panics-…`, whose post's task panics.
    struct Panicking(Mutex<Vec<String>>);

    impl Notifier for Panicking {
        async fn send(&self, c: &ConnectionId, _message: &Outbound) -> Result<(), NotifyError> {
            assert!(!c.as_str().starts_with("panics"), "a notifier that panics");
            self.0.lock().unwrap().push(c.to_string());
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_post_whose_task_panics_leaves_its_subscriber_to_the_next_broadcast() {
        let connections = Connections::with("a", ["ok-1".to_owned(), "panics-1".to_owned()]).await;
        let broadcaster = Broadcaster::new(Arc::clone(&connections), Arc::new(Panicking(Mutex::default())));
        let report = broadcaster.broadcast([change("a", 2)]).await;
        assert_eq!((report.reached, report.failed), (1, 1), "{report:?}");
        assert_eq!(report.undelivered, [CounterName::parse("a").unwrap()]);
        let kept = connections.progress.lock().unwrap()["a"].clone();
        assert_eq!(kept.pending, [ConnectionId::parse("panics-1").unwrap()], "served first next time");
    }

    /// Answers every send with a failure (a throttled Management API) until `until`, then delivers.
    struct ThrottledUntil {
        until: Instant,
        received: Mutex<HashMap<String, Vec<u64>>>,
    }

    impl Notifier for ThrottledUntil {
        async fn send(&self, c: &ConnectionId, message: &Outbound) -> Result<(), NotifyError> {
            if Instant::now() < self.until {
                return Err(NotifyError::throttled(std::io::Error::other("429 Too Many Requests")));
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

    /// A Management API of `latency` a post that takes `rate` posts a second (a token bucket holding a tenth of a
    /// second's worth) and throttles past it; after `bump_after` deliveries the counter's newest state becomes
    /// `bumped`. It checks that no subscriber ever has two posts in flight.
    struct RateLimited {
        latency: Duration,
        rate: f64,
        bucket: Mutex<(f64, Instant)>,
        in_flight: Mutex<HashSet<String>>,
        received: Mutex<HashMap<String, Vec<u64>>>,
        delivered: Mutex<usize>,
        bump: Option<(usize, CounterChange)>,
        newest: Mutex<Option<CounterChange>>,
    }

    impl RateLimited {
        fn new(latency: Duration, rate: f64, bump: Option<(usize, CounterChange)>) -> Arc<Self> {
            Arc::new(Self {
                latency,
                rate,
                bucket: Mutex::new((rate / 10.0, Instant::now())),
                in_flight: Mutex::default(),
                received: Mutex::default(),
                delivered: Mutex::default(),
                bump,
                newest: Mutex::default(),
            })
        }

        fn take_token(&self) -> bool {
            let mut bucket = self.bucket.lock().unwrap();
            let now = Instant::now();
            let tokens = (bucket.0 + (now - bucket.1).as_secs_f64() * self.rate).min(self.rate / 10.0);
            *bucket = (tokens, now);
            if tokens >= 1.0 {
                bucket.0 -= 1.0;
                true
            } else {
                false
            }
        }
    }

    impl Notifier for RateLimited {
        async fn send(&self, c: &ConnectionId, message: &Outbound) -> Result<(), NotifyError> {
            assert!(self.in_flight.lock().unwrap().insert(c.to_string()), "two posts in flight to {c}");
            let admitted = self.take_token();
            tokio::time::sleep(if admitted { self.latency } else { Duration::from_millis(1) }).await;
            self.in_flight.lock().unwrap().remove(c.as_str());
            if !admitted {
                return Err(NotifyError::throttled(std::io::Error::other("429")));
            }
            self.received.lock().unwrap().entry(c.to_string()).or_default().push(message.seq().unwrap());
            let mut delivered = self.delivered.lock().unwrap();
            *delivered += 1;
            if let Some((after, bumped)) = &self.bump
                && *delivered == *after
            {
                *self.newest.lock().unwrap() = Some(bumped.clone());
            }
            Ok(())
        }
    }

    impl NewestState for RateLimited {
        fn newest<'a>(&'a self, _counter: &'a CounterName) -> futures::future::BoxFuture<'a, Option<CounterChange>> {
            Box::pin(async move { self.newest.lock().unwrap().clone() })
        }
    }

    fn ids(n: usize) -> impl Iterator<Item = String> {
        (0..n).map(|i| format!("s-{i:04}"))
    }

    #[tokio::test(start_paused = true)]
    async fn posts_at_the_rate_the_api_takes_with_few_throttled() {
        // 2 000 subscribers, 120 ms a post, 500 posts a second: the ideal is 4 s.
        let connections = Connections::with("a", ids(2000)).await;
        let api = RateLimited::new(Duration::from_millis(120), 500.0, None);
        let broadcaster = Broadcaster::new(connections, Arc::clone(&api)).with_time_budget(Duration::from_secs(20));
        let started = Instant::now();
        let report = broadcaster.broadcast([change("a", 5)]).await;
        let took = started.elapsed();
        assert_eq!((report.reached, report.failed), (2000, 0), "{report:?}");
        assert!(report.undelivered.is_empty());
        assert!(took <= Duration::from_secs(6), "within 1.5 × subscribers ÷ rate: {took:?}");
        let throttled = report.throttled as f64 / (report.reached + report.throttled) as f64;
        assert!(throttled <= 0.10, "{} throttled of {}", report.throttled, report.reached + report.throttled);
        assert!(report.throttled > 0, "the width grew until the API pushed back");
        assert!(api.received.lock().unwrap().values().all(|seqs| seqs == &[5]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_state_mid_broadcast_goes_to_those_not_reached_first_then_to_the_rest() {
        let connections = Connections::with("a", ids(300)).await;
        let bumped = change("a", 9);
        let api = RateLimited::new(Duration::from_millis(50), 400.0, Some((100, bumped)));
        let broadcaster = Broadcaster::new(connections, Arc::clone(&api))
            .with_newest_state(Arc::clone(&api) as Arc<dyn NewestState>)
            .with_time_budget(Duration::from_secs(20));
        let report = broadcaster.broadcast([change("a", 3)]).await;
        assert!(report.undelivered.is_empty(), "{report:?}");
        let received = api.received.lock().unwrap().clone();
        assert_eq!(received.len(), 300);
        let (mut both, mut only_newer) = (0, 0);
        for (id, seqs) in &received {
            match seqs.as_slice() {
                [3, 9] => both += 1,
                [9] => only_newer += 1,
                other => panic!("{id} got {other:?}: each state once, increasing, ending on the newest"),
            }
        }
        assert!(both >= 100 && only_newer > 0, "{both} got both, {only_newer} only the newer");
    }

    #[tokio::test(start_paused = true)]
    async fn a_broadcast_longer_than_its_budget_goes_on_where_it_stopped() {
        // 400 subscribers at 100 posts a second, 1 s a broadcast: four or five broadcasts reach them all.
        let connections = Connections::with("a", ids(400)).await;
        let api = RateLimited::new(Duration::from_millis(100), 100.0, None);
        let broadcaster = Broadcaster::new(Arc::clone(&connections), Arc::clone(&api))
            .with_max_in_flight(10)
            .with_time_budget(Duration::from_secs(1));
        let mut broadcasts = 0;
        loop {
            broadcasts += 1;
            assert!(broadcasts <= 6, "each broadcast goes on from the last");
            let report = broadcaster.broadcast([change("a", 7)]).await;
            if report.undelivered.is_empty() {
                break;
            }
            let kept = connections.progress.lock().unwrap()["a"].clone();
            assert!(!kept.finished, "where it stopped is kept: {kept:?}");
        }
        assert!(connections.progress.lock().unwrap()["a"].finished, "and that it finished");
        let again = broadcaster.broadcast([change("a", 7)]).await;
        assert_eq!((again.reached, again.undelivered.len()), (0, 0), "a finished state is not sent again");
        let received = api.received.lock().unwrap().clone();
        assert_eq!(received.len(), 400);
        assert!(received.values().all(|seqs| seqs == &[7]), "each subscriber got the state once");
    }
}

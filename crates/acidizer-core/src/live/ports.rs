//! What live updates need from the outside: where subscriptions are kept, and how a message reaches a connection.

use super::Outbound;
use crate::domain::{ConnectionId, CounterChange, CounterName, Seq};
use futures::future::BoxFuture;
use std::future::Future;
use std::time::Duration;

/// How long a subscription lives at most: API Gateway closes a WebSocket after 2 hours.
pub const SUBSCRIPTION_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// One page of a counter's subscribers; `next` continues the listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberPage {
    pub connections: Vec<ConnectionId>,
    pub next: Option<String>,
}

/// What an adapter met, kept whole for the log line.
type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionStoreError {
    #[error("the connection store is unavailable")]
    Unavailable(#[source] Cause),
    #[error("the connection store holds an unreadable record")]
    Corrupt(#[source] Cause),
}

impl ConnectionStoreError {
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(cause))
    }

    pub fn corrupt(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Corrupt(Box::new(cause))
    }
}

/// Where subscriptions are kept: which connection follows which counter.
pub trait ConnectionStore: Send + Sync + 'static {
    /// Subscribes `connection` to `counter` for at most [`SUBSCRIPTION_TTL`].
    fn subscribe(
        &self,
        connection: &ConnectionId,
        counter: &CounterName,
    ) -> impl Future<Output = Result<(), ConnectionStoreError>> + Send;

    /// Removes the subscription, if there is one.
    fn unsubscribe(&self, connection: &ConnectionId) -> impl Future<Output = Result<(), ConnectionStoreError>> + Send;

    /// The counter `connection` follows, if it is subscribed.
    fn subscription(
        &self,
        connection: &ConnectionId,
    ) -> impl Future<Output = Result<Option<CounterName>, ConnectionStoreError>> + Send;

    /// One page of `counter`'s subscribers, in the order of their ids, starting after `page` (the previous page's
    /// `next`, or the last id a broadcast reached).
    fn subscribers(
        &self,
        counter: &CounterName,
        page: Option<String>,
    ) -> impl Future<Output = Result<SubscriberPage, ConnectionStoreError>> + Send;

    /// Where the last broadcast of `counter` stood when it ended (kept by [`ConnectionStore::keep_progress`]). A
    /// store whose broadcasts always finish at once (an in-process one) keeps none.
    fn progress(
        &self,
        _counter: &CounterName,
    ) -> impl Future<Output = Result<Option<BroadcastProgress>, ConnectionStoreError>> + Send {
        async { Ok(None) }
    }

    /// Keeps where a broadcast of `counter` stood when it ended.
    fn keep_progress(
        &self,
        _counter: &CounterName,
        _progress: &BroadcastProgress,
    ) -> impl Future<Output = Result<(), ConnectionStoreError>> + Send {
        async { Ok(()) }
    }
}

/// Where a broadcast of one counter stood when it ended: so that the next one (a retried batch, or a later
/// change) goes on from there rather than from the first subscriber, and sends no subscriber a state twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastProgress {
    /// The counter state the broadcast was sending.
    pub seq: Seq,
    /// Whether every subscriber got it.
    pub finished: bool,
    /// The lap began after this subscriber (`None`: at the first); it ends once every subscriber after it, and
    /// then from the first up to it, has the state.
    pub lap_start: Option<ConnectionId>,
    /// The last subscriber the lap reached (`None`: none yet, or the lap has just come round to the first).
    pub cursor: Option<ConnectionId>,
    /// Whether the lap has come round past the last subscriber to the first.
    pub wrapped: bool,
    /// Subscribers the lap reached that did not get the state (throttled, failing or slow until the end): the
    /// next broadcast serves them first.
    pub pending: Vec<ConnectionId>,
    /// Subscribers the lap has not reached that have the state already (a post of an earlier lap brought it on a
    /// later attempt): the lap passes them by.
    pub ahead: Vec<ConnectionId>,
}

/// How a message failed to reach a connection.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The connection is gone for good (410 Gone): forget it.
    #[error("the connection is gone")]
    Gone,
    /// The Management API refused the post for the account's rate (429, `LimitExceededException`): send fewer at
    /// once, and try again.
    #[error("the message was throttled")]
    Throttled(#[source] Cause),
    /// Anything else; worth a brief retry.
    #[error("the message could not be sent")]
    Failed(#[source] Cause),
}

impl NotifyError {
    pub fn throttled(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Throttled(Box::new(cause))
    }

    pub fn failed(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Failed(Box::new(cause))
    }
}

/// Sends messages to connections.
pub trait Notifier: Send + Sync + 'static {
    fn send(
        &self,
        connection: &ConnectionId,
        message: &Outbound,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send;

    /// Sends `message` without waiting, if this notifier can (one in the same process); `None` if a send has to
    /// wait (a request over the network), and then it is made with [`Notifier::send`].
    fn send_now(&self, _connection: &ConnectionId, _message: &Outbound) -> Option<Result<(), NotifyError>> {
        None
    }
}

/// Where a broadcast learns, while it sends, of a counter state newer than the one it was asked to send: a long
/// broadcast then sends the newest instead of one that is seconds old.
pub trait NewestState: Send + Sync + 'static {
    /// The counter's newest committed state, if it can be read now (`None`: unknown, or never changed).
    fn newest<'a>(&'a self, counter: &'a CounterName) -> BoxFuture<'a, Option<CounterChange>>;
}

/// Every counter store tells a counter's newest state.
impl<S: crate::CounterStore> NewestState for S {
    fn newest<'a>(&'a self, counter: &'a CounterName) -> BoxFuture<'a, Option<CounterChange>> {
        Box::pin(async move {
            match self.read(counter).await {
                Ok(snapshot) => snapshot.updated_at.map(|updated_at| CounterChange {
                    counter: snapshot.counter,
                    value: snapshot.value,
                    seq: snapshot.seq,
                    updated_at,
                }),
                Err(error) => {
                    let error = crate::telemetry::error_chain(&error);
                    tracing::debug!(%counter, error, "cannot read the newest state");
                    None
                }
            }
        })
    }
}

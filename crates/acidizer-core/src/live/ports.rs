//! What live updates need from the outside: where subscriptions are kept, and how a message reaches a connection.

use super::Outbound;
use crate::domain::{ConnectionId, CounterName};
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

    /// One page of `counter`'s subscribers, starting after `page` (the previous page's `next`).
    fn subscribers(
        &self,
        counter: &CounterName,
        page: Option<String>,
    ) -> impl Future<Output = Result<SubscriberPage, ConnectionStoreError>> + Send;
}

/// How a message failed to reach a connection.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The connection is gone for good (410 Gone): forget it.
    #[error("the connection is gone")]
    Gone,
    /// Anything else; worth a brief retry.
    #[error("the message could not be sent")]
    Failed(#[source] Cause),
}

impl NotifyError {
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

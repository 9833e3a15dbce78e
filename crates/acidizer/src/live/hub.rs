//! The in-process subscriptions of `acidizer serve`. Each connection has a `watch` channel that holds only the
//! latest message for it, so a slow or stuck subscriber never blocks the writer or other subscribers.

use acidizer_core::live::{ConnectionStore, ConnectionStoreError, Notifier, NotifyError, Outbound, SubscriberPage};
use acidizer_core::{ConnectionId, CounterName};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;

/// A message as it goes out: serialised once, shared by every session it is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The `seq` of the counter state it carries, if any.
    pub seq: Option<u64>,
    pub text: axum::extract::ws::Utf8Bytes,
}

/// The hub's end of a session's channel: the latest message left for it.
type Mailbox = watch::Sender<Option<Pushed>>;

/// A session's end of its channel: it ends when the hub lets go of the session (at shutdown).
pub struct Inbox(watch::Receiver<Option<Pushed>>);

impl Inbox {
    /// The message left since the last one taken; `None` once the hub has let go and nothing new is left.
    /// Cancel-safe: a message is marked seen only by the call that returns it.
    pub async fn next(&mut self) -> Option<Pushed> {
        loop {
            self.0.changed().await.ok()?;
            if let Some(pushed) = self.0.borrow_and_update().clone() {
                return Some(pushed);
            }
        }
    }

    /// Whether the hub has let go of this session (what is left may still be taken).
    pub fn is_closed(&self) -> bool {
        self.0.has_changed().is_err()
    }
}

/// A new session's channel.
fn mailbox() -> (Mailbox, Inbox) {
    let (mailbox, inbox) = watch::channel(None);
    (mailbox, Inbox(inbox))
}

/// Leaves `pushed` in place of what the mailbox holds, unless that is a later state (a higher `seq`).
fn leave(mailbox: &Mailbox, pushed: Pushed) -> Result<(), NotifyError> {
    if mailbox.is_closed() {
        return Err(NotifyError::Gone);
    }
    mailbox.send_if_modified(|held| {
        let newer = match (held.as_ref().and_then(|held| held.seq), pushed.seq) {
            (Some(held), Some(new)) => new > held,
            _ => true,
        };
        if newer {
            *held = Some(pushed);
        }
        newer
    });
    Ok(())
}

#[derive(Default)]
struct Subscriptions {
    by_counter: HashMap<CounterName, BTreeSet<ConnectionId>>,
    connections: HashMap<ConnectionId, (CounterName, Mailbox)>,
    /// Set at shutdown: every mailbox is dropped, and new sessions get none.
    closed: bool,
    /// The last message sent, serialised: a broadcast sends the same message to every subscriber.
    last_sent: Option<(Outbound, Pushed)>,
}

impl Subscriptions {
    fn serialised(&mut self, message: &Outbound) -> Pushed {
        match &self.last_sent {
            Some((sent, pushed)) if sent == message => pushed.clone(),
            _ => {
                let pushed = Pushed { seq: message.seq(), text: message.to_json().into() };
                self.last_sent = Some((message.clone(), pushed.clone()));
                pushed
            }
        }
    }
}

#[derive(Default)]
pub struct Hub {
    subscriptions: Mutex<Subscriptions>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Subscriptions> {
        // A panic elsewhere cannot leave the maps half-updated: every change below is one insert or remove.
        self.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes a new connection to `counter`; its inbox gets the latest message for it, and ends (`None`) when
    /// the hub is closed.
    pub fn register(&self, counter: &CounterName) -> (ConnectionId, Inbox) {
        let id = ConnectionId::generate();
        let (mailbox, inbox) = mailbox();
        self.insert(&id, counter, mailbox);
        (id, inbox)
    }

    fn insert(&self, id: &ConnectionId, counter: &CounterName, mailbox: Mailbox) {
        let mut subscriptions = self.lock();
        if subscriptions.closed {
            return;
        }
        subscriptions.by_counter.entry(counter.clone()).or_default().insert(id.clone());
        subscriptions.connections.insert(id.clone(), (counter.clone(), mailbox));
    }

    /// Ends every session's inbox, now and for sessions still to come: at shutdown, each session closes.
    pub fn close(&self) {
        let connections = {
            let mut subscriptions = self.lock();
            subscriptions.closed = true;
            subscriptions.by_counter.clear();
            std::mem::take(&mut subscriptions.connections)
        };
        // Dropped out of the lock: each drop wakes its session.
        drop(connections);
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn unregister(&self, id: &ConnectionId) {
        let mut subscriptions = self.lock();
        if let Some((counter, _)) = subscriptions.connections.remove(id)
            && let Some(ids) = subscriptions.by_counter.get_mut(&counter)
        {
            ids.remove(id);
            if ids.is_empty() {
                subscriptions.by_counter.remove(&counter);
            }
        }
    }
}

impl ConnectionStore for Hub {
    async fn subscribe(&self, connection: &ConnectionId, counter: &CounterName) -> Result<(), ConnectionStoreError> {
        // A subscription made here has no session in this process to read it: what is sent to it finds it gone.
        let (mailbox, _) = mailbox();
        self.insert(connection, counter, mailbox);
        Ok(())
    }

    async fn unsubscribe(&self, connection: &ConnectionId) -> Result<(), ConnectionStoreError> {
        self.unregister(connection);
        Ok(())
    }

    async fn subscription(&self, connection: &ConnectionId) -> Result<Option<CounterName>, ConnectionStoreError> {
        Ok(self.lock().connections.get(connection).map(|(counter, _)| counter.clone()))
    }

    async fn subscribers(
        &self,
        counter: &CounterName,
        _page: Option<String>,
    ) -> Result<SubscriberPage, ConnectionStoreError> {
        let connections = self.lock().by_counter.get(counter).map(|ids| ids.iter().cloned().collect());
        Ok(SubscriberPage { connections: connections.unwrap_or_default(), next: None })
    }
}

impl Notifier for Hub {
    async fn send(&self, connection: &ConnectionId, message: &Outbound) -> Result<(), NotifyError> {
        self.hand_over(connection, message)
    }

    /// A session's end takes its message at once: a broadcast needs no future or timer per subscriber.
    fn send_now(&self, connection: &ConnectionId, message: &Outbound) -> Option<Result<(), NotifyError>> {
        Some(self.hand_over(connection, message))
    }
}

impl Hub {
    /// Replaces the connection's pending message, unless it already holds a later state (a higher `seq`).
    fn hand_over(&self, connection: &ConnectionId, message: &Outbound) -> Result<(), NotifyError> {
        let mut subscriptions = self.lock();
        let pushed = subscriptions.serialised(message);
        match subscriptions.connections.get(connection) {
            Some((_, mailbox)) => leave(mailbox, pushed),
            None => Err(NotifyError::Gone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acidizer_core::{CounterChange, Timestamp};
    use futures::FutureExt;

    /// The state after change `seq` (a decrement when `seq` is even).
    fn value(counter: &CounterName, seq: u64) -> Outbound {
        let value = seq % 2;
        let updated_at = Timestamp::from_unix_millis(0);
        Outbound::change(&CounterChange { counter: counter.clone(), value, seq, updated_at })
    }

    #[tokio::test]
    async fn a_subscriber_that_does_not_read_holds_only_the_latest_value() {
        let hub = Hub::default();
        let counter = CounterName::global();
        let (id, mut pending) = hub.register(&counter);
        for n in [1, 2, 5, 4, 3] {
            hub.send(&id, &value(&counter, n)).await.unwrap();
        }
        let held = pending.next().await.unwrap();
        assert_eq!(held, Pushed { seq: Some(5), text: value(&counter, 5).to_json().into() }, "latest wins, never back");
        let listed = hub.subscribers(&counter, None).await.unwrap();
        assert_eq!(listed.connections, [id]);
        assert!(hub.subscribers(&CounterName::parse("other").unwrap(), None).await.unwrap().connections.is_empty());
    }

    #[tokio::test]
    async fn a_connection_that_left_is_gone() {
        let hub = Hub::default();
        let counter = CounterName::global();
        let (id, pending) = hub.register(&counter);
        drop(pending);
        assert!(matches!(hub.send(&id, &value(&counter, 1)).await, Err(NotifyError::Gone)), "its session ended");
        hub.unregister(&id);
        assert!(matches!(hub.send(&id, &value(&counter, 2)).await, Err(NotifyError::Gone)));
        assert!(hub.subscribers(&counter, None).await.unwrap().connections.is_empty());
    }

    #[tokio::test]
    async fn closing_ends_every_inbox_and_those_of_sessions_still_to_come() {
        let hub = Hub::default();
        let counter = CounterName::global();
        let (id, mut before) = hub.register(&counter);
        assert!(!hub.is_closed());
        hub.close();
        assert!(hub.is_closed());
        assert_eq!(before.next().await, None, "an open session's inbox ends");
        assert!(matches!(hub.send(&id, &value(&counter, 1)).await, Err(NotifyError::Gone)));
        let (_, mut after) = hub.register(&counter);
        assert_eq!(after.next().await, None, "a session that comes after the close ends at once");
        assert!(hub.subscribers(&counter, None).await.unwrap().connections.is_empty());
    }

    #[tokio::test]
    async fn a_value_left_before_the_close_is_still_taken_then_the_inbox_ends() {
        let hub = Hub::default();
        let counter = CounterName::global();
        let (id, mut inbox) = hub.register(&counter);
        hub.send(&id, &value(&counter, 7)).await.unwrap();
        hub.close();
        assert!(inbox.is_closed());
        assert_eq!(inbox.next().await.and_then(|pushed| pushed.seq), Some(7));
        assert_eq!(inbox.next().await, None);
    }

    #[tokio::test]
    async fn a_waiting_session_is_woken_by_a_value_and_by_the_close() {
        let hub = Hub::default();
        let counter = CounterName::global();
        let (id, mut inbox) = hub.register(&counter);
        let (taken, mut took) = tokio::sync::mpsc::unbounded_channel();
        let session = tokio::spawn(async move {
            while let Some(pushed) = inbox.next().await {
                taken.send(pushed.seq).unwrap();
            }
        });
        hub.send(&id, &value(&counter, 1)).await.unwrap();
        assert_eq!(took.recv().await, Some(Some(1)), "a value wakes a waiting session");
        hub.close();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), session).await;
        assert!(matches!(ended, Ok(Ok(()))), "the close wakes the session, and ends it");
        assert_eq!(took.recv().await, None);
    }

    #[tokio::test]
    async fn an_older_state_never_replaces_a_newer_one_even_once_taken() {
        let hub = Hub::default();
        let counter = CounterName::global();
        let (id, mut inbox) = hub.register(&counter);
        hub.send(&id, &value(&counter, 5)).await.unwrap();
        assert_eq!(inbox.next().await.and_then(|pushed| pushed.seq), Some(5));
        hub.send(&id, &value(&counter, 3)).await.unwrap();
        assert!(inbox.next().now_or_never().is_none(), "nothing new is left for the session");
        hub.send(&id, &value(&counter, 6)).await.unwrap();
        assert_eq!(inbox.next().await.and_then(|pushed| pushed.seq), Some(6));
    }
}

//! A session's mailbox in the hub: the latest message for the session, which only a newer one replaces, and the
//! waker of the session's task. Leaving a message is one uncontended lock and one wake, with no list of waiters to
//! walk: a broadcast does it once per subscriber.

use futures::task::AtomicWaker;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

/// A message as it goes out: serialised once, shared by every session it is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The `seq` of the counter state it carries, if any.
    pub seq: Option<u64>,
    pub text: axum::extract::ws::Utf8Bytes,
}

/// The session has ended: nothing left for it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session has ended")]
pub struct SessionGone;

struct Shared {
    pending: Mutex<Option<Pushed>>,
    waker: AtomicWaker,
    /// The hub's end was dropped: no more messages come.
    closed: AtomicBool,
    /// The session's end was dropped.
    gone: AtomicBool,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Option<Pushed>> {
        // Each use below is one take or one replace: a panic cannot leave the slot half-written.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The hub's end.
pub struct Mailbox(Arc<Shared>);

/// The session's end.
pub struct Inbox(Arc<Shared>);

pub fn mailbox() -> (Mailbox, Inbox) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(None),
        waker: AtomicWaker::new(),
        closed: AtomicBool::new(false),
        gone: AtomicBool::new(false),
    });
    (Mailbox(Arc::clone(&shared)), Inbox(shared))
}

impl Mailbox {
    /// Leaves `pushed` for the session in place of what it holds, unless that is a later state (a higher `seq`).
    pub fn put(&self, pushed: Pushed) -> Result<(), SessionGone> {
        if self.is_gone() {
            return Err(SessionGone);
        }
        let newer = {
            let mut pending = self.0.pending();
            let newer = match (pending.as_ref().and_then(|held| held.seq), pushed.seq) {
                (Some(held), Some(new)) => new > held,
                _ => true,
            };
            if newer {
                *pending = Some(pushed);
            }
            newer
        };
        if newer {
            self.0.waker.wake();
        }
        Ok(())
    }

    fn is_gone(&self) -> bool {
        self.0.gone.load(Ordering::Acquire)
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.waker.wake();
    }
}

impl Inbox {
    /// The message left since the last one taken; `None` once the hub's end is dropped and nothing is left.
    /// Cancel-safe: a message is taken only by the poll that returns it.
    pub fn next(&mut self) -> impl Future<Output = Option<Pushed>> + '_ {
        std::future::poll_fn(|cx| {
            // Registered before looking, so that a message left after the look wakes this task.
            self.0.waker.register(cx.waker());
            // Read before the slot: a message the hub left before it left is then in the slot for the take below.
            let closed = self.0.closed.load(Ordering::Acquire);
            if let Some(pushed) = self.0.pending().take() {
                return Poll::Ready(Some(pushed));
            }
            if closed {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
    }
}

impl Inbox {
    /// Whether the hub's end was dropped (what is left may still be taken).
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.0.gone.store(true, Ordering::Release);
        // The session's task is not kept alive by the hub's end.
        drop(self.0.waker.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(seq: Option<u64>) -> Pushed {
        Pushed { seq, text: format!("{seq:?}").into() }
    }

    #[tokio::test]
    async fn the_session_takes_the_latest_message_never_an_older_one() {
        let (mailbox, mut inbox) = mailbox();
        for seq in [1, 2, 5, 4, 3] {
            mailbox.put(pushed(Some(seq))).unwrap();
        }
        assert_eq!(inbox.next().await, Some(pushed(Some(5))), "latest wins, never back");
        mailbox.put(pushed(None)).unwrap();
        assert_eq!(inbox.next().await, Some(pushed(None)), "a message without a state is always left");
        mailbox.put(pushed(Some(3))).unwrap();
        assert_eq!(inbox.next().await, Some(pushed(Some(3))), "once taken, any state is new to the slot");
    }

    #[tokio::test]
    async fn a_waiting_session_is_woken_by_a_message_and_by_the_hub_leaving() {
        let (mailbox, mut inbox) = mailbox();
        let session = tokio::spawn(async move {
            let first = inbox.next().await;
            let after = inbox.next().await;
            (first, after)
        });
        tokio::task::yield_now().await;
        mailbox.put(pushed(Some(1))).unwrap();
        tokio::task::yield_now().await;
        drop(mailbox);
        assert_eq!(session.await.unwrap(), (Some(pushed(Some(1))), None));
    }

    #[tokio::test]
    async fn a_message_left_before_the_hub_leaves_is_still_taken() {
        let (mailbox, mut inbox) = mailbox();
        mailbox.put(pushed(Some(7))).unwrap();
        drop(mailbox);
        assert_eq!(inbox.next().await, Some(pushed(Some(7))));
        assert_eq!(inbox.next().await, None);
    }

    /// A smoke test of the order in `next` (the hub's leaving read before the slot): the window it closes is a few
    /// nanoseconds wide, so rounds that race into it are rare.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_left_as_the_hub_leaves_is_never_lost() {
        for seq in 0..2_000 {
            let (mailbox, mut inbox) = mailbox();
            let hub = std::thread::spawn(move || {
                mailbox.put(pushed(Some(seq))).unwrap();
                drop(mailbox);
            });
            let mut last = None;
            while let Some(taken) = inbox.next().await {
                last = Some(taken);
            }
            hub.join().unwrap();
            assert_eq!(last, Some(pushed(Some(seq))), "round {seq}");
        }
    }

    #[test]
    fn nothing_is_left_for_a_session_that_ended() {
        let (mailbox, inbox) = mailbox();
        assert!(!mailbox.is_gone());
        assert!(!inbox.is_closed());
        drop(inbox);
        assert!(mailbox.is_gone());
        assert_eq!(mailbox.put(pushed(Some(1))), Err(SessionGone));
    }
}

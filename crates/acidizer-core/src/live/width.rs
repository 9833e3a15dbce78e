//! How many posts a broadcast keeps in flight, found as it goes: the Management API's limit is a rate per account
//! (429 past it), and a post's time varies, so no fixed number fits. The width grows while posts succeed — doubling
//! each round trip at first (slow start), then by one per round trip — and shrinks by a fifth when a post is
//! throttled or the posts' time rises to twice its usual (additive increase, multiplicative decrease, as TCP
//! does), within a floor of one and a configured ceiling. A decrease is taken once per round: the answers to
//! posts sent before it say nothing new.
//!
//! Written here rather than taken from a crate: the maintained ones are layers of a `tower` or `reqwest` client,
//! and the Management API's client is the AWS SDK's.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The width a broadcast starts at.
pub const INITIAL_WIDTH: usize = 64;

/// What a throttled post (or a rise of the posts' time) leaves of the width.
const DECREASE: f64 = 0.8;

/// A post's time counts as risen past this many times its usual, once this many posts since the last decrease
/// have told.
const LATENCY_RISE: f64 = 2.0;
const RISE_SAMPLES: u32 = 16;

/// The number of posts in flight, adapted to what the Management API takes.
#[derive(Debug)]
pub struct PostWidth {
    state: Mutex<State>,
    freed: Notify,
}

#[derive(Debug)]
struct State {
    limit: f64,
    ceiling: f64,
    in_flight: usize,
    slow_start: bool,
    /// Posts sent before this instant cannot cause another decrease.
    last_decrease: Instant,
    /// The usual time of a post: the least seen, drifting up (a hundredth of the difference a post) so that it
    /// follows an API that has become slower for good.
    usual: Option<Duration>,
    /// The recent time of a post (an exponentially weighted average), and how many posts told since the last
    /// decrease.
    recent: Option<Duration>,
    samples: u32,
}

impl PostWidth {
    /// A width that starts at [`INITIAL_WIDTH`] (or `ceiling`, if lower) and never exceeds `ceiling`.
    pub fn new(ceiling: usize) -> Arc<Self> {
        let ceiling = ceiling.max(1) as f64;
        Arc::new(Self {
            state: Mutex::new(State {
                limit: (INITIAL_WIDTH as f64).min(ceiling),
                ceiling,
                in_flight: 0,
                slow_start: true,
                last_decrease: Instant::now(),
                usual: None,
                recent: None,
                samples: 0,
            }),
            freed: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of posts allowed in flight now.
    pub fn limit(&self) -> usize {
        self.state().limit as usize
    }

    /// Waits for room for one more post in flight.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.state();
                if (state.in_flight as f64) < state.limit.floor().max(1.0) {
                    state.in_flight += 1;
                    return Slot { width: Arc::clone(self) };
                }
            }
            freed.await;
        }
    }

    fn succeeded(&self, sent: Instant, took: Duration) {
        let mut state = self.state();
        let usual = match state.usual {
            Some(usual) if took >= usual => usual + (took - usual) / 100,
            _ => took,
        };
        state.usual = Some(usual);
        let recent = state.recent.map_or(took, |recent| recent.mul_f64(0.9) + took.mul_f64(0.1));
        state.recent = Some(recent);
        state.samples += 1;
        let risen = state.samples >= RISE_SAMPLES && recent.as_secs_f64() > usual.as_secs_f64() * LATENCY_RISE;
        let before = state.limit.floor();
        if risen && usual > Duration::ZERO {
            state.decrease(sent);
        } else if state.slow_start {
            state.limit = (state.limit + 1.0).min(state.ceiling);
        } else {
            state.limit = (state.limit + 1.0 / state.limit).min(state.ceiling);
        }
        let grown = state.limit.floor() > before;
        drop(state);
        if grown {
            self.freed.notify_waiters();
        }
    }

    fn backed_off(&self, sent: Instant) {
        self.state().decrease(sent);
    }

    fn release(&self) {
        self.state().in_flight -= 1;
        self.freed.notify_one();
    }
}

impl State {
    fn decrease(&mut self, sent: Instant) {
        if sent < self.last_decrease {
            return;
        }
        self.slow_start = false;
        self.limit = (self.limit * DECREASE).max(1.0);
        self.last_decrease = Instant::now();
        self.samples = 0;
    }
}

/// Room for one post in flight, given back when dropped. Tells the width how each attempt went.
#[derive(Debug)]
pub struct Slot {
    width: Arc<PostWidth>,
}

impl Slot {
    /// An attempt sent at `sent` succeeded.
    pub fn succeeded(&self, sent: Instant) {
        self.width.succeeded(sent, sent.elapsed());
    }

    /// An attempt sent at `sent` was throttled, or took too long.
    pub fn backed_off(&self, sent: Instant) {
        self.width.backed_off(sent);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.width.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn grows_while_posts_succeed_and_shrinks_once_per_round_when_throttled() {
        let width = PostWidth::new(1000);
        assert_eq!(width.limit(), INITIAL_WIDTH);
        // One round of 64 successes doubles it (slow start).
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(20)).await;
        for _ in 0..64 {
            width.acquire().await.succeeded(sent);
        }
        assert_eq!(width.limit(), 128);

        // A round's posts all throttled: one decrease, by a fifth.
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(20)).await;
        let slots: Vec<Slot> = futures::future::join_all((0..100).map(|_| width.acquire())).await;
        for slot in &slots {
            slot.backed_off(sent);
        }
        assert_eq!(width.limit(), 102);

        // Then additive: a round of successes adds one.
        drop(slots);
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(20)).await;
        for _ in 0..102 {
            width.acquire().await.succeeded(sent);
        }
        assert_eq!(width.limit(), 103);
    }

    #[tokio::test(start_paused = true)]
    async fn holds_no_more_than_the_limit_in_flight_and_never_passes_the_ceiling() {
        let width = PostWidth::new(3);
        assert_eq!(width.limit(), 3, "the ceiling bounds the start");
        let held: Vec<Slot> = futures::future::join_all((0..3).map(|_| width.acquire())).await;
        let fourth = tokio::time::timeout(Duration::from_secs(1), width.acquire()).await;
        assert!(fourth.is_err(), "a fourth waits while three are in flight");
        let waiting = tokio::spawn({
            let width = Arc::clone(&width);
            async move { width.acquire().await }
        });
        tokio::task::yield_now().await;
        drop(held);
        let slot = tokio::time::timeout(Duration::from_secs(1), waiting).await.unwrap().unwrap();
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(5)).await;
        for _ in 0..100 {
            slot.succeeded(sent);
        }
        assert_eq!(width.limit(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn shrinks_when_the_posts_time_rises() {
        let width = PostWidth::new(1000);
        let slot = width.acquire().await;
        for _ in 0..50 {
            let sent = Instant::now();
            tokio::time::advance(Duration::from_millis(20)).await;
            slot.succeeded(sent);
        }
        let grown = width.limit();
        // The API slows down: posts take 5× as long (a queue builds up behind it).
        for _ in 0..50 {
            let sent = Instant::now();
            tokio::time::advance(Duration::from_millis(100)).await;
            slot.succeeded(sent);
        }
        assert!(width.limit() < grown, "{} < {grown}", width.limit());
    }
}

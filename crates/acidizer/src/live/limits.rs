//! The bounds on WebSocket sessions of `acidizer serve`: how many may be open in all and per client (its IPv4
//! address or IPv6 /64), and how many messages a session may send per second (one over it is answered with an
//! error, and costs the store nothing).

use acidizer_core::domain::ClientAddress;
use acidizer_core::live::Outbound;
use axum::extract::ws::Utf8Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The limits, with the sessions open now.
#[derive(Debug)]
pub struct SessionLimits {
    max_sessions: usize,
    max_per_client: usize,
    messages_per_second: NonZeroU32,
    /// The answer to a message over the rate, serialised once.
    over_rate_reply: Utf8Bytes,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<ClientAddress, usize>,
}

/// Why a session was refused; its WebSocket is closed with the code and the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Close 1013 (try again later).
    #[error("the server has as many WebSocket sessions as it takes; try again later")]
    Full,
    /// Close 1008 (policy violation).
    #[error("this address has as many WebSocket sessions open as one client may")]
    TooManyFromClient,
}

/// A session's place among the open ones, given back when dropped.
#[derive(Debug)]
pub struct Admission {
    limits: Arc<SessionLimits>,
    client: Option<ClientAddress>,
}

impl SessionLimits {
    pub fn new(max_sessions: NonZeroUsize, max_per_client: NonZeroUsize, messages_per_second: NonZeroU32) -> Self {
        let detail = format!("more than {messages_per_second} messages a second; this one was not answered");
        Self {
            max_sessions: max_sessions.get(),
            max_per_client: max_per_client.get(),
            messages_per_second,
            over_rate_reply: Outbound::Error(detail).to_json().into(),
            open: Mutex::default(),
        }
    }

    /// The error message that answers a message over the rate.
    pub fn over_rate_reply(&self) -> Utf8Bytes {
        self.over_rate_reply.clone()
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        // Every change below is made whole under the lock: a panic elsewhere cannot leave it half-made.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new session from `peer` (its address, when known), if the limits have one.
    pub fn admit(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<Admission, Refusal> {
        let client = peer.map(ClientAddress::of);
        let mut open = self.open();
        if open.total >= self.max_sessions {
            return Err(Refusal::Full);
        }
        if let Some(client) = client {
            let sessions = open.by_client.entry(client).or_default();
            if *sessions >= self.max_per_client {
                return Err(Refusal::TooManyFromClient);
            }
            *sessions += 1;
        }
        open.total += 1;
        Ok(Admission { limits: Arc::clone(self), client })
    }

    /// The message budget of one session: a second's worth at once, then refilled at the rate.
    pub fn message_budget(&self) -> DefaultDirectRateLimiter {
        RateLimiter::direct(self.message_quota())
    }

    fn message_quota(&self) -> Quota {
        Quota::per_second(self.messages_per_second)
    }

    #[cfg(test)]
    fn sessions(&self) -> (usize, usize) {
        let open = self.open();
        (open.total, open.by_client.len())
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.limits.open();
        open.total = open.total.saturating_sub(1);
        if let Some(client) = self.client
            && let Some(sessions) = open.by_client.get_mut(&client)
        {
            *sessions = sessions.saturating_sub(1);
            if *sessions == 0 {
                open.by_client.remove(&client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_client: usize) -> Arc<SessionLimits> {
        let (total, per_client) = (NonZeroUsize::new(total).unwrap(), NonZeroUsize::new(per_client).unwrap());
        Arc::new(SessionLimits::new(total, per_client, NonZeroU32::MIN))
    }

    #[test]
    fn a_client_gets_at_most_its_share_and_its_places_come_back() {
        let limits = limits(10, 2);
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::ffff".parse().unwrap();
        let first = limits.admit(Some(one)).unwrap();
        let _second = limits.admit(Some(same_64)).unwrap();
        assert_eq!(limits.admit(Some(one)).unwrap_err(), Refusal::TooManyFromClient);
        let _other = limits.admit(Some("192.0.2.1".parse().unwrap())).unwrap();
        drop(first);
        let _again = limits.admit(Some(one)).expect("a closed session gives its place back");
        assert_eq!(limits.sessions(), (3, 2));
    }

    #[test]
    fn the_server_takes_at_most_its_total() {
        let limits = limits(2, 2);
        let _a = limits.admit(Some("192.0.2.1".parse().unwrap())).unwrap();
        let b = limits.admit(None).unwrap();
        assert_eq!(limits.admit(Some("192.0.2.2".parse().unwrap())).unwrap_err(), Refusal::Full);
        drop(b);
        assert!(limits.admit(Some("192.0.2.2".parse().unwrap())).is_ok());
    }

    #[test]
    fn every_place_is_given_back() {
        let limits = limits(100, 100);
        let admitted: Vec<_> = (0..50_u32).map(|n| limits.admit(Some(IpAddr::V4(n.into()))).unwrap()).collect();
        assert_eq!(limits.sessions(), (50, 50));
        drop(admitted);
        assert_eq!(limits.sessions(), (0, 0), "no client is remembered once its sessions are closed");
    }

    #[test]
    fn a_session_may_send_a_seconds_worth_at_once_then_at_the_rate() {
        let limits = SessionLimits::new(NonZeroUsize::MIN, NonZeroUsize::MIN, NonZeroU32::new(5).unwrap());
        let budget = limits.message_budget();
        assert_eq!((0..5).filter(|_| budget.check().is_ok()).count(), 5);
        assert!(budget.check().is_err(), "the sixth message within the second is over the rate");

        // The same budget on a clock the test moves.
        let clock = governor::clock::FakeRelativeClock::default();
        let budget = RateLimiter::direct_with_clock(limits.message_quota(), clock.clone());
        let passed = |count: usize| (0..count).filter(|_| budget.check().is_ok()).count();
        assert_eq!(passed(50), 5, "a second's worth at once");
        clock.advance(std::time::Duration::from_millis(199));
        assert_eq!(passed(1), 0, "not one more before a fifth of a second");
        clock.advance(std::time::Duration::from_millis(1));
        assert_eq!(passed(50), 1, "one more every fifth of a second");
        clock.advance(std::time::Duration::from_secs(10));
        assert_eq!(passed(50), 5, "never more than a second's worth at once");
    }
}

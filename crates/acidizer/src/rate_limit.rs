//! `--rate-limit`: requests per second per client (its IPv4 address or IPv6 /64: [`ClientAddress`]), 429 with
//! `Retry-After` beyond it. Clients idle long enough to be back at a full quota are forgotten, so the limiter holds
//! only recent ones.

use acidizer_core::domain::ClientAddress;
use acidizer_http::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often clients back at a full quota are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(10);
/// The most clients the limiter holds: when a flood of new addresses reaches it, idle clients are forgotten at once,
/// and while it is still full every new client shares one quota (that of [`OVERFLOW`]) until some are forgotten.
const MAX_CLIENTS: usize = 65_536;
/// How many requests pass between two looks at the limiter's size.
const SIZE_CHECK_EVERY: u32 = 256;
/// The key every new client shares while the limiter is full.
const OVERFLOW: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

#[derive(Clone)]
pub struct PerIp {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    requests: Arc<AtomicU32>,
    full: Arc<AtomicBool>,
}

impl PerIp {
    /// The limiter, and the task that forgets idle clients while it lives (on the current tokio runtime).
    pub fn new(per_second: NonZeroU32) -> Self {
        let limits = Self::unattended(per_second);
        tokio::spawn(forget_idle_clients(Arc::downgrade(&limits.limiter)));
        limits
    }

    fn unattended(per_second: NonZeroU32) -> Self {
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_second(per_second))),
            requests: Arc::default(),
            full: Arc::default(),
        }
    }

    /// Whether `client` may make a request now; if not, when it may.
    fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.requests.fetch_add(1, Ordering::Relaxed).is_multiple_of(SIZE_CHECK_EVERY) {
            let mut full = self.limiter.len() >= MAX_CLIENTS;
            if full {
                forget_idle(&self.limiter);
                full = self.limiter.len() >= MAX_CLIENTS;
            }
            self.full.store(full, Ordering::Relaxed);
        }
        let key = if self.full.load(Ordering::Relaxed) { OVERFLOW } else { client };
        self.limiter.check_key(&key).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

async fn forget_idle_clients(limiter: Weak<DefaultKeyedRateLimiter<IpAddr>>) {
    let mut every = tokio::time::interval(FORGET_EVERY);
    loop {
        every.tick().await;
        let Some(limiter) = limiter.upgrade() else { return };
        forget_idle(&limiter);
    }
}

fn forget_idle(limiter: &DefaultKeyedRateLimiter<IpAddr>) {
    limiter.retain_recent();
    limiter.shrink_to_fit();
}

pub async fn enforce(State(limits): State<PerIp>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| ClientAddress::of(addr.ip()).ip());
    if let Some(ip) = ip
        && let Err(wait) = limits.check(ip)
    {
        let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return ApiError::RateLimited { retry_after_secs: retry_after_secs.max(1) }.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_rotated_within_a_64_share_one_quota() {
        let limits = PerIp::unattended(NonZeroU32::MIN);
        assert!(limits.check(ClientAddress::of("2001:db8::1".parse().unwrap()).ip()).is_ok());
        let rotated = ClientAddress::of("2001:db8::2".parse().unwrap()).ip();
        assert!(limits.check(rotated).is_err(), "the same /64 is the same client");
    }

    #[test]
    fn a_flood_of_new_clients_never_holds_more_than_the_limiters_size() {
        // One request a second: a client stays remembered for a second after its request.
        let limits = PerIp::unattended(NonZeroU32::MIN);
        let (mut most, mut shared) = (0, false);
        for n in 0..200_000_u32 {
            let _ = limits.check(IpAddr::V4(n.into()));
            most = most.max(limits.limiter.len());
            shared |= limits.full.load(Ordering::Relaxed);
        }
        assert!(most <= MAX_CLIENTS + SIZE_CHECK_EVERY as usize, "held {most} clients at most");
        assert!(shared, "new clients shared one quota while it was full");
    }

    #[test]
    fn the_limiter_forgets_100_000_clients_once_they_are_idle() {
        let per_second = NonZeroU32::new(1000).unwrap();
        let limiter: DefaultKeyedRateLimiter<IpAddr> = RateLimiter::keyed(Quota::per_second(per_second));
        for n in 0..100_000_u32 {
            let _ = limiter.check_key(&IpAddr::V4(n.into()));
        }
        assert_eq!(limiter.len(), 100_000);
        // A client is back at a full quota once its last request is a replenishment period (1 ms) old.
        std::thread::sleep(Duration::from_millis(200));
        forget_idle(&limiter);
        assert_eq!(limiter.len(), 0, "every client is back at a full quota, and forgotten");
    }
}

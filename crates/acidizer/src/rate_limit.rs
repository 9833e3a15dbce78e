//! `--rate-limit`: requests per second per client (its IPv4 address or IPv6 /64: [`client_of`]), 429 with
//! `Retry-After` beyond it. Clients idle long enough to be back at a full quota are forgotten, so the limiter holds
//! only recent ones.

use crate::client::client_of;
use acidizer_core::http::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often clients back at a full quota are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct PerIp {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl PerIp {
    /// The limiter, and the task that forgets idle clients while it lives (on the current tokio runtime).
    pub fn new(per_second: NonZeroU32) -> Self {
        let limits = Self { limiter: Arc::new(RateLimiter::keyed(Quota::per_second(per_second))) };
        tokio::spawn(forget_idle_clients(Arc::downgrade(&limits.limiter)));
        limits
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
    let ip = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| client_of(addr.ip()));
    if let Some(ip) = ip
        && let Err(not_until) = limits.limiter.check_key(&ip)
    {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return ApiError::RateLimited { retry_after_secs: retry_after_secs.max(1) }.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_rotated_within_a_64_share_one_quota() {
        let limits = PerIp { limiter: Arc::new(RateLimiter::keyed(Quota::per_second(NonZeroU32::MIN))) };
        let first = client_of("2001:db8::1".parse().unwrap());
        assert!(limits.limiter.check_key(&first).is_ok());
        let rotated = client_of("2001:db8::2".parse().unwrap());
        assert!(limits.limiter.check_key(&rotated).is_err(), "the same /64 is the same client");
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

//! `--rate-limit`: requests per second per client, 429 with `Retry-After` beyond it. A client is its IPv4 address,
//! or its IPv6 /64 (the prefix one subscriber gets, in which it may rotate addresses at will). Clients idle long
//! enough to be back at a full quota are forgotten, so the limiter holds only recent ones.

use acidizer_core::http::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
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

/// What a client is limited by: its IPv4 address (also when it comes IPv4-mapped), or its IPv6 /64.
fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
    }
}

pub async fn enforce(State(limits): State<PerIp>, request: Request, next: Next) -> Response {
    let ip = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| client(addr.ip()));
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

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_one_its_address() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        assert_eq!(client(one), client(other));
        assert_ne!(client(one), client("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(client("::ffff:192.0.2.7".parse().unwrap()), client("192.0.2.7".parse().unwrap()));
        assert_ne!(client("192.0.2.7".parse().unwrap()), client("192.0.2.8".parse().unwrap()));
    }

    #[tokio::test]
    async fn addresses_rotated_within_a_64_share_one_quota() {
        let limits = PerIp { limiter: Arc::new(RateLimiter::keyed(Quota::per_second(NonZeroU32::MIN))) };
        let first = client("2001:db8::1".parse().unwrap());
        assert!(limits.limiter.check_key(&first).is_ok());
        let rotated = client("2001:db8::2".parse().unwrap());
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

//! `--rate-limit`: requests per second per client IP, 429 with `Retry-After` beyond it.

use acidizer_core::http::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

#[derive(Clone)]
pub struct PerIp {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl PerIp {
    pub fn new(per_second: NonZeroU32) -> Self {
        Self { limiter: Arc::new(RateLimiter::keyed(Quota::per_second(per_second))) }
    }
}

pub async fn enforce(State(limits): State<PerIp>, request: Request, next: Next) -> Response {
    let ip = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    if let Some(ip) = ip
        && let Err(not_until) = limits.limiter.check_key(&ip)
    {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return ApiError::RateLimited { retry_after_secs: retry_after_secs.max(1) }.into_response();
    }
    next.run(request).await
}

//! Capped exponential backoff with full jitter: the pause before each retry is uniformly random between zero and
//! `min(cap, base · 2^attempt)`. The DynamoDB store's retries of a lost race and the broadcast's retries of a
//! failing subscriber both pause this way.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Pauses that start under `base` and never exceed `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap, attempt: 0 }
    }

    /// The longest the next pause may be.
    pub fn ceiling(&self) -> Duration {
        self.base.saturating_mul(1 << self.attempt.min(16)).min(self.cap)
    }

    /// The pause before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_a_ceiling_that_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(400));
        for ceiling in [5, 10, 20, 40, 80, 160, 320, 400, 400, 400] {
            assert_eq!(backoff.ceiling(), Duration::from_millis(ceiling));
            let delay = backoff.next_delay();
            assert!(delay <= Duration::from_millis(ceiling), "{delay:?} over {ceiling} ms");
        }
        for _ in 0..100 {
            backoff.next_delay();
        }
        assert_eq!(backoff.ceiling(), Duration::from_millis(400), "no overflow however many attempts");
        let spread: Vec<Duration> = (0..50).map(|_| backoff.next_delay()).collect();
        assert!(spread.iter().any(|d| *d != spread[0]), "full jitter varies the delay");
    }
}

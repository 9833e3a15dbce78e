//! Capped exponential backoff with full jitter.

use std::time::Duration;

pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(5);
    const CAP: Duration = Duration::from_millis(400);

    pub(crate) fn new() -> Self {
        Self { attempt: 0 }
    }

    /// The pause before the next attempt: uniformly random between zero and `min(CAP, BASE · 2^attempt)`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = Self::BASE.saturating_mul(1 << self.attempt.min(16)).min(Self::CAP);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_a_growing_cap() {
        let mut backoff = Backoff::new();
        let ceilings = [5, 10, 20, 40, 80, 160, 320, 400, 400, 400];
        for ceiling in ceilings {
            let delay = backoff.next_delay();
            assert!(delay <= Duration::from_millis(ceiling), "{delay:?} over {ceiling} ms");
        }
        let spread: Vec<Duration> = (0..50).map(|_| backoff.next_delay()).collect();
        assert!(spread.iter().any(|d| *d != spread[0]), "full jitter varies the delay");
    }
}

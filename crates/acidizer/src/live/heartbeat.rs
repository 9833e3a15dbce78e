//! When a WebSocket session pings its client, and when it gives the client up: a client that has sent nothing for
//! [`Liveness::ping_after`] is pinged, and one that then sends nothing (not even the pong) within
//! [`Liveness::answer_within`] is gone. Any message from the client counts as an answer.

use std::time::Duration;
use tokio::time::Instant;

/// The session's liveness settings (`--ws-ping-after`, `--ws-answer-within`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// A client that has sent nothing for this long is pinged.
    pub ping_after: Duration,
    /// A pinged client that sends nothing (not even the pong) within this is gone: its session ends.
    pub answer_within: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self { ping_after: Duration::from_secs(30), answer_within: Duration::from_secs(10) }
    }
}

/// What the session does when its timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Nothing yet: the timer was set for a ping that a message from the client has moved later.
    Wait,
    /// Send a ping (and call [`Heartbeat::pinged`]).
    Ping,
    /// The client did not answer in time: end the session.
    GiveUp,
}

/// One session's heartbeat. One timer serves it: a message from the client moves the next ping later without
/// touching the timer; when the timer fires early, it is set again for what is then due ([`Heartbeat::due`]).
#[derive(Debug)]
pub struct Heartbeat {
    liveness: Liveness,
    ping_at: Instant,
    /// Set while a ping is unanswered: when the client must have sent something by.
    answer_by: Option<Instant>,
}

impl Heartbeat {
    pub fn new(liveness: Liveness, now: Instant) -> Self {
        Self { liveness, ping_at: now + liveness.ping_after, answer_by: None }
    }

    /// The client sent something at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.ping_at = now + self.liveness.ping_after;
        self.answer_by = None;
    }

    /// What to do when the timer fires at `now`.
    pub fn beat(&self, now: Instant) -> Beat {
        if self.answer_by.is_some_and(|by| now >= by) {
            Beat::GiveUp
        } else if now >= self.ping_at {
            Beat::Ping
        } else {
            Beat::Wait
        }
    }

    /// A ping went out at `now`: the client must answer within [`Liveness::answer_within`] of the first unanswered
    /// one.
    pub fn pinged(&mut self, now: Instant) {
        self.answer_by.get_or_insert(now + self.liveness.answer_within);
        self.ping_at = now + self.liveness.ping_after;
    }

    /// When the timer is due next.
    pub fn due(&self) -> Instant {
        self.answer_by.map_or(self.ping_at, |by| by.min(self.ping_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn heartbeat(start: Instant) -> Heartbeat {
        Heartbeat::new(Liveness { ping_after: 3 * SECOND, answer_within: 2 * SECOND }, start)
    }

    /// Runs the session's timer as the session does, from `start` until it gives up (or `until`), hearing from the
    /// client at `heard`; returns the instants of its pings and when it gave up.
    async fn run(start: Instant, heard: &[Duration], until: Duration) -> (Vec<Duration>, Option<Duration>) {
        let mut heartbeat = heartbeat(start);
        let mut heard = heard.iter().map(|after| start + *after).peekable();
        let mut pings = Vec::new();
        loop {
            let due = heartbeat.due();
            if heard.peek().is_some_and(|at| *at < due) {
                let at = heard.next().unwrap_or(due);
                tokio::time::sleep_until(at).await;
                heartbeat.heard(Instant::now());
                continue;
            }
            if due > start + until {
                return (pings, None);
            }
            tokio::time::sleep_until(due).await;
            let now = Instant::now();
            match heartbeat.beat(now) {
                Beat::Wait => {}
                Beat::Ping => {
                    heartbeat.pinged(now);
                    pings.push(now - start);
                }
                Beat::GiveUp => return (pings, Some(now - start)),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_pinged_then_given_up_on_within_its_answer_time() {
        let (pings, gave_up) = run(Instant::now(), &[], 60 * SECOND).await;
        assert_eq!(pings, [3 * SECOND]);
        assert_eq!(gave_up, Some(5 * SECOND), "pinged after 3 s of silence, given up 2 s later");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_answers_each_ping_is_kept() {
        // A pong 100 ms after each ping (at 3 s, then every 3 s after the last answer).
        let answers: Vec<Duration> = (0..10).map(|n| Duration::from_millis(3_100 * (n + 1))).collect();
        let (pings, gave_up) = run(Instant::now(), &answers, 31 * SECOND).await;
        assert_eq!(gave_up, None);
        assert_eq!(pings.len(), 10, "{pings:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_talks_is_never_pinged() {
        let talk: Vec<Duration> = (1..=20).map(|n| n * SECOND).collect();
        let (pings, gave_up) = run(Instant::now(), &talk, 20 * SECOND).await;
        assert_eq!((pings, gave_up), (vec![], None));
    }

    #[tokio::test(start_paused = true)]
    async fn the_answer_time_runs_from_the_first_unanswered_ping() {
        // Pinged at 1 s and again at 2 s: the client must answer by 4 s, 3 s after the first ping.
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(Liveness { ping_after: SECOND, answer_within: 3 * SECOND }, start);
        heartbeat.pinged(start + SECOND);
        heartbeat.pinged(start + 2 * SECOND);
        assert_eq!(heartbeat.beat(start + 3 * SECOND), Beat::Ping);
        assert_eq!(heartbeat.beat(start + 4 * SECOND), Beat::GiveUp);
        heartbeat.heard(start + 4 * SECOND);
        assert_eq!(heartbeat.beat(start + 4 * SECOND), Beat::Wait);
        assert_eq!(heartbeat.due(), start + 5 * SECOND);
    }
}

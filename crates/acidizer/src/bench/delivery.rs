//! `acidizer bench --subscribers M`: M WebSocket subscribers of the counter, and one change every `--interval`; the
//! latency of each change from its HTTP answer to its arrival at each subscriber.

use super::{Acknowledged, BenchError, ClientReport, send_until_answered};
use futures::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many subscribers connect at once (the server's listen backlog stays far from full).
const CONNECTING_AT_ONCE: usize = 64;
/// How long the subscribers get, after the last change was answered, to receive it.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(10);
/// How long the server's memory settles after the last subscriber connected, before it is read.
const SETTLE: Duration = Duration::from_secs(1);

/// What a delivery run does.
pub struct Plan {
    pub subscribers: usize,
    pub interval: Duration,
    pub duration: Duration,
    pub requests: usize,
    /// The process serving `base`, whose resident memory is read before and after the subscribers connect.
    pub server_pid: Option<u32>,
}

/// What the subscribers saw.
pub struct Delivery {
    pub subscribers: usize,
    /// For each change and subscriber, the time from the change's answer until the subscriber had it or a later
    /// value (sorted).
    pub latencies: Vec<Duration>,
    /// Changes a subscriber got no message for because a later value replaced it while it was still unsent (a
    /// subscriber that lags gets the latest value, not every value); their latency is the later value's arrival.
    pub superseded: usize,
    /// Changes a subscriber never caught up with: neither they nor a later value arrived.
    pub missed: usize,
    /// The server's resident memory before and after the subscribers connected, in KiB.
    pub server_rss_kib: Option<(u64, u64)>,
}

/// Connects the subscribers, sends the changes at the plan's pace, and collects what arrived where.
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    counter: &str,
    run_id: &str,
    plan: &Plan,
) -> Result<(ClientReport, Delivery), BenchError> {
    let rss_before = plan.server_pid.and_then(rss_kib);
    let ws_url = format!("{}/ws?counter={counter}", base.replacen("http", "ws", 1));
    let sockets = connect_all(&ws_url, plan.subscribers).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_after = plan.server_pid.and_then(rss_kib);

    let stop = CancellationToken::new();
    let last_seen: Arc<Vec<AtomicU64>> = Arc::new(sockets.iter().map(|_| AtomicU64::new(0)).collect());
    let listeners: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(index, socket)| tokio::spawn(listen(socket, index, Arc::clone(&last_seen), stop.clone())))
        .collect();

    let url = format!("{base}/counters/{counter}/increment");
    let (report, answered_at) = send_paced(http, &url, run_id, plan).await;
    let last = report.acknowledged.iter().map(|change| change.seq).max().unwrap_or_default();
    let catch_up_by = Instant::now() + CATCH_UP_WITHIN;
    while Instant::now() < catch_up_by && last_seen.iter().any(|seen| seen.load(Ordering::Relaxed) < last) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();

    let mut answered: Vec<(u64, Instant)> = answered_at.into_iter().collect();
    answered.sort_unstable_by_key(|(seq, _)| *seq);
    let mut latencies = Vec::with_capacity(plan.subscribers * answered.len());
    let mut superseded = 0;
    let mut missed = 0;
    for listener in listeners {
        let arrivals = listener.await.unwrap_or_default();
        let seen = staleness(&answered, &arrivals);
        superseded += seen.superseded;
        missed += answered.len() - seen.latencies.len();
        latencies.extend(seen.latencies);
    }
    latencies.sort_unstable();
    let server_rss_kib = rss_before.zip(rss_after);
    Ok((report, Delivery { subscribers: plan.subscribers, latencies, superseded, missed, server_rss_kib }))
}

struct Staleness {
    latencies: Vec<Duration>,
    superseded: usize,
}

/// How long each answered change (sorted by `seq`) took to reach a subscriber, itself or as a later value, from
/// the subscriber's arrivals (in the order they came, so by rising `seq`).
fn staleness(answered: &[(u64, Instant)], arrivals: &[(u64, Instant)]) -> Staleness {
    let mut seen = Staleness { latencies: Vec::with_capacity(answered.len()), superseded: 0 };
    let mut next = arrivals.iter().peekable();
    for (seq, answered_at) in answered {
        while next.peek().is_some_and(|(arrived, _)| arrived < seq) {
            next.next();
        }
        let Some((arrived, at)) = next.peek() else { break };
        seen.superseded += usize::from(arrived > seq);
        seen.latencies.push(at.saturating_duration_since(*answered_at));
    }
    seen
}

/// Opens `count` subscriptions, each confirmed by a ping's answer (the server has registered it by then).
async fn connect_all(url: &str, count: usize) -> Result<Vec<Socket>, BenchError> {
    let progress = ProgressBar::new(count as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} subscribers connected")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let connecting = futures::stream::iter(0..count)
        .map(|_| async {
            let socket = subscribe(url).await;
            progress.inc(1);
            socket
        })
        .buffer_unordered(CONNECTING_AT_ONCE);
    let sockets: Vec<_> = connecting.collect().await;
    progress.finish_and_clear();
    let connected = sockets.iter().filter(|socket| socket.is_ok()).count();
    sockets.into_iter().collect::<Result<_, _>>().map_err(|error| BenchError::Subscribe {
        connected,
        wanted: count,
        source: Box::new(error),
    })
}

async fn subscribe(url: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    // Small buffers: the bench holds thousands of sockets, each receiving one short message at a time.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
    socket.send(Message::text(r#"{"action":"ping"}"#)).await?;
    while let Some(message) = socket.next().await {
        if let Message::Text(text) = message?
            && text.contains("pong")
        {
            return Ok(socket);
        }
    }
    Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)
}

#[derive(serde::Deserialize)]
struct Pushed {
    seq: u64,
}

/// The `seq` of every value message that arrives, and when, until `stop`.
async fn listen(
    mut socket: Socket,
    index: usize,
    last_seen: Arc<Vec<AtomicU64>>,
    stop: CancellationToken,
) -> Vec<(u64, Instant)> {
    let mut arrivals = Vec::new();
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = socket.next() => message,
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                let arrived = Instant::now();
                if let Ok(Pushed { seq }) = serde_json::from_str(text.as_str()) {
                    arrivals.push((seq, arrived));
                    last_seen[index].fetch_max(seq, Ordering::Relaxed);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    arrivals
}

/// One increment every `plan.interval` (the next one waits for the answer), for `plan.duration` or
/// `plan.requests` changes; when each acknowledged `seq` was answered.
async fn send_paced(
    http: &reqwest::Client,
    url: &str,
    run_id: &str,
    plan: &Plan,
) -> (ClientReport, HashMap<u64, Instant>) {
    let progress = ProgressBar::new(plan.requests.min(plan.duration.div_duration_f64(plan.interval) as usize) as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} changes, every one sent to each subscriber")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut report = ClientReport::default();
    let mut answered_at = HashMap::new();
    let mut pace = tokio::time::interval(plan.interval);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let until = Instant::now() + plan.duration;
    for i in 0..plan.requests {
        pace.tick().await;
        if Instant::now() >= until {
            break;
        }
        let key = format!("bench-{run_id}-{i}");
        let sent = Instant::now();
        let answer = match send_until_answered(http, url, &key).await {
            Ok(response) if response.status().is_success() => response.json::<serde_json::Value>().await.ok(),
            _ => None,
        };
        match answer.and_then(|body| Acknowledged::from_answer(key, &body)) {
            Some(change) => {
                answered_at.insert(change.seq, Instant::now());
                report.latencies.push(sent.elapsed());
                report.acknowledged.push(change);
            }
            None => report.failures += 1,
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    (report, answered_at)
}

/// A process's resident memory (`VmRSS`), in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_replaced_before_it_was_sent_counts_until_the_later_value_arrived() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let answered = [(1, at(0)), (2, at(100)), (3, at(200)), (4, at(300))];
        // Change 2 was superseded by 3 (arrived at 230 ms); change 4 never arrived.
        let arrivals = [(1, at(5)), (3, at(230))];
        let seen = staleness(&answered, &arrivals);
        let ms: Vec<u128> = seen.latencies.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [5, 130, 30]);
        assert_eq!(seen.superseded, 1);
    }

    #[test]
    fn a_value_that_arrives_before_its_answer_took_no_time() {
        let start = Instant::now();
        let seen = staleness(&[(7, start + Duration::from_millis(3))], &[(7, start)]);
        assert_eq!(seen.latencies, [Duration::ZERO]);
        assert_eq!(seen.superseded, 0);
    }
}

//! `acidizer bench`: concurrent changes (increments, and decrements with `--mix`) with fresh idempotency keys,
//! timed one by one; then the checks that the history is exact: `seq`s 1..N with no gap, each record's value the
//! running sum of the deltas and never below 0, every acknowledged change in it under its request id.

mod delivery;

use crate::cli::BenchArgs;
use crate::live::LocalBroadcaster;
use crate::live::heartbeat::Liveness;
use crate::live::hub::Hub;
use crate::live::limits::SessionLimits;
use crate::live::websocket::Live;
use crate::serve::{app, open_sqlite_live};
use acidizer_core::AllowedOrigins;
use acidizer_core::backoff::Backoff;
use acidizer_core::domain::InvalidCounterName;
use acidizer_core::{CounterName, Counters};
use acidizer_store_sqlite::{OpenError, SqliteStore};
use indicatif::{ProgressBar, ProgressStyle};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Counter(#[from] InvalidCounterName),
    #[error(transparent)]
    Store(#[from] OpenError),
    #[error("cannot start the in-process server")]
    Server(#[source] std::io::Error),
    #[error("cannot make an HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("cannot read {url}")]
    Read {
        url: String,
        #[source]
        source: ReadFailure,
    },
    #[error("the history is not exact: {0}")]
    NotExact(String),
    #[error("{0} changes got no answer, even sent again with their keys")]
    Unanswered(usize),
    #[error("only {connected} of {wanted} subscribers could connect")]
    Subscribe {
        connected: usize,
        wanted: usize,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("the naive baseline could not run")]
    Baseline(#[source] rusqlite::Error),
}

/// How long a delivery run (`--subscribers`) sends changes unless `--duration` says otherwise, in seconds.
const DELIVERY_FOR: f64 = 10.0;

/// How long the naive baseline runs.
const BASELINE_FOR: Duration = Duration::from_secs(3);

/// How often a change (or a read) is sent before it counts as failed.
const ATTEMPTS: u32 = 8;
/// How long one request may take: longer than the contract's 10 s deadline for a change.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends one change until it is answered with something other than "not now" (a network failure, 429 or 5xx),
/// with the same key each time — as a client should, and the only way a 503 of unknown outcome is resolved — waiting
/// as `Retry-After` asks, or with a growing pause.
async fn send_until_answered(http: &reqwest::Client, url: &str, key: &str) -> reqwest::Result<reqwest::Response> {
    let mut backoff = retry_backoff();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let answer = http.post(url).header("Idempotency-Key", key).send().await;
        let retry_after = match &answer {
            Ok(response) if response.status() == 429 || response.status().is_server_error() => response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
                .map(Duration::from_secs),
            Err(_) => None,
            Ok(_) => return answer,
        };
        if attempt >= ATTEMPTS {
            return answer;
        }
        let pause = retry_after.unwrap_or_else(|| backoff.next_delay());
        tokio::time::sleep(pause.min(Duration::from_secs(5))).await;
    }
}

/// One acknowledged change: its request id, `seq`, delta and the value after it.
struct Acknowledged {
    request_id: String,
    seq: u64,
    delta: i64,
    value: u64,
}

impl Acknowledged {
    /// The change a 200 answer to the change sent with `request_id` reports.
    fn from_answer(request_id: String, body: &serde_json::Value) -> Option<Self> {
        Some(Self {
            request_id,
            seq: body["seq"].as_u64()?,
            delta: body["delta"].as_i64()?,
            value: body["value"].as_u64()?,
        })
    }
}

/// What one client saw.
#[derive(Default)]
struct ClientReport {
    latencies: Vec<Duration>,
    acknowledged: Vec<Acknowledged>,
    refused: usize,
    failures: usize,
}

/// The in-process server of a run without `--url`.
struct Local {
    base: String,
    counters: Counters<SqliteStore>,
    _dir: tempfile::TempDir,
}

impl Local {
    /// `acidizer serve`'s whole stack (the API and `/ws`) on a fresh embedded store.
    async fn start() -> Result<Local, BenchError> {
        let dir = tempfile::tempdir().map_err(BenchError::Server)?;
        let hub = Arc::new(Hub::default());
        let store = open_sqlite_live(dir.path(), LocalBroadcaster::new(Arc::clone(&hub), Arc::clone(&hub)))?;
        let counters = Counters::new(store);
        let live = Live {
            counters: counters.clone(),
            hub,
            sessions: TaskTracker::new(),
            liveness: Liveness::default(),
            limits: Arc::new(SessionLimits::new(NonZeroUsize::MAX, NonZeroUsize::MAX, NonZeroU32::MAX)),
            origins: AllowedOrigins::None,
        };
        let app = app(&live, dir.path().join("no-site"), None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(BenchError::Server)?;
        let addr = listener.local_addr().map_err(BenchError::Server)?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Local { base: format!("http://{addr}"), counters, _dir: dir })
    }
}

pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    let counter = CounterName::parse(&args.counter)?;
    let local = match args.url {
        Some(_) => None,
        None => Some(Local::start().await?),
    };
    let base = args.url.clone().or_else(|| local.as_ref().map(|l| l.base.clone())).unwrap_or_default();
    let base = base.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(BenchError::Client)?;
    let before = read_state(&http, &base, &counter).await?;

    let run_id = uuid_like();
    let started = Instant::now();
    let (all, delivery) = match args.subscribers {
        Some(subscribers) => {
            let plan = delivery::Plan {
                subscribers: subscribers as usize,
                interval: Duration::from_millis(args.interval_ms),
                duration: Duration::from_secs_f64(args.duration.unwrap_or(DELIVERY_FOR)),
                requests: args.requests,
                server_pid: args.server_pid,
            };
            let (report, delivered) = delivery::run(&http, &base, counter.as_str(), &run_id, &plan).await?;
            (report, Some(delivered))
        }
        None => (send_load(&http, &base, &counter, &run_id, &args).await, None),
    };
    let elapsed = started.elapsed();

    let mut latencies = all.latencies;
    latencies.sort_unstable();
    let answered = latencies.len() as u64;
    let acknowledged = all.acknowledged.len();
    let throughput = answered as f64 / elapsed.as_secs_f64();
    let ms = |quantile: f64| percentile(&latencies, quantile).as_secs_f64() * 1000.0;
    let mut report = serde_json::json!({
        "url": base,
        "counter": counter.as_str(),
        "requests": answered as usize + all.failures,
        "concurrency": args.concurrency,
        "decrements": args.mix,
        "acknowledged": acknowledged,
        "refused": all.refused,
        "failed": all.failures,
        "elapsedSeconds": elapsed.as_secs_f64(),
        "answersPerSecond": throughput,
        "latencyMs": {"p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "max": ms(1.0)},
    });
    let text = !args.json;
    if text {
        let load = match args.subscribers {
            Some(subscribers) => format!("increments every {} ms, {subscribers} subscribers", args.interval_ms),
            None => format!("{} clients, {:.0} % decrements", args.concurrency, args.mix * 100.0),
        };
        println!("acidizer bench: {} changes of '{counter}' at {base}, {load}", answered as usize + all.failures);
        println!("  acknowledged   {acknowledged} ({} refused at a bound, {} failed)", all.refused, all.failures);
        println!("  elapsed        {:.2} s", elapsed.as_secs_f64());
        println!("  throughput     {throughput:.0} answers/s");
        for (label, quantile) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0)] {
            println!("  latency {label}    {:.2} ms", ms(quantile));
        }
    }
    if let Some(delivery) = &delivery {
        report_delivery(delivery, &mut report, text);
    }
    if let Some(local) = &local {
        let commits = local.counters.store().commits();
        let per_fsync = acknowledged as f64 / commits.max(1) as f64;
        report["groupCommits"] = commits.into();
        if text {
            println!("  group commits  {commits} ({per_fsync:.1} changes per fsync)");
        }
        if let Some(peak) = peak_rss_kib() {
            report["peakRssMiB"] = (peak as f64 / 1024.0).into();
            if text {
                println!("  peak memory    {:.1} MiB (client and server in one process)", peak as f64 / 1024.0);
            }
        }
    }
    if args.baseline {
        let dir = tempfile::tempdir().map_err(BenchError::Server)?;
        let naive = crate::baseline::naive_rate(dir.path(), BASELINE_FOR).map_err(BenchError::Baseline)?;
        report["naivePerSecond"] = naive.into();
        report["timesNaive"] = (throughput / naive).into();
        if text {
            println!("  naive SQLite   {naive:.0} increments/s (one transaction each, WAL, synchronous=FULL)");
            println!("  vs naive       {:.2}x", throughput / naive);
        }
    }
    if all.failures > 0 {
        return Err(BenchError::Unanswered(all.failures));
    }
    let after = read_state(&http, &base, &counter).await?;
    let history = read_history(&http, &base, &counter, before.seq, after.seq).await?;
    check_exact(before, after, &history, &all.acknowledged)?;
    report["exact"] = true.into();
    if text {
        println!(
            "  exact          seq {} to {}, value {} to {}: every acknowledged change is in the history once",
            before.seq, after.seq, before.value, after.value
        );
    } else {
        println!("{report}");
    }
    Ok(())
}

/// Adds what the subscribers saw to the report, and prints it unless the report is JSON.
fn report_delivery(delivery: &delivery::Delivery, report: &mut serde_json::Value, text: bool) {
    let ms = |quantile: f64| percentile(&delivery.latencies, quantile).as_secs_f64() * 1000.0;
    report["subscribers"] = delivery.subscribers.into();
    report["delivered"] = delivery.latencies.len().into();
    report["superseded"] = delivery.superseded.into();
    report["missed"] = delivery.missed.into();
    report["deliveryMs"] = serde_json::json!({"p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "max": ms(1.0)});
    if text {
        println!(
            "  subscribers    {}: {} changes reached them, {} of these as a later value; {} never did",
            delivery.subscribers,
            delivery.latencies.len(),
            delivery.superseded,
            delivery.missed
        );
        for (label, quantile) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0)] {
            println!("  delivery {label}   {:.2} ms (from a change's answer until a subscriber has it)", ms(quantile));
        }
    }
    if let Some((before, after)) = delivery.server_rss_kib {
        let per_subscriber = after.saturating_sub(before) as f64 / delivery.subscribers.max(1) as f64;
        report["serverRssKiB"] = serde_json::json!({"before": before, "after": after, "perSubscriber": per_subscriber});
        if text {
            println!(
                "  server memory  {:.1} MiB before the subscribers, {:.1} MiB with them: {per_subscriber:.1} KiB each",
                before as f64 / 1024.0,
                after as f64 / 1024.0
            );
        }
    }
}

/// `args.concurrency` clients sending changes as fast as they are answered.
async fn send_load(
    http: &reqwest::Client,
    base: &str,
    counter: &CounterName,
    run_id: &str,
    args: &BenchArgs,
) -> ClientReport {
    let started = Instant::now();
    let progress = ProgressBar::new(args.requests as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} changes, {per_sec}, {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (http, next, progress) = (http.clone(), Arc::clone(&next), progress.clone());
            let urls = [format!("{base}/counters/{counter}/increment"), format!("{base}/counters/{counter}/decrement")];
            let (requests, mix) = (args.requests, args.mix);
            let until = args.duration.map(|seconds| started + Duration::from_secs_f64(seconds));
            let run_id = run_id.to_owned();
            tokio::spawn(async move {
                let mut report = ClientReport::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests || until.is_some_and(|until| Instant::now() >= until) {
                        return report;
                    }
                    let url = &urls[usize::from(fastrand::f64() < mix)];
                    let key = format!("bench-{run_id}-{i}");
                    let sent = Instant::now();
                    let answer = send_until_answered(&http, url, &key).await;
                    match answer {
                        Ok(response) if response.status().is_success() => {
                            report.latencies.push(sent.elapsed());
                            let body = response.json::<serde_json::Value>().await.ok();
                            match body.and_then(|body| Acknowledged::from_answer(key, &body)) {
                                Some(change) => report.acknowledged.push(change),
                                None => report.failures += 1,
                            }
                        }
                        Ok(response) if response.status() == reqwest::StatusCode::CONFLICT => {
                            report.latencies.push(sent.elapsed());
                            report.refused += 1;
                        }
                        _ => report.failures += 1,
                    }
                    progress.inc(1);
                }
            })
        })
        .collect();
    let mut all = ClientReport::default();
    for worker in workers {
        if let Ok(report) = worker.await {
            all.latencies.extend(report.latencies);
            all.acknowledged.extend(report.acknowledged);
            all.refused += report.refused;
            all.failures += report.failures;
        }
    }
    progress.finish_and_clear();
    all
}

/// A counter's value and `seq`.
#[derive(Debug, Clone, Copy)]
struct State {
    value: u64,
    seq: u64,
}

/// One history record: `seq`, delta, value after, request id.
type Record = (u64, i64, u64, String);

/// The history after `before` is `seq`s `before.seq + 1 ..= after.seq` with no gap, each value the running sum of
/// the deltas (never below 0), and every acknowledged change in it with its `seq`, delta and value.
fn check_exact(
    before: State,
    after: State,
    history: &[Record],
    acknowledged: &[Acknowledged],
) -> Result<(), BenchError> {
    let fail = |what: String| Err(BenchError::NotExact(what));
    let expected = after.seq.saturating_sub(before.seq) as usize;
    if history.len() != expected {
        return fail(format!("{} records after seq {}, but the seq went to {}", history.len(), before.seq, after.seq));
    }
    let mut value = before.value;
    let mut by_request = std::collections::HashMap::with_capacity(history.len());
    for (index, (seq, delta, after_change, request_id)) in history.iter().enumerate() {
        if *seq != before.seq + 1 + index as u64 {
            return fail(format!("record {} has seq {seq}", index + 1));
        }
        value = match value.checked_add_signed(*delta) {
            Some(next) if next == *after_change => next,
            _ => return fail(format!("seq {seq}: {value} {delta:+} is not {after_change} (or is below 0)")),
        };
        by_request.insert(request_id.as_str(), (*seq, *delta, *after_change));
    }
    if value != after.value {
        return fail(format!("the deltas sum to {value}, but the counter reads {}", after.value));
    }
    for change in acknowledged {
        if by_request.get(change.request_id.as_str()) != Some(&(change.seq, change.delta, change.value)) {
            return fail(format!(
                "acknowledged change {} (seq {}) is not in the history as answered",
                change.request_id, change.seq
            ));
        }
    }
    Ok(())
}

/// Why a read of the server's state failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the request failed")]
    Http(#[source] reqwest::Error),
    #[error("the answer is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("the answer has no value and seq: {0}")]
    NoState(serde_json::Value),
}

/// A JSON answer to a GET, which a network failure, a 429 or a 5xx do not end: the read is tried again.
async fn get_json(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, BenchError> {
    let failure = |source: ReadFailure| BenchError::Read { url: url.to_owned(), source };
    let mut backoff = retry_backoff();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let answer = match http.get(url).send().await {
            Ok(response) if response.status() == 429 || response.status().is_server_error() => {
                Err(ReadFailure::Status(response.status()))
            }
            Ok(response) => response.bytes().await.map_err(ReadFailure::Http),
            Err(error) => Err(ReadFailure::Http(error)),
        };
        match answer {
            Ok(body) => return serde_json::from_slice(&body).map_err(|error| failure(ReadFailure::NotJson(error))),
            Err(error) if attempt >= ATTEMPTS => return Err(failure(error)),
            Err(_) => tokio::time::sleep(backoff.next_delay()).await,
        }
    }
}

/// The pauses between a client's attempts when it is told "not now" without a `Retry-After`.
fn retry_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_millis(1600))
}

async fn read_state(http: &reqwest::Client, base: &str, counter: &CounterName) -> Result<State, BenchError> {
    let url = format!("{base}/counters/{counter}");
    let body = get_json(http, &url).await?;
    match (body["value"].as_u64(), body["seq"].as_u64()) {
        (Some(value), Some(seq)) => Ok(State { value, seq }),
        _ => Err(BenchError::Read { url, source: ReadFailure::NoState(body) }),
    }
}

/// The records with `seq`s after `after`, up to `upto`, oldest first (changes from other clients may go on meanwhile).
async fn read_history(
    http: &reqwest::Client,
    base: &str,
    counter: &CounterName,
    after: u64,
    upto: u64,
) -> Result<Vec<Record>, BenchError> {
    let mut records = Vec::new();
    if upto <= after {
        return Ok(records);
    }
    let mut url = format!("{base}/counters/{counter}/history?limit=100&before={}", upto + 1);
    'pages: loop {
        let page = get_json(http, &url).await?;
        for item in page["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let seq = item["seq"].as_u64().unwrap_or_default();
            if seq <= after {
                break 'pages;
            }
            let delta = item["delta"].as_i64().unwrap_or_default();
            let value = item["value"].as_u64().unwrap_or_default();
            records.push((seq, delta, value, item["requestId"].as_str().unwrap_or_default().to_owned()));
        }
        match page["next"].as_u64() {
            Some(next) if next > after => url = format!("{base}/counters/{counter}/history?limit=100&before={next}"),
            _ => break,
        }
    }
    records.reverse();
    Ok(records)
}

fn percentile(sorted: &[Duration], quantile: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * quantile).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A short id that keeps this run's keys apart from earlier runs' against the same server.
fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos())
}

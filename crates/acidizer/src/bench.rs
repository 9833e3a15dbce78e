//! `acidizer bench`: concurrent increments with fresh idempotency keys, timed one by one; then the checks that
//! every acknowledged increment counted exactly once.

use crate::cli::BenchArgs;
use acidizer_core::domain::InvalidCounterName;
use acidizer_core::http::{AllowedOrigins, router};
use acidizer_core::{CounterName, Counters};
use acidizer_store_sqlite::{OpenError, SqliteStore};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Counter(#[from] InvalidCounterName),
    #[error(transparent)]
    Store(#[from] OpenError),
    #[error("cannot start the in-process server: {0}")]
    Server(std::io::Error),
    #[error("cannot read {url}: {detail}")]
    Read { url: String, detail: String },
    #[error("{lost} acknowledged increments are missing from the counter")]
    Lost { lost: u64 },
}

/// The in-process server of a run without `--url`.
struct Local {
    base: String,
    counters: Counters<SqliteStore>,
    _dir: tempfile::TempDir,
}

impl Local {
    async fn start() -> Result<Local, BenchError> {
        let dir = tempfile::tempdir().map_err(BenchError::Server)?;
        let counters = Counters::new(SqliteStore::open(dir.path())?);
        let app = router(counters.clone(), &AllowedOrigins::None);
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
        .build()
        .map_err(|error| BenchError::Read { url: base.clone(), detail: error.to_string() })?;
    let before = read_value(&http, &base, &counter).await?;

    let progress = ProgressBar::new(args.requests as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} increments, {per_sec}, {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let run_id = uuid_like();
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (http, next, progress) = (http.clone(), Arc::clone(&next), progress.clone());
            let url = format!("{base}/counters/{counter}/increment");
            let requests = args.requests;
            let run_id = run_id.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return (latencies, failures);
                    }
                    let sent = Instant::now();
                    let answer = http.post(&url).header("Idempotency-Key", format!("bench-{run_id}-{i}")).send().await;
                    match answer {
                        Ok(response) if response.status().is_success() => latencies.push(sent.elapsed()),
                        _ => failures += 1,
                    }
                    progress.inc(1);
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(args.requests);
    let mut failures = 0;
    for worker in workers {
        if let Ok((worker_latencies, worker_failures)) = worker.await {
            latencies.extend(worker_latencies);
            failures += worker_failures;
        }
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let after = read_value(&http, &base, &counter).await?;

    latencies.sort_unstable();
    let acknowledged = latencies.len() as u64;
    println!("acidizer bench: {} increments of '{counter}' at {base}, {} clients", args.requests, args.concurrency);
    println!("  acknowledged   {acknowledged} ({failures} failed)");
    println!("  elapsed        {:.2} s", elapsed.as_secs_f64());
    println!("  throughput     {:.0} increments/s", acknowledged as f64 / elapsed.as_secs_f64());
    for (label, quantile) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0)] {
        println!("  latency {label}    {:.2} ms", percentile(&latencies, quantile).as_secs_f64() * 1000.0);
    }
    if let Some(local) = &local {
        let commits = local.counters.store().commits();
        println!(
            "  group commits  {commits} ({:.1} increments per fsync)",
            acknowledged as f64 / commits.max(1) as f64
        );
        if let Some(peak) = peak_rss_kib() {
            println!("  peak memory    {:.1} MiB (client and server in one process)", peak as f64 / 1024.0);
        }
    }
    let counted = after.saturating_sub(before);
    println!("  counted        {counted} (the counter went from {before} to {after})");
    if counted < acknowledged {
        return Err(BenchError::Lost { lost: acknowledged - counted });
    }
    Ok(())
}

async fn read_value(http: &reqwest::Client, base: &str, counter: &CounterName) -> Result<u64, BenchError> {
    let url = format!("{base}/counters/{counter}");
    let failure = |detail: String| BenchError::Read { url: url.clone(), detail };
    let response = http.get(&url).send().await.map_err(|error| failure(error.to_string()))?;
    let body = response.bytes().await.map_err(|error| failure(error.to_string()))?;
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|error| failure(error.to_string()))?;
    value["value"].as_u64().ok_or_else(|| failure(format!("no value in {value}")))
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

//! `acidizer-stream` at scale, run as Lambda runs it (BENCHMARKS.md, "Live updates at scale"): SUBSCRIBERS
//! subscribers of one counter in the connections table of a DynamoDB Local, a Management API stand-in that takes
//! RATE posts a second of POST_MS each (429 past it), and in front of the function a stand-in for the event source
//! mapping — the counter table's stream read in order, batches of at most 100 records (1 s window), one invocation
//! at a time, the records of a reported failure sent again. Either one change is broadcast, or (HOT_RATE
//! HOT_SECONDS) changes are committed at HOT_RATE a second for HOT_SECONDS while the broadcasts run. It reports
//! when each subscriber got what, how stale each subscriber's view got, the posts throttled, and the function's
//! peak memory and CPU; it fails if a subscriber does not end on the counter's final state, or sees a state twice
//! or out of order.
//!
//! Usage: `broadcast-bench BOOTSTRAP SUBSCRIBERS POST_MS RATE [HOT_RATE HOT_SECONDS]`, on a DynamoDB Local of its
//! own (or the one at `AWS_ENDPOINT_URL`); `MAX_POSTS_IN_FLIGHT` is passed on to the function if set.

use acidizer_core::live::ConnectionStore;
use acidizer_core::{ChangeCommand, ChangeOutcome, ConnectionId, CounterMax, CounterName, CounterStore};
use acidizer_core::{Delta, RequestId, Timestamp};
use acidizer_store_dynamodb::{DynamoConnections, DynamoStore, create_missing_tables};
use acidizer_tests::dynamodb_local;
use acidizer_tests::lambda::Gateway;
use acidizer_tests::management_api::ManagementApi;
use acidizer_tests::stream_records::{self, StreamReader};
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The event source mapping's batch size and window (infra/template.yaml).
const BATCH_SIZE: usize = 100;
const BATCH_WINDOW: Duration = Duration::from_secs(1);
/// The function's timeout (infra/template.yaml).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);

struct Args {
    bootstrap: PathBuf,
    subscribers: usize,
    post: Duration,
    rate: f64,
    hot: Option<(f64, Duration)>,
}

fn args() -> Args {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> f64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
            eprintln!("usage: broadcast-bench BOOTSTRAP SUBSCRIBERS POST_MS RATE [HOT_RATE HOT_SECONDS]");
            std::process::exit(2)
        })
    };
    Args {
        bootstrap: PathBuf::from(args.first().cloned().unwrap_or_default()),
        subscribers: number(1) as usize,
        post: Duration::from_secs_f64(number(2) / 1000.0),
        rate: number(3),
        hot: (args.len() > 4).then(|| (number(4), Duration::from_secs_f64(number(5)))),
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) => endpoint,
        Err(_) => {
            tokio::task::spawn_blocking(|| dynamodb_local::shared().endpoint.clone()).await.expect("DynamoDB Local")
        }
    };
    let dynamodb = dynamodb_local::client(&endpoint);
    let suffix = uuid::Uuid::new_v4().simple();
    let (counter_table, connections_table) = (format!("counters-{suffix}"), format!("connections-{suffix}"));
    create_missing_tables(&dynamodb, &counter_table, Some(&connections_table)).await.expect("the tables");
    let management = ManagementApi::start_limited(args.rate, args.post).await;

    let started = Instant::now();
    let connections = DynamoConnections::new(dynamodb.clone(), connections_table.clone());
    let counter = CounterName::parse("popular").expect("a name");
    let ids: Vec<String> = (0..args.subscribers).map(|i| format!("conn-{i:07}=")).collect();
    futures::stream::iter(&ids)
        .for_each_concurrent(64, |id| {
            let (connections, counter) = (&connections, &counter);
            async move {
                let id = ConnectionId::parse(id).expect("an id");
                connections.subscribe(&id, counter).await.expect("a subscription");
            }
        })
        .await;
    println!("{} subscribers in the table in {:.1} s", args.subscribers, started.elapsed().as_secs_f64());

    let mut env = dynamodb_local::aws_env(&endpoint);
    env.push(("COUNTER_TABLE", counter_table.clone()));
    env.push(("CONNECTIONS_TABLE", connections_table.clone()));
    env.push(("WEBSOCKET_ENDPOINT", management.endpoint.clone()));
    if let Ok(width) = std::env::var("MAX_POSTS_IN_FLIGHT") {
        env.push(("MAX_POSTS_IN_FLIGHT", width));
    }
    let function = Gateway::start_with_timeout(&args.bootstrap, &env, 1, FUNCTION_TIMEOUT).await;

    // The changes, and when each committed.
    let store = Arc::new(DynamoStore::new(dynamodb.clone(), counter_table.clone()));
    let committed: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let writer = {
        let (store, committed, counter) = (Arc::clone(&store), Arc::clone(&committed), counter.clone());
        let (rate, seconds) = args.hot.unwrap_or((1.0, Duration::ZERO));
        tokio::spawn(async move { commit(store, counter, rate, seconds, committed).await })
    };

    // The event source mapping, until the writer is done and a batch finds every subscriber on the final state.
    let mut stream = StreamReader::open(&endpoint, &dynamodb, &counter_table).await;
    let mut waiting: Vec<Value> = Vec::new();
    let (mut invocations, mut retried, mut failed_batches) = (0, 0, 0);
    let broadcast_started = Instant::now();
    let deadline = broadcast_started + args.hot.map_or(Duration::ZERO, |(_, s)| s) + Duration::from_secs(600);
    loop {
        // Once the writer is done and a read after it finds nothing more, every change has been handed over.
        let writer_done = writer.is_finished();
        let window_ends = Instant::now() + BATCH_WINDOW;
        while waiting.len() < BATCH_SIZE && Instant::now() < window_ends {
            waiting.extend(stream.read().await);
            if waiting.len() < BATCH_SIZE {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if waiting.is_empty() {
            if writer_done {
                break;
            }
            continue;
        }
        let mut batch: Vec<Value> = waiting.drain(..waiting.len().min(BATCH_SIZE)).collect();
        // Sent again from the first failed record while reported, at most six times (MaximumRetryAttempts 5).
        for attempt in 0..6 {
            invocations += 1;
            retried += usize::from(attempt > 0);
            let answer = function.invoke(stream_records::event(&batch)).await.expect("the function answers");
            let failed: Vec<&Value> = answer["batchItemFailures"]
                .as_array()
                .map(|f| f.iter().map(|f| &f["itemIdentifier"]).collect())
                .unwrap_or_default();
            let Some(first) = failed.first() else { break };
            let from = batch.iter().position(|r| &r["dynamodb"]["SequenceNumber"] == *first).unwrap_or(0);
            batch.drain(..from);
            if attempt == 5 {
                failed_batches += 1;
            }
        }
        assert!(Instant::now() < deadline, "the broadcasts end");
    }
    let broadcast_took = broadcast_started.elapsed();
    writer.await.expect("the writer");

    let committed = committed.lock().expect("the commits").clone();
    let (&final_seq, &final_at) = committed.last_key_value().expect("a change committed");
    let delivered = management.all_delivered();
    let mut on_final = 0;
    // Subscribers that got a state twice, or an older one after a newer.
    let mut repeated = 0;
    let mut last_arrival = final_at;
    let mut stale_views: Vec<f64> = Vec::new();
    let mut messages: Vec<usize> = Vec::new();
    for id in &ids {
        let got = delivered.get(id).cloned().unwrap_or_default();
        let seqs: Vec<u64> = got.iter().map(|(m, _)| m["seq"].as_u64().unwrap_or(0)).collect();
        if !seqs.windows(2).all(|w| w[0] < w[1]) {
            repeated += 1;
        }
        if seqs.last() == Some(&final_seq) {
            on_final += 1;
        }
        if let Some((_, at)) = got.last() {
            last_arrival = last_arrival.max(*at);
        }
        // How stale the view got: before each message, the oldest change the subscriber had not seen yet was
        // committed this long ago.
        let mut held = 0;
        let mut worst = Duration::ZERO;
        for (seq, (_, at)) in seqs.iter().zip(&got) {
            if let Some(missed) = committed.range(held + 1..).next().map(|(_, at)| *at) {
                worst = worst.max(at.saturating_duration_since(missed));
            }
            held = *seq;
        }
        stale_views.push(worst.as_secs_f64());
        messages.push(got.len());
    }
    let posts: usize = messages.iter().sum();
    let first_commit = committed.first_key_value().map_or(final_at, |(_, at)| *at);
    let while_changing = delivered.values().flatten().filter(|(_, at)| *at >= first_commit && *at <= final_at).count();
    let changing_for = final_at.saturating_duration_since(first_commit).as_secs_f64();
    let throttled = management.throttled();
    let (_, most_in_flight) = management.most_in_flight();
    stale_views.sort_by(f64::total_cmp);
    messages.sort_unstable();
    let peak_kib = function.pids().iter().map(|pid| peak_memory_kib(*pid)).max().unwrap_or(0);
    let cpu_seconds: f64 = function.pids().iter().map(|pid| cpu_seconds(*pid)).sum();
    let quantile = |values: &[f64], q: f64| values[((values.len() - 1) as f64 * q).round() as usize];

    println!(
        "changes committed: {} ({:.0}/s); final seq {final_seq}",
        committed.len(),
        committed.len() as f64 / args.hot.map_or(1.0, |(_, s)| s.as_secs_f64().max(1.0))
    );
    println!(
        "every subscriber on the final state: {on_final} of {}; the last {:.2} s after the final commit \
         ({:.2} s = subscribers ÷ rate)",
        ids.len(),
        last_arrival.saturating_duration_since(final_at).as_secs_f64(),
        ids.len() as f64 / args.rate
    );
    println!(
        "posts: {posts} delivered, {throttled} throttled ({:.1} %), at most {most_in_flight} in flight",
        100.0 * throttled as f64 / (posts + throttled).max(1) as f64
    );
    if changing_for > 0.0 {
        println!(
            "while the counter changed ({changing_for:.1} s): {while_changing} posts delivered, {:.0} a second",
            while_changing as f64 / changing_for
        );
    }
    println!(
        "messages per subscriber: min {} median {} max {}",
        messages[0],
        messages[messages.len() / 2],
        messages[messages.len() - 1]
    );
    println!(
        "stalest view per subscriber (s): p50 {:.2} p99 {:.2} max {:.2}",
        quantile(&stale_views, 0.5),
        quantile(&stale_views, 0.99),
        quantile(&stale_views, 1.0)
    );
    println!(
        "invocations: {invocations} ({retried} retries, {failed_batches} batches out of retries); broadcasting took \
         {:.1} s; function peak memory {:.1} MiB, CPU {cpu_seconds:.1} s ({:.0} µs a post)",
        broadcast_took.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        cpu_seconds * 1e6 / (posts + throttled).max(1) as f64
    );
    println!("subscribers that got a state twice or out of order: {repeated}");
    if on_final != ids.len() || repeated > 0 {
        eprintln!("FAILED: {} subscribers did not end on the final state", ids.len() - on_final);
        std::process::exit(1);
    }
}

/// Commits increments of `counter`, `rate` a second for `seconds` (one change when `seconds` is zero), and notes
/// when each `seq` committed.
async fn commit(
    store: Arc<DynamoStore>,
    counter: CounterName,
    rate: f64,
    seconds: Duration,
    committed: Arc<Mutex<BTreeMap<u64, Instant>>>,
) {
    let change = |store: Arc<DynamoStore>, counter: CounterName, committed: Arc<Mutex<BTreeMap<u64, Instant>>>| async move {
        let command = ChangeCommand {
            counter,
            delta: Delta::Increment,
            request_id: RequestId::generate(),
            max: CounterMax::DEFAULT,
            at: Timestamp::now(),
            deadline: Instant::now() + Duration::from_secs(10),
        };
        if let Ok(ChangeOutcome::Committed { seq, .. }) = store.change(command).await {
            committed.lock().expect("the commits").insert(seq, Instant::now());
        }
    };
    if seconds.is_zero() {
        change(store, counter, committed).await;
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ends = Instant::now() + seconds;
    let mut changes = tokio::task::JoinSet::new();
    while Instant::now() < ends {
        tick.tick().await;
        changes.spawn(change(Arc::clone(&store), counter.clone(), Arc::clone(&committed)));
    }
    while changes.join_next().await.is_some() {}
}

/// A process's peak resident memory (`VmHWM`), in KiB.
fn peak_memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A process's CPU time so far (user and system), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are the 14th and 15th of the line.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<f64>().ok()).sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second.max(1.0)
}

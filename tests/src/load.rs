//! Concurrent increments with repeated keys, and the checks of the "exact" and "idempotent" promises.

use crate::App;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One acknowledged increment: the answer's body and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    pub value: u64,
    pub body: bytes::Bytes,
}

/// What a load run saw: the first answer for every key, and the replays.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub first: HashMap<String, Acknowledged>,
    pub replays: Vec<(String, bytes::Bytes)>,
    pub retried_503: usize,
}

/// POSTs one change (`operation`: increment or decrement) with `key`, retrying 429s and 503s with the same key
/// (which the contract makes safe) after checking that each carries `Retry-After`. Returns the status, whether it
/// was a replay, the body, and the retries.
pub async fn change_with_retries(
    app: &App,
    counter: &str,
    operation: &str,
    key: &str,
) -> (u16, bool, bytes::Bytes, usize) {
    let mut retries = 0;
    loop {
        let response = app.change(Some(counter), operation, Some(key)).await;
        let status = response.status().as_u16();
        if (status == 503 || status == 429) && retries < 40 {
            assert!(response.headers().contains_key("retry-after"), "a {status} says when to retry");
            retries += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        return (status, replayed, response.bytes().await.unwrap_or_default(), retries);
    }
}

/// `tasks` concurrent clients, each sending `per_task` increments to `counter`; one in ten repeats a key the
/// same client was already answered for. Asserts every answer on the way.
pub async fn run(app: &App, counter: &str, tasks: usize, per_task: usize) -> LoadReport {
    run_keyed(app, counter, "", tasks, per_task).await
}

/// [`run`], with every key starting with `prefix` (loads on several hosts of one counter need keys of their own).
pub async fn run_keyed(app: &App, counter: &str, prefix: &str, tasks: usize, per_task: usize) -> LoadReport {
    let mut handles = Vec::new();
    for task in 0..tasks {
        let app_base = app.base.clone();
        let http = app.http.clone();
        let (counter, prefix) = (counter.to_owned(), prefix.to_owned());
        let target = app.target;
        handles.push(tokio::spawn(async move {
            let app = App::detached(app_base, target, http);
            let mut seen: Vec<(String, Acknowledged)> = Vec::new();
            let mut replays = Vec::new();
            let mut retried = 0;
            for i in 0..per_task {
                let repeat = i % 10 == 9 && !seen.is_empty();
                let key = if repeat { seen[(i * 7) % seen.len()].0.clone() } else { format!("{prefix}t{task}-r{i}") };
                let (status, replayed, body, retries) = change_with_retries(&app, &counter, "increment", &key).await;
                retried += retries;
                assert_eq!(status, 200, "increment {key}: {}", String::from_utf8_lossy(&body));
                // A retried 503 may find its first try committed after all: then the retry is a replay.
                assert!(replayed == repeat || (replayed && retries > 0), "{key}: replayed only for a used key");
                if repeat {
                    replays.push((key, body));
                } else {
                    let parsed: Value = serde_json::from_slice(&body).expect("a JSON answer");
                    assert_eq!(parsed["requestId"], key.as_str());
                    let value = parsed["value"].as_u64().expect("a value");
                    seen.push((key, Acknowledged { value, body }));
                }
            }
            (seen, replays, retried)
        }));
    }
    let mut report = LoadReport::default();
    for handle in handles {
        let (seen, replays, retried) = handle.await.expect("a load task");
        report.first.extend(seen);
        report.replays.extend(replays);
        report.retried_503 += retried;
    }
    report
}

/// Pages through a counter's whole history, newest first.
pub async fn full_history(app: &App, counter: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut path = format!("/counters/{counter}/history?limit=100");
    loop {
        let page = app.get_json(&path).await;
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next"].as_u64() {
            Some(next) => path = format!("/counters/{counter}/history?limit=100&before={next}"),
            None => return items,
        }
    }
}

/// The increments acknowledged so far by [`until_stopped`]: each one's key and value, in the order answered.
pub type Acked = Arc<Mutex<Vec<(String, u64)>>>;

/// How long one request of a [`client`] may take: one to a server that is gone ends with an error even if nothing
/// tells the client the connection is dead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client whose every request ends within [`REQUEST_TIMEOUT`]: for loads on a server that may be killed,
/// and for reading what survived.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("an HTTP client")
}

/// `clients` clients increment `counter` at `base` with fresh keys until the server stops answering; every 200 is
/// recorded. Each client stops at its first request that fails; [`stopped`] waits for them all.
pub fn until_stopped(base: &str, counter: &str, clients: usize) -> (Acked, Vec<tokio::task::JoinHandle<()>>) {
    let acked: Acked = Arc::default();
    let http = client();
    let handles = (0..clients)
        .map(|client| {
            let (acked, http, url) = (Arc::clone(&acked), http.clone(), format!("{base}/counters/{counter}/increment"));
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("c{client}-{i}");
                    let Ok(response) = http.post(&url).header("Idempotency-Key", &key).send().await else { return };
                    if response.status() != 200 {
                        return;
                    }
                    let Ok(body) = response.json::<Value>().await else { return };
                    let value = body["value"].as_u64().expect("an acknowledged increment has a value");
                    acked.lock().unwrap().push((key, value));
                }
            })
        })
        .collect();
    (acked, handles)
}

/// Waits until every client of [`until_stopped`] has stopped, once its server is gone (at most 30 s in all).
pub async fn stopped(clients: Vec<tokio::task::JoinHandle<()>>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for client in clients {
        tokio::time::timeout_at(deadline, client)
            .await
            .expect("the load's clients stop within 30 s of their server's end")
            .expect("a load client");
    }
}

/// Waits until at least `at_least` increments are acknowledged (at most 60 s).
pub async fn wait_for_acks(acked: &Acked, at_least: usize) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while acked.lock().unwrap().len() < at_least {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the load gets going");
}

/// What a counter holds of the increments acknowledged on it.
#[derive(Debug)]
pub struct Survivors {
    /// The counter's `seq`: its history is 1..n.
    pub n: u64,
    /// The acknowledged increments that are not in the history under their value with their key.
    pub missing: Vec<(String, u64)>,
}

/// Reads `counter`'s history, asserting it is gap-free 1..N with value = seq (increments only) and the counter at
/// N, and tells which of the `acked` increments it lacks.
pub async fn survivors(app: &App, counter: &str, acked: &[(String, u64)]) -> Survivors {
    let history = full_history(app, counter).await;
    let n = history.len() as u64;
    assert_eq!(app.get_json(&format!("/counters/{counter}")).await["value"], n);
    let by_value: BTreeMap<u64, String> = history
        .iter()
        .map(|item| {
            let value = item["value"].as_u64().expect("a value");
            assert_eq!(item["seq"], value, "with increments only, value = seq");
            (value, item["requestId"].as_str().expect("a request id").to_owned())
        })
        .collect();
    assert_eq!(by_value.keys().copied().collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>(), "gap-free 1..N");
    let missing = acked.iter().filter(|(key, value)| by_value.get(value) != Some(key)).cloned().collect();
    Survivors { n, missing }
}

/// Every acknowledged increment is in `counter`'s history under its value and key, the history is exactly 1..N,
/// and a retry of an acknowledged key still replays its value.
pub async fn assert_all_acknowledged_survive(app: &App, counter: &str, acked: &[(String, u64)]) {
    let survivors = survivors(app, counter, acked).await;
    assert!(
        survivors.missing.is_empty(),
        "{} of {} acknowledged increments are lost (the counter is at {}), e.g. {:?}",
        survivors.missing.len(),
        acked.len(),
        survivors.n,
        &survivors.missing[..survivors.missing.len().min(5)]
    );
    let (key, value) = &acked[acked.len() / 2];
    let replay = app.increment(Some(counter), Some(key)).await;
    assert_eq!(replay.headers().get("idempotent-replayed").expect("a replay says so"), "true");
    assert_eq!(replay.json::<Value>().await.expect("a JSON answer")["value"], *value);
}

/// The "exact" and "idempotent" promises after a load: values 1..N with no duplicate, the counter at N, the
/// history holding exactly N records each with the request id that produced it, every replay byte-identical.
pub async fn assert_exact(app: &App, counter: &str, report: &LoadReport) {
    let n = report.first.len() as u64;
    let by_value: BTreeMap<u64, &String> = report.first.iter().map(|(key, ack)| (ack.value, key)).collect();
    assert_eq!(by_value.len() as u64, n, "no two increments got the same value");
    assert_eq!(by_value.keys().copied().collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>(), "values are 1..N");
    for (key, body) in &report.replays {
        assert_eq!(body, &report.first[key].body, "replay of {key} is byte-identical");
    }
    assert_eq!(app.get_json(&format!("/counters/{counter}")).await["value"], n);
    let history = full_history(app, counter).await;
    assert_eq!(history.len() as u64, n, "history holds exactly N records");
    for (index, item) in history.iter().enumerate() {
        let value = n - index as u64;
        assert_eq!(item["value"], value, "newest first, gap-free");
        assert_eq!(item["requestId"], by_value[&value].as_str(), "record {value} names its request");
    }
}

/// One acknowledged change of a mixed load.
#[derive(Debug, Clone)]
pub struct Change {
    pub operation: &'static str,
    pub seq: u64,
    pub delta: i64,
    pub value: u64,
    pub body: bytes::Bytes,
}

/// What a mixed load saw: the first answer for every key, the replays, and the changes refused at a bound.
#[derive(Debug, Default)]
pub struct MixedReport {
    pub first: HashMap<String, Change>,
    pub replays: Vec<(String, bytes::Bytes)>,
    pub refused: usize,
}

/// `tasks` concurrent clients, each sending `per_task` increments or decrements to `counter`; one in ten repeats a
/// key (and its operation) the same client was already answered for. Every final answer is 200 or 409 (429 and 503
/// are retried with the same key, after checking their `Retry-After`).
///
/// Of each client's new keys, 11 in 20 are decrements (D D I D I …), and every prefix of them holds more
/// decrements than increments. So, however the clients interleave, more decrements are sent than increments: with
/// no increment refused (the counter stays far below its ceiling) some decrements must meet the floor. And a
/// client's decrement after its own acknowledged increment (its 4th new key) finds the counter above 0 unless
/// another decrement committed first: some decrements commit.
pub async fn run_mixed(app: &App, counter: &str, tasks: usize, per_task: usize) -> MixedReport {
    assert!(per_task >= 4, "a client sends a decrement after an increment of its own");
    let mut handles = Vec::new();
    for task in 0..tasks {
        let app = App::detached(app.base.clone(), app.target, app.http.clone());
        let counter = counter.to_owned();
        handles.push(tokio::spawn(async move {
            let mut report = MixedReport::default();
            let mut seen: Vec<String> = Vec::new();
            let mut fresh = 0;
            for i in 0..per_task {
                let repeat = i % 10 == 9 && !seen.is_empty();
                let (key, operation) = if repeat {
                    let key = seen[(i * 7) % seen.len()].clone();
                    let operation = report.first[&key].operation;
                    (key, operation)
                } else {
                    fresh += 1;
                    (
                        format!("x{task}-r{i}"),
                        if decrements_in(fresh) > decrements_in(fresh - 1) { "decrement" } else { "increment" },
                    )
                };
                let (status, replayed, body, _) = change_with_retries(&app, &counter, operation, &key).await;
                match status {
                    409 => {
                        assert!(!repeat, "{key}: a replay is never refused");
                        report.refused += 1;
                    }
                    200 if repeat => {
                        assert!(replayed, "{key}: a used key replays");
                        report.replays.push((key, body));
                    }
                    200 => {
                        let parsed: Value = serde_json::from_slice(&body).expect("a JSON answer");
                        assert_eq!(parsed["requestId"], key.as_str());
                        let change = Change {
                            operation,
                            seq: parsed["seq"].as_u64().expect("a seq"),
                            delta: parsed["delta"].as_i64().expect("a delta"),
                            value: parsed["value"].as_u64().expect("a value"),
                            body,
                        };
                        report.first.insert(key.clone(), change);
                        seen.push(key);
                    }
                    other => panic!("{operation} {key}: {other} {}", String::from_utf8_lossy(&body)),
                }
            }
            report
        }));
    }
    let mut report = MixedReport::default();
    for handle in handles {
        let part = handle.await.expect("a load task");
        report.first.extend(part.first);
        report.replays.extend(part.replays);
        report.refused += part.refused;
    }
    report
}

/// How many of a client's first `n` new keys are decrements: 11 in 20, rounded up, so always more than half.
fn decrements_in(n: usize) -> usize {
    (11 * n).div_ceil(20)
}

/// The promises after a mixed load from 0: `seq`s 1..N for the N acknowledged changes, each record's value the
/// running sum of the deltas and never below 0, each acknowledged change in the history as answered, every replay
/// byte-identical.
pub async fn assert_exact_mixed(app: &App, counter: &str, report: &MixedReport) {
    let n = report.first.len() as u64;
    let read = app.get_json(&format!("/counters/{counter}")).await;
    assert_eq!(read["seq"], n, "one seq per acknowledged change");
    let mut history = full_history(app, counter).await;
    history.reverse();
    let seqs: Vec<u64> = history.iter().map(|item| item["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "seqs 1..N with no gap");
    let mut value = 0u64;
    let mut by_key = HashMap::new();
    for item in &history {
        value = value.checked_add_signed(item["delta"].as_i64().unwrap()).expect("never below 0");
        assert_eq!(item["value"], value, "record {} holds the running sum", item["seq"]);
        by_key.insert(item["requestId"].as_str().unwrap().to_owned(), item.clone());
    }
    assert_eq!(read["value"], value);
    for (key, change) in &report.first {
        let item = &by_key[key];
        assert_eq!(
            (&item["seq"], &item["delta"], &item["value"]),
            (&change.seq.into(), &change.delta.into(), &change.value.into())
        );
    }
    for (key, body) in &report.replays {
        assert_eq!(body, &report.first[key].body, "replay of {key} is byte-identical");
    }
}

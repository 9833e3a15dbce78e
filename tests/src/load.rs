//! Concurrent increments with repeated keys, and the checks of the "exact" and "idempotent" promises.

use crate::App;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
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

/// POSTs one increment with `key`, retrying 429s and 503s with the same key (which the contract makes safe) after
/// checking that each carries `Retry-After`. Returns the status, whether it was a replay, the body, and the retries.
pub async fn increment_with_retries(app: &App, counter: &str, key: &str) -> (u16, bool, bytes::Bytes, usize) {
    let mut retries = 0;
    loop {
        let response = app.increment(Some(counter), Some(key)).await;
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
    let mut handles = Vec::new();
    for task in 0..tasks {
        let app_base = app.base.clone();
        let http = app.http.clone();
        let counter = counter.to_owned();
        let target = app.target;
        handles.push(tokio::spawn(async move {
            let app = App::detached(app_base, target, http);
            let mut seen: Vec<(String, Acknowledged)> = Vec::new();
            let mut replays = Vec::new();
            let mut retried = 0;
            for i in 0..per_task {
                let repeat = i % 10 == 9 && !seen.is_empty();
                let key = if repeat { seen[(i * 7) % seen.len()].0.clone() } else { format!("t{task}-r{i}") };
                let (status, replayed, body, retries) = increment_with_retries(&app, &counter, &key).await;
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

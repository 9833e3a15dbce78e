//! The `CounterStore` contract, one generic suite: every store (SQLite, DynamoDB on DynamoDB Local) runs the same
//! functions, through the port alone.

use acidizer_core::{
    CounterName, CounterStore, HistoryLimit, HistoryQuery, IncrementCommand, IncrementOutcome, RequestId, StoreError,
    Timestamp,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn command(counter: &str, key: &str, deadline: Instant) -> IncrementCommand {
    IncrementCommand {
        counter: CounterName::parse(counter).expect("a valid counter name"),
        request_id: RequestId::parse(key).expect("a valid key"),
        at: Timestamp::now(),
        deadline,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

async fn value_of(store: &impl CounterStore, counter: &str) -> u64 {
    store.read(&CounterName::parse(counter).unwrap()).await.unwrap().value
}

pub async fn increments_commit_values_one_by_one(store: &impl CounterStore) {
    for expected in 1..=3 {
        match store.increment(command("steps", &format!("step-{expected}"), soon())).await.unwrap() {
            IncrementOutcome::Committed { value, body } => {
                assert_eq!(value, expected);
                assert!(body.contains(&format!("\"value\":{expected}")), "{body}");
            }
            other => panic!("a fresh key commits: {other:?}"),
        }
    }
    let history = store
        .history(
            &CounterName::parse("steps").unwrap(),
            HistoryQuery { before: None, limit: HistoryLimit::parse("10").unwrap() },
        )
        .await
        .unwrap();
    let values: Vec<u64> = history.iter().map(|record| record.value).collect();
    assert_eq!(values, [3, 2, 1]);
}

pub async fn a_known_request_id_replays_whatever_the_counter(store: &impl CounterStore) {
    let IncrementOutcome::Committed { body, .. } = store.increment(command("apples", "k-1", soon())).await.unwrap()
    else {
        panic!("a fresh key commits");
    };
    for counter in ["apples", "pears"] {
        let replay = store.increment(command(counter, "k-1", soon())).await.unwrap();
        assert_eq!(
            replay,
            IncrementOutcome::Replayed { counter: CounterName::parse("apples").unwrap(), body: body.clone() },
            "on {counter}"
        );
    }
    assert_eq!(value_of(store, "apples").await, 1);
    assert_eq!(value_of(store, "pears").await, 0, "a replay for another counter changes nothing");
}

pub async fn nothing_commits_after_the_deadline(store: &impl CounterStore) {
    let past = Instant::now().checked_sub(Duration::from_millis(1)).unwrap_or_else(Instant::now);
    let late = store.increment(command("late", "late-1", past)).await;
    assert!(matches!(late, Err(StoreError::Timeout | StoreError::Contention | StoreError::Overloaded)), "{late:?}");
    assert_eq!(value_of(store, "late").await, 0, "a late increment commits nothing");
    // The key was not used up: a retry within its deadline commits.
    let retried = store.increment(command("late", "late-1", soon())).await.unwrap();
    assert!(matches!(retried, IncrementOutcome::Committed { value: 1, .. }), "{retried:?}");
}

pub async fn one_request_id_sent_at_once_commits_once<S: CounterStore>(store: Arc<S>) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.increment(command("stampede", "same", soon())).await })
        })
        .collect();
    let mut committed = Vec::new();
    let mut replayed = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            IncrementOutcome::Committed { body, .. } => committed.push(body),
            IncrementOutcome::Replayed { body, .. } => replayed.push(body),
        }
    }
    assert_eq!(committed.len(), 1, "exactly one commit; the others replay it");
    assert!(replayed.iter().all(|body| *body == committed[0]), "every replay is the committed answer");
    assert_eq!(value_of(&*store, "stampede").await, 1);
}

pub async fn concurrent_increments_are_exact<S: CounterStore>(store: Arc<S>, tasks: usize, per_task: usize) {
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut values = Vec::new();
                for i in 0..per_task {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    match store.increment(command("busy", &format!("t{task}-{i}"), deadline)).await.unwrap() {
                        IncrementOutcome::Committed { value, .. } => values.push(value),
                        other => panic!("a fresh key commits: {other:?}"),
                    }
                }
                values
            })
        })
        .collect();
    let mut values = BTreeSet::new();
    for handle in handles {
        for value in handle.await.unwrap() {
            assert!(values.insert(value), "value {value} was given twice");
        }
    }
    let n = (tasks * per_task) as u64;
    assert_eq!(values, (1..=n).collect::<BTreeSet<_>>());
    assert_eq!(value_of(&*store, "busy").await, n);
}

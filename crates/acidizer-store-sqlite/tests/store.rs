//! The SQLite store on its own: group commit, deadlines, and data that outlives the store.

use acidizer_core::{
    CounterName, CounterStore, HistoryLimit, HistoryQuery, IncrementCommand, IncrementOutcome, RequestId, StoreError,
    Timestamp,
};
use acidizer_store_sqlite::SqliteStore;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn command(counter: &str, key: &str, deadline: Instant) -> IncrementCommand {
    IncrementCommand {
        counter: CounterName::parse(counter).unwrap(),
        request_id: RequestId::parse(key).unwrap(),
        at: Timestamp::now(),
        deadline,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_share_commits_and_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut values = Vec::new();
                for i in 0..50 {
                    match store.increment(command("shared", &format!("t{task}-{i}"), soon())).await.unwrap() {
                        IncrementOutcome::Committed { value, .. } => values.push(value),
                        other => panic!("a fresh key commits: {other:?}"),
                    }
                }
                values
            })
        })
        .collect();
    let mut values = BTreeSet::new();
    for task in tasks {
        for value in task.await.unwrap() {
            assert!(values.insert(value), "value {value} given twice");
        }
    }
    assert_eq!(values, (1..=1600).collect());
    assert!(store.commits() < 1600, "increments shared commits: {} commits for 1600", store.commits());
    let snapshot = store.read(&CounterName::parse("shared").unwrap()).await.unwrap();
    assert_eq!(snapshot.value, 1600);
}

#[tokio::test]
async fn an_increment_past_its_deadline_is_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let late = store.increment(command("late", "late-1", Instant::now())).await;
    assert!(matches!(late, Err(StoreError::Timeout)), "{late:?}");
    assert_eq!(store.read(&CounterName::parse("late").unwrap()).await.unwrap().value, 0);
}

#[tokio::test]
async fn data_outlives_the_store_and_replays_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.increment(command("kept", "kept-1", soon())).await.unwrap();
        store.increment(command("kept", "kept-2", soon())).await.unwrap()
    };
    let IncrementOutcome::Committed { body, .. } = first else { panic!("committed") };
    let store = SqliteStore::open(dir.path()).unwrap();
    let replay = store.increment(command("kept", "kept-2", soon())).await.unwrap();
    assert_eq!(replay, IncrementOutcome::Replayed { counter: CounterName::parse("kept").unwrap(), body });
    let history = store
        .history(
            &CounterName::parse("kept").unwrap(),
            HistoryQuery { before: None, limit: HistoryLimit::parse("10").unwrap() },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = history.iter().map(|record| record.request_id.as_str()).collect();
    assert_eq!(ids, ["kept-2", "kept-1"]);
}

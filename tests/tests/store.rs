//! The one `CounterStore` suite (`acidizer_tests::store_contract`) on every store: SQLite, and DynamoDB on
//! DynamoDB Local.

use acidizer_store_dynamodb::{DynamoStore, create_missing_tables};
use acidizer_store_sqlite::SqliteStore;
use acidizer_tests::{dynamo_model, dynamodb_local, store_contract};
use std::sync::Arc;

/// A SQLite store in its own directory (kept alive beside it).
fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteStore::open(dir.path()).unwrap(), dir)
}

/// A DynamoDB store on a fresh table of DynamoDB Local, behind the model of DynamoDB's latency, conflicts and
/// partition budget.
async fn dynamodb() -> DynamoStore {
    let client = dynamodb_local::client(dynamo_model::shared_endpoint());
    let table = format!("store-{}", uuid::Uuid::new_v4().simple());
    create_missing_tables(&client, &table, None).await.unwrap();
    DynamoStore::new(client, table)
}

macro_rules! store_suite {
    ($name:ident, $make:expr, load: $tasks:expr, $per_task:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn increments_commit_values_one_by_one() {
                let store = $make;
                store_contract::increments_commit_values_one_by_one(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_known_request_id_replays_whatever_the_counter() {
                let store = $make;
                store_contract::a_known_request_id_replays_whatever_the_counter(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nothing_commits_after_the_deadline() {
                let store = $make;
                store_contract::nothing_commits_after_the_deadline(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn one_request_id_sent_at_once_commits_once() {
                let store = $make;
                store_contract::one_request_id_sent_at_once_commits_once(Arc::new(store.0)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn changes_stay_within_the_floor_and_the_ceiling() {
                let store = $make;
                store_contract::changes_stay_within_the_floor_and_the_ceiling(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_committed_decrement_replays_even_at_the_floor() {
                let store = $make;
                store_contract::a_committed_decrement_replays_even_at_the_floor(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_mixed_changes_are_exact() {
                let store = $make;
                store_contract::concurrent_mixed_changes_are_exact(Arc::new(store.0), $tasks, $per_task).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_increments_are_exact() {
                let store = $make;
                store_contract::concurrent_increments_are_exact(Arc::new(store.0), $tasks, $per_task).await;
            }
        }
    };
}

store_suite!(on_sqlite, sqlite(), load: 32, 50);
store_suite!(on_dynamodb, (dynamodb().await, ()), load: 16, 10);

/// A DynamoDB that throttles everything: the change gives up by its deadline (no attempt starts after it, and the
/// SDK's own waits are cut to what is left), and nothing is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_a_throttled_change_gives_up_by_its_deadline() {
    use acidizer_core::{
        ChangeCommand, CounterMax, CounterName, CounterStore, Delta, RequestId, StoreError, Timestamp,
    };
    use acidizer_tests::fault_proxy::{Fault, FaultProxy};
    use std::time::{Duration, Instant};

    let proxy = FaultProxy::start(&dynamodb_local::shared().endpoint, Fault::Throttling, 1.0).await;
    let client = dynamodb_local::client(&proxy.endpoint);
    let table = format!("throttled-{}", uuid::Uuid::new_v4().simple());
    create_missing_tables(&client, &table, None).await.unwrap();
    let store = DynamoStore::new(client, table);
    let started = Instant::now();
    let deadline = started + Duration::from_millis(1500);
    let command = ChangeCommand {
        counter: CounterName::parse("throttled").unwrap(),
        delta: Delta::Increment,
        request_id: RequestId::parse("throttled-1").unwrap(),
        max: CounterMax::DEFAULT,
        at: Timestamp::now(),
        deadline,
    };
    let outcome = store.change(command).await;
    let took = started.elapsed();
    assert!(matches!(outcome, Err(StoreError::Overloaded | StoreError::Timeout)), "{outcome:?}");
    assert!(took < Duration::from_millis(2500), "gave up by the deadline, not {took:?}");
    assert!(proxy.injected() > 1, "every attempt was throttled");
    proxy.stop_faults();
    let read = store.read(&CounterName::parse("throttled").unwrap()).await.unwrap();
    assert_eq!((read.value, read.seq), (0, 0), "nothing committed");
}

/// Items written before decrements existed (no `seq`, `delta`, audit `value`, nor `attempt`): they read as
/// increments, the counter goes on from them, and their remembered answers replay as first sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_items_from_before_decrements_stay_valid() {
    use acidizer_core::{
        ChangeCommand, ChangeOutcome, CounterMax, CounterName, CounterStore, Delta, HistoryLimit, HistoryQuery,
        RequestId, Timestamp,
    };
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    use std::time::{Duration, Instant};

    let client = dynamodb_local::client(&dynamodb_local::shared().endpoint);
    let table = format!("old-{}", uuid::Uuid::new_v4().simple());
    create_missing_tables(&client, &table, None).await.unwrap();
    let first = r#"{"counter":"old","value":2,"requestId":"old-2","updatedAt":"2026-11-23T10:00:00.200Z"}"#;
    let items = [
        vec![
            ("pk", S("counter#old".into())),
            ("sk", N("0".into())),
            ("kind", S("counter".into())),
            ("counter", S("old".into())),
            ("value", N("2".into())),
            ("updatedAt", N("1795428000200".into())),
            ("requestId", S("old-2".into())),
        ],
        vec![
            ("pk", S("counter#old".into())),
            ("sk", N("1".into())),
            ("kind", S("audit".into())),
            ("counter", S("old".into())),
            ("requestId", S("old-1".into())),
            ("at", N("1795428000100".into())),
        ],
        vec![
            ("pk", S("counter#old".into())),
            ("sk", N("2".into())),
            ("kind", S("audit".into())),
            ("counter", S("old".into())),
            ("requestId", S("old-2".into())),
            ("at", N("1795428000200".into())),
        ],
        vec![
            ("pk", S("request#old-2".into())),
            ("sk", N("0".into())),
            ("kind", S("request".into())),
            ("counter", S("old".into())),
            ("response", S(first.into())),
            ("expiresAt", N("99999999999".into())),
        ],
    ];
    for item in items {
        let item = item.into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
        client.put_item().table_name(&table).set_item(Some(item)).send().await.unwrap();
    }
    let store = DynamoStore::new(client, table);
    let old = CounterName::parse("old").unwrap();
    let read = store.read(&old).await.unwrap();
    assert_eq!((read.value, read.seq), (2, 2), "seq is the value, as every change was +1");
    let change = |delta, key: &str| ChangeCommand {
        counter: old.clone(),
        delta,
        request_id: RequestId::parse(key).unwrap(),
        max: CounterMax::DEFAULT,
        at: Timestamp::now(),
        deadline: Instant::now() + Duration::from_secs(10),
    };
    let replay = store.change(change(Delta::Increment, "old-2")).await.unwrap();
    assert_eq!(replay, ChangeOutcome::Replayed { counter: old.clone(), delta: Delta::Increment, body: first.into() });
    let down = store.change(change(Delta::Decrement, "new-3")).await.unwrap();
    assert!(matches!(down, ChangeOutcome::Committed { value: 1, seq: 3, .. }), "{down:?}");
    let up = store.change(change(Delta::Increment, "new-4")).await.unwrap();
    assert!(matches!(up, ChangeOutcome::Committed { value: 2, seq: 4, .. }), "{up:?}");
    let all = HistoryQuery { before: None, limit: HistoryLimit::parse("10").unwrap() };
    let history: Vec<(u64, Delta, u64)> =
        store.history(&old, all).await.unwrap().iter().map(|r| (r.seq, r.delta, r.value)).collect();
    use Delta::{Decrement, Increment};
    assert_eq!(history, [(4, Increment, 2), (3, Decrement, 1), (2, Increment, 2), (1, Increment, 1)]);
}

/// Changes that wait together commit together: 1 100 increments from 48 tasks at once take far fewer
/// transactions than changes, their audit pages cross a page partition's thousand, and the history reads back
/// 1..N without a gap, page by page.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_groups_cross_a_thousand_and_the_history_reads_back_gap_free() {
    use acidizer_core::{
        ChangeCommand, ChangeOutcome, CounterMax, CounterName, CounterStore, Delta, HistoryLimit, HistoryQuery,
        RequestId, Timestamp,
    };
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::time::{Duration, Instant};

    const CHANGES: usize = 1100;
    const TASKS: usize = 48;
    let store = Arc::new(dynamodb().await);
    let counter = CounterName::parse("thousand").unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, counter) = (Arc::clone(&store), counter.clone());
            tokio::spawn(async move {
                let mut committed = Vec::new();
                for n in (task..CHANGES).step_by(TASKS) {
                    let command = ChangeCommand {
                        counter: counter.clone(),
                        delta: Delta::Increment,
                        request_id: RequestId::parse(&format!("k-{n}")).unwrap(),
                        max: CounterMax::DEFAULT,
                        at: Timestamp::now(),
                        deadline: Instant::now() + Duration::from_secs(10),
                    };
                    match store.change(command).await {
                        Ok(ChangeOutcome::Committed { seq, .. }) => committed.push((seq, format!("k-{n}"))),
                        other => panic!("k-{n}: {other:?}"),
                    }
                }
                committed
            })
        })
        .collect();
    let mut committed = Vec::new();
    for task in tasks {
        committed.extend(task.await.unwrap());
    }
    committed.sort();
    assert_eq!(committed.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (1..=CHANGES as u64).collect::<Vec<_>>());

    let mut read = Vec::new();
    let mut before = None;
    loop {
        let query = HistoryQuery { before, limit: HistoryLimit::parse("100").unwrap() };
        let page = store.history(&counter, query).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        read.extend(page.into_iter().map(|record| (record.seq, record.value, record.request_id.as_str().to_owned())));
    }
    read.reverse();
    let expected: Vec<_> = committed.iter().map(|(seq, key)| (*seq, *seq, key.clone())).collect();
    assert_eq!(read, expected, "the history is 1..N, each record with its change's key");

    // The pages of each partition: fewer than the changes (they committed in groups), in two partitions.
    let mut pages = 0;
    for partition in ["audits#thousand#0", "audits#thousand#1"] {
        let found = store
            .client()
            .query()
            .table_name(store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .unwrap()
            .count();
        assert!(found > 0, "{partition} holds pages");
        pages += found as usize;
    }
    println!("{CHANGES} changes from {TASKS} tasks committed in {pages} audit pages");
    assert!(pages < CHANGES / 4, "{pages} pages for {CHANGES} changes: they did not commit in groups");
}

/// While hosts from before group commit still run beside the new ones (a deployment's canary), their one-record
/// audit items land between the new hosts' pages: the history reads both, gap-free.
#[tokio::test]
async fn on_dynamodb_records_of_older_hosts_between_pages_read_in_order() {
    use acidizer_core::{
        ChangeCommand, ChangeOutcome, CounterMax, CounterName, CounterStore, Delta, HistoryLimit, HistoryQuery,
        RequestId, Timestamp,
    };
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    use std::time::{Duration, Instant};

    let store = dynamodb().await;
    let counter = CounterName::parse("mixed").unwrap();
    let change = |key: &str| ChangeCommand {
        counter: counter.clone(),
        delta: Delta::Increment,
        request_id: RequestId::parse(key).unwrap(),
        max: CounterMax::DEFAULT,
        at: Timestamp::now(),
        deadline: Instant::now() + Duration::from_secs(10),
    };
    for key in ["new-1", "new-2"] {
        assert!(matches!(store.change(change(key)).await.unwrap(), ChangeOutcome::Committed { .. }));
    }
    // An older host commits seq 3 as it did: the counter, and one audit record in the counter's partition.
    let old_items = [
        vec![
            ("pk", S("counter#mixed".into())),
            ("sk", N("0".into())),
            ("kind", S("counter".into())),
            ("counter", S("mixed".into())),
            ("value", N("3".into())),
            ("seq", N("3".into())),
            ("updatedAt", N("1795428000300".into())),
            ("requestId", S("old-3".into())),
        ],
        vec![
            ("pk", S("counter#mixed".into())),
            ("sk", N("3".into())),
            ("kind", S("audit".into())),
            ("counter", S("mixed".into())),
            ("requestId", S("old-3".into())),
            ("at", N("1795428000300".into())),
            ("delta", N("1".into())),
            ("value", N("3".into())),
        ],
    ];
    for item in old_items {
        let item = item.into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
        store.client().put_item().table_name(store.table()).set_item(Some(item)).send().await.unwrap();
    }
    for key in ["new-4", "new-5"] {
        assert!(matches!(store.change(change(key)).await.unwrap(), ChangeOutcome::Committed { .. }));
    }
    for (before, limit, expected) in [
        (None, "10", vec![(5, "new-5"), (4, "new-4"), (3, "old-3"), (2, "new-2"), (1, "new-1")]),
        (Some(4), "2", vec![(3, "old-3"), (2, "new-2")]),
        (Some(900), "1", vec![(5, "new-5")]),
    ] {
        let query = HistoryQuery { before, limit: HistoryLimit::parse(limit).unwrap() };
        let history = store.history(&counter, query).await.unwrap();
        let read: Vec<(u64, &str)> = history.iter().map(|r| (r.seq, r.request_id.as_str())).collect();
        assert_eq!(read, expected, "before {before:?}, limit {limit}");
    }
}

//! The SQLite store on its own: group commit, deadlines, data that outlives the store, and databases written by
//! the previous layout.

use acidizer_core::{
    ChangeCommand, ChangeOutcome, CounterMax, CounterName, CounterStore, Delta, HistoryLimit, HistoryQuery, RequestId,
    StoreError, Timestamp,
};
use acidizer_store_sqlite::SqliteStore;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn command(counter: &str, key: &str, deadline: Instant) -> ChangeCommand {
    change(counter, Delta::Increment, key, deadline)
}

fn change(counter: &str, delta: Delta, key: &str, deadline: Instant) -> ChangeCommand {
    ChangeCommand {
        counter: CounterName::parse(counter).unwrap(),
        delta,
        request_id: RequestId::parse(key).unwrap(),
        max: CounterMax::DEFAULT,
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
                    match store.change(command("shared", &format!("t{task}-{i}"), soon())).await.unwrap() {
                        ChangeOutcome::Committed { value, .. } => values.push(value),
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
    let late = store.change(command("late", "late-1", Instant::now())).await;
    assert!(matches!(late, Err(StoreError::Timeout)), "{late:?}");
    assert_eq!(store.read(&CounterName::parse("late").unwrap()).await.unwrap().value, 0);
}

#[tokio::test]
async fn data_outlives_the_store_and_replays_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.change(command("kept", "kept-1", soon())).await.unwrap();
        store.change(command("kept", "kept-2", soon())).await.unwrap()
    };
    let ChangeOutcome::Committed { body, .. } = first else { panic!("committed") };
    let store = SqliteStore::open(dir.path()).unwrap();
    let replay = store.change(command("kept", "kept-2", soon())).await.unwrap();
    let kept = CounterName::parse("kept").unwrap();
    assert_eq!(replay, ChangeOutcome::Replayed { counter: kept, delta: Delta::Increment, body });
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

/// The layout before decrements existed (`PRAGMA user_version` 0), with three increments of `old` and the
/// remembered answer of the last one.
const PREVIOUS_LAYOUT: &str = r#"
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    request_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE audit (counter TEXT NOT NULL, value INTEGER NOT NULL, request_id TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (counter, value)) WITHOUT ROWID;
CREATE TABLE idempotency (key TEXT PRIMARY KEY, counter TEXT NOT NULL, response TEXT NOT NULL,
    expires_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX idempotency_expiry ON idempotency (expires_at);
INSERT INTO counters VALUES ('old', 3, 1795428000300, 'old-3');
INSERT INTO audit VALUES ('old', 1, 'old-1', 1795428000100), ('old', 2, 'old-2', 1795428000200),
    ('old', 3, 'old-3', 1795428000300);
INSERT INTO idempotency VALUES ('old-3', 'old',
    '{"counter":"old","value":3,"requestId":"old-3","updatedAt":"2026-11-23T10:00:00.300Z"}', 99999999999);
"#;

#[tokio::test]
async fn a_database_of_the_previous_layout_opens_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let old = rusqlite::Connection::open(dir.path().join(acidizer_store_sqlite::DATABASE_FILE)).unwrap();
        old.execute_batch(PREVIOUS_LAYOUT).unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let old = CounterName::parse("old").unwrap();
    let snapshot = store.read(&old).await.unwrap();
    assert_eq!((snapshot.value, snapshot.seq), (3, 3), "seq is the value, as every change was +1");
    let all = HistoryQuery { before: None, limit: HistoryLimit::parse("10").unwrap() };
    let history = store.history(&old, all).await.unwrap();
    let read: Vec<(u64, Delta, u64, &str)> =
        history.iter().map(|r| (r.seq, r.delta, r.value, r.request_id.as_str())).collect();
    assert_eq!(
        read,
        [(3, Delta::Increment, 3, "old-3"), (2, Delta::Increment, 2, "old-2"), (1, Delta::Increment, 1, "old-1")]
    );
    // A remembered answer replays byte for byte as it was first sent.
    let replay = store.change(command("old", "old-3", soon())).await.unwrap();
    let first = r#"{"counter":"old","value":3,"requestId":"old-3","updatedAt":"2026-11-23T10:00:00.300Z"}"#;
    assert_eq!(replay, ChangeOutcome::Replayed { counter: old.clone(), delta: Delta::Increment, body: first.into() });
    // And the counter goes on: a decrement is seq 4.
    let next = store.change(change("old", Delta::Decrement, "new-4", soon())).await.unwrap();
    assert!(matches!(next, ChangeOutcome::Committed { value: 2, seq: 4, .. }), "{next:?}");
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(reopened.read(&old).await.unwrap().seq, 4, "a migrated database opens again as it is");
}

fn page_size(dir: &std::path::Path) -> i64 {
    let connection = rusqlite::Connection::open(dir.join(acidizer_store_sqlite::DATABASE_FILE)).unwrap();
    connection.pragma_query_value(None, "page_size", |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn a_new_database_gets_2_kib_pages_and_an_older_file_keeps_its_own() {
    let new = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(new.path()).unwrap();
        store.change(command("paged", "paged-1", soon())).await.unwrap();
    }
    assert_eq!(page_size(new.path()), 2048);

    let old = tempfile::tempdir().unwrap();
    {
        let connection = rusqlite::Connection::open(old.path().join(acidizer_store_sqlite::DATABASE_FILE)).unwrap();
        connection.execute_batch(PREVIOUS_LAYOUT).unwrap();
    }
    assert_eq!(page_size(old.path()), 4096, "SQLite's default");
    {
        let store = SqliteStore::open(old.path()).unwrap();
        let next = store.change(command("old", "old-4", soon())).await.unwrap();
        assert!(matches!(next, ChangeOutcome::Committed { value: 4, seq: 4, .. }), "{next:?}");
    }
    assert_eq!(page_size(old.path()), 4096, "an existing file is not rewritten");
}

/// Layout version 2: each change's answer kept in `idempotency` beside its audit record; `two` was incremented twice,
/// and the answer to its first change has already expired and been deleted.
const LAYOUT_2: &str = r#"
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    request_id TEXT NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE audit (counter TEXT NOT NULL, seq INTEGER NOT NULL, delta INTEGER NOT NULL, value INTEGER NOT NULL,
    request_id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (counter, seq)) WITHOUT ROWID;
CREATE TABLE idempotency (key TEXT PRIMARY KEY, counter TEXT NOT NULL, response TEXT NOT NULL,
    expires_at INTEGER NOT NULL, delta INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX idempotency_expiry ON idempotency (expires_at);
INSERT INTO counters VALUES ('two', 2, 1795428000200, 'two-2', 2);
INSERT INTO audit VALUES ('two', 1, 1, 1, 'two-1', 1795428000100), ('two', 2, 1, 2, 'two-2', 1795428000200);
INSERT INTO idempotency VALUES ('two-2', 'two',
    '{"counter":"two","value":2,"seq":2,"delta":1,"requestId":"two-2","updatedAt":"2026-11-23T10:00:00.200Z"}',
    99999999999, 1);
PRAGMA user_version = 2;
"#;

#[tokio::test]
async fn a_database_of_layout_2_replays_every_change_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    {
        let old = rusqlite::Connection::open(dir.path().join(acidizer_store_sqlite::DATABASE_FILE)).unwrap();
        old.execute_batch(LAYOUT_2).unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let two = CounterName::parse("two").unwrap();
    let kept =
        r#"{"counter":"two","value":2,"seq":2,"delta":1,"requestId":"two-2","updatedAt":"2026-11-23T10:00:00.200Z"}"#;
    let replay = store.change(command("two", "two-2", soon())).await.unwrap();
    assert_eq!(replay, ChangeOutcome::Replayed { counter: two.clone(), delta: Delta::Increment, body: kept.into() });
    // The first change's answer is no longer kept, yet its audit record answers for it: still a replay, not a
    // second increment, byte for byte what layout 2 sent.
    let rebuilt =
        r#"{"counter":"two","value":1,"seq":1,"delta":1,"requestId":"two-1","updatedAt":"2026-11-23T10:00:00.100Z"}"#;
    let replay = store.change(command("two", "two-1", soon())).await.unwrap();
    assert_eq!(replay, ChangeOutcome::Replayed { counter: two.clone(), delta: Delta::Increment, body: rebuilt.into() });
    let next = store.change(change("two", Delta::Decrement, "two-3", soon())).await.unwrap();
    let ChangeOutcome::Committed { value: 1, seq: 3, body } = next else { panic!("seq 3, value 1: {next:?}") };
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    let replay = reopened.change(change("two", Delta::Decrement, "two-3", soon())).await.unwrap();
    assert_eq!(replay, ChangeOutcome::Replayed { counter: two.clone(), delta: Delta::Decrement, body });
    assert_eq!(reopened.read(&two).await.unwrap().seq, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_that_cannot_be_made_fails_alone_and_its_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    {
        let old = rusqlite::Connection::open(dir.path().join(acidizer_store_sqlite::DATABASE_FILE)).unwrap();
        old.execute_batch(LAYOUT_2).unwrap();
        // A remembered answer that names no counter: replaying it cannot be done.
        old.execute("INSERT INTO idempotency VALUES ('unreadable', 'Not A Name', '{}', 99999999999, 1)", []).unwrap();
    }
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    for round in 0..10 {
        let changes: Vec<_> = (0..33)
            .map(|n| {
                let store = Arc::clone(&store);
                let key = if n == 16 { "unreadable".to_owned() } else { format!("ok-{round}-{n}") };
                tokio::spawn(async move { (key.clone(), store.change(command("ok", &key, soon())).await) })
            })
            .collect();
        for change in changes {
            match change.await.unwrap() {
                (key, Err(StoreError::Corrupt(_))) if key == "unreadable" => {}
                (key, Ok(ChangeOutcome::Committed { .. })) if key != "unreadable" => {}
                (key, outcome) => panic!("round {round}, {key}: {outcome:?}"),
            }
        }
    }
    let ok = store.read(&CounterName::parse("ok").unwrap()).await.unwrap();
    assert_eq!((ok.value, ok.seq), (320, 320), "every other change committed");
    assert!(store.commits() < 320, "changes shared commits ({}), so the failing one had company", store.commits());
}

#[tokio::test]
async fn expired_answers_are_pruned_in_batches_between_groups() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join(acidizer_store_sqlite::DATABASE_FILE);
    {
        let mut old = rusqlite::Connection::open(&database).unwrap();
        old.execute_batch(LAYOUT_2).unwrap();
        let planting = old.transaction().unwrap();
        for n in 0..2500 {
            planting
                .execute("INSERT INTO idempotency VALUES (?1, 'two', '{}', 1, 1)", [format!("expired-{n}")])
                .unwrap();
        }
        planting.commit().unwrap();
    }
    let remaining = || {
        let connection = rusqlite::Connection::open(&database).unwrap();
        connection.query_row("SELECT COUNT(*) FROM idempotency", [], |row| row.get::<_, i64>(0)).unwrap()
    };
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut left = Vec::new();
    for (n, expected) in [1501, 501, 1, 1].into_iter().enumerate() {
        store.change(command("two", &format!("prune-{n}"), soon())).await.unwrap();
        // The writer prunes after answering its group: wait for it.
        let until = Instant::now() + Duration::from_secs(10);
        while remaining() > expected && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        left.push(remaining());
    }
    // One batch of at most 1000 after each group, until only the answer still within its retention is left.
    assert_eq!(left, [1501, 501, 1, 1]);
    let kept = store.change(command("two", "two-2", soon())).await.unwrap();
    assert!(matches!(kept, ChangeOutcome::Replayed { .. }), "{kept:?}");
}

/// Layout version 3 wrote `/health`'s one small row to a table `health`; version 4 writes a probe as large as a
/// change to `probe` instead.
#[tokio::test]
async fn a_database_of_layout_3_opens_with_its_health_table_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(acidizer_store_sqlite::DATABASE_FILE);
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.change(command("three", "three-1", soon())).await.unwrap();
    }
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE probe;
             CREATE TABLE health (id INTEGER PRIMARY KEY, checked_at INTEGER NOT NULL);
             INSERT INTO health VALUES (1, 1795428000000);
             PRAGMA user_version = 3;",
        )
        .unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.health().await.unwrap();
    assert_eq!(store.read(&CounterName::parse("three").unwrap()).await.unwrap().seq, 1);
    drop(store);
    let opened = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = opened
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('health', 'probe')")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["probe"]);
    let version: i64 = opened.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
    assert_eq!(version, 4);
}

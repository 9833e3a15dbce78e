//! The `CounterStore` contract, one generic suite: every store (SQLite, DynamoDB on DynamoDB Local) runs the same
//! functions, through the port alone.

use acidizer_core::{
    Bound, ChangeCommand, ChangeOutcome, CounterMax, CounterName, CounterStore, Delta, HistoryLimit, HistoryQuery,
    RequestId, StoreError, Timestamp,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn command(counter: &str, key: &str, deadline: Instant) -> ChangeCommand {
    change(counter, Delta::Increment, key, CounterMax::DEFAULT, deadline)
}

fn change(counter: &str, delta: Delta, key: &str, max: CounterMax, deadline: Instant) -> ChangeCommand {
    ChangeCommand {
        counter: CounterName::parse(counter).expect("a valid counter name"),
        delta,
        request_id: RequestId::parse(key).expect("a valid key"),
        max,
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
        match store.change(command("steps", &format!("step-{expected}"), soon())).await.unwrap() {
            ChangeOutcome::Committed { value, seq, body } => {
                assert_eq!((value, seq), (expected, expected));
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
    let values: Vec<(u64, u64)> = history.iter().map(|record| (record.seq, record.value)).collect();
    assert_eq!(values, [(3, 3), (2, 2), (1, 1)]);
}

pub async fn a_known_request_id_replays_whatever_the_counter(store: &impl CounterStore) {
    let ChangeOutcome::Committed { body, .. } = store.change(command("apples", "k-1", soon())).await.unwrap() else {
        panic!("a fresh key commits");
    };
    for counter in ["apples", "pears"] {
        let replay = store.change(command(counter, "k-1", soon())).await.unwrap();
        assert_eq!(
            replay,
            ChangeOutcome::Replayed {
                counter: CounterName::parse("apples").unwrap(),
                delta: Delta::Increment,
                body: body.clone()
            },
            "on {counter}"
        );
    }
    assert_eq!(value_of(store, "apples").await, 1);
    assert_eq!(value_of(store, "pears").await, 0, "a replay for another counter changes nothing");
}

pub async fn nothing_commits_after_the_deadline(store: &impl CounterStore) {
    let past = Instant::now().checked_sub(Duration::from_millis(1)).unwrap_or_else(Instant::now);
    let late = store.change(command("late", "late-1", past)).await;
    assert!(matches!(late, Err(StoreError::Timeout | StoreError::Contention | StoreError::Overloaded)), "{late:?}");
    assert_eq!(value_of(store, "late").await, 0, "a late increment commits nothing");
    // The key was not used up: a retry within its deadline commits.
    let retried = store.change(command("late", "late-1", soon())).await.unwrap();
    assert!(matches!(retried, ChangeOutcome::Committed { value: 1, .. }), "{retried:?}");
}

pub async fn one_request_id_sent_at_once_commits_once<S: CounterStore>(store: Arc<S>) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.change(command("stampede", "same", soon())).await })
        })
        .collect();
    let mut committed = Vec::new();
    let mut replayed = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            ChangeOutcome::Committed { body, .. } => committed.push(body),
            ChangeOutcome::Replayed { body, .. } => replayed.push(body),
            refused @ ChangeOutcome::Refused(_) => panic!("an increment at 0 is not refused: {refused:?}"),
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
                    match store.change(command("busy", &format!("t{task}-{i}"), deadline)).await.unwrap() {
                        ChangeOutcome::Committed { value, .. } => values.push(value),
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

pub async fn changes_stay_within_the_floor_and_the_ceiling(store: &impl CounterStore) {
    let max = CounterMax::new(3).unwrap();
    let at = |delta, key: &str| change("bounded", delta, key, max, soon());
    let refused = store.change(at(Delta::Decrement, "down-at-0")).await.unwrap();
    assert_eq!(refused, ChangeOutcome::Refused(Bound::Floor), "a decrement at 0");
    for n in 1..=3 {
        let up = store.change(at(Delta::Increment, &format!("up-{n}"))).await.unwrap();
        assert!(matches!(up, ChangeOutcome::Committed { value, seq, .. } if value == n && seq == n), "{up:?}");
    }
    let refused = store.change(at(Delta::Increment, "up-4")).await.unwrap();
    assert_eq!(refused, ChangeOutcome::Refused(Bound::Ceiling(max)), "an increment at the ceiling");
    let down = store.change(at(Delta::Decrement, "down-1")).await.unwrap();
    assert!(matches!(down, ChangeOutcome::Committed { value: 2, seq: 4, .. }), "{down:?}");
    // A refusal is not remembered: the same key commits once the bound allows it.
    let up = store.change(at(Delta::Increment, "up-4")).await.unwrap();
    assert!(matches!(up, ChangeOutcome::Committed { value: 3, seq: 5, .. }), "{up:?}");
    let bounded = CounterName::parse("bounded").unwrap();
    let snapshot = store.read(&bounded).await.unwrap();
    assert_eq!((snapshot.value, snapshot.seq), (3, 5));
    let all = HistoryQuery { before: None, limit: HistoryLimit::parse("10").unwrap() };
    let history: Vec<(u64, Delta, u64)> =
        store.history(&bounded, all).await.unwrap().iter().map(|r| (r.seq, r.delta, r.value)).collect();
    use Delta::{Decrement, Increment};
    assert_eq!(
        history,
        [(5, Increment, 3), (4, Decrement, 2), (3, Increment, 3), (2, Increment, 2), (1, Increment, 1)]
    );
}

pub async fn a_committed_decrement_replays_even_at_the_floor(store: &impl CounterStore) {
    let max = CounterMax::DEFAULT;
    store.change(change("floor", Delta::Increment, "floor-up", max, soon())).await.unwrap();
    let ChangeOutcome::Committed { body, .. } =
        store.change(change("floor", Delta::Decrement, "floor-down", max, soon())).await.unwrap()
    else {
        panic!("the decrement commits");
    };
    // The counter is at 0 now; the decrement's retry is its replay, not a refusal.
    let again = store.change(change("floor", Delta::Decrement, "floor-down", max, soon())).await.unwrap();
    let floor = CounterName::parse("floor").unwrap();
    assert_eq!(again, ChangeOutcome::Replayed { counter: floor.clone(), delta: Delta::Decrement, body });
    // The same key for the other operation is told as what it was: a decrement.
    let other = store.change(change("floor", Delta::Increment, "floor-down", max, soon())).await.unwrap();
    assert!(matches!(other, ChangeOutcome::Replayed { delta: Delta::Decrement, .. }), "{other:?}");
    assert_eq!(store.read(&floor).await.unwrap().value, 0);
}

/// `tasks` clients sending a random mix of increments and decrements to one counter: `seq`s 1..N for the N
/// commits, each record's value the running sum of the deltas and never below 0.
pub async fn concurrent_mixed_changes_are_exact<S: CounterStore>(store: Arc<S>, tasks: usize, per_task: usize) {
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let (mut committed, mut decrements) = (0, 0);
                for i in 0..per_task {
                    let delta = if fastrand::bool() { Delta::Increment } else { Delta::Decrement };
                    let deadline = Instant::now() + Duration::from_secs(30);
                    let key = format!("m{task}-{i}");
                    match store.change(change("mixed", delta, &key, CounterMax::DEFAULT, deadline)).await.unwrap() {
                        ChangeOutcome::Committed { .. } => {
                            committed += 1;
                            decrements += u64::from(delta == Delta::Decrement);
                        }
                        ChangeOutcome::Refused(Bound::Floor) => {}
                        other => panic!("a fresh key commits or meets the floor: {other:?}"),
                    }
                }
                (committed, decrements)
            })
        })
        .collect();
    let (mut n, mut decrements) = (0u64, 0u64);
    for handle in handles {
        let (committed, down) = handle.await.unwrap();
        n += committed;
        decrements += down;
    }
    assert!(n > 0 && decrements > 0, "the load committed decrements too: {n} changes, {decrements} down");
    let mixed = CounterName::parse("mixed").unwrap();
    let snapshot = store.read(&mixed).await.unwrap();
    assert_eq!(snapshot.seq, n, "one seq per commit");
    let mut records = Vec::new();
    let mut before = None;
    loop {
        let page =
            store.history(&mixed, HistoryQuery { before, limit: HistoryLimit::parse("100").unwrap() }).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        records.extend(page);
    }
    records.reverse();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "seqs 1..N with no gap");
    let mut value = 0u64;
    for record in &records {
        value = value.checked_add_signed(record.delta.as_i64()).expect("never below 0");
        assert_eq!(record.value, value, "record {} holds the running sum", record.seq);
    }
    assert_eq!(snapshot.value, value);
}

//! The one writer: group commit of changes, each answered once its commit is durable (by the syncer, syncer.rs,
//! while the writer commits the next group). Being the only writer, it keeps the state of every counter it touched
//! in memory, and writes each counter's row once per group. A change is one audit record: replayed, its answer is
//! rebuilt from it byte for byte.

use crate::checkpointer;
use crate::failure::{Failure, Unreadable};
use crate::reader::{stored, stored_value};
use crate::sql_error;
use crate::syncer::{Committed, Syncer};
use acidizer_core::telemetry::error_chain;
use acidizer_core::{Change, ChangeCommand, ChangeOutcome, CounterChange, CounterName, Delta, StoreError, Timestamp};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The most changes one commit carries.
const MAX_GROUP: usize = 1024;
/// How often the answers remembered by earlier layouts are deleted once past their retention.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// The most answers one pruning deletes: the writer goes back to changes between batches.
const PRUNE_BATCH: usize = 1000;

/// What the writer is asked to do.
pub(crate) enum Work {
    Change(Job),
    /// Commit a write as large as a change's, durably: whether a change could commit (on a full disk it cannot).
    Probe(oneshot::Sender<Result<(), StoreError>>),
}

pub(crate) struct Job {
    pub(crate) command: ChangeCommand,
    pub(crate) reply: oneshot::Sender<Result<ChangeOutcome, StoreError>>,
}

/// A counter's committed state: value and `seq`.
type Head = (u64, u64);

/// A counter's state within the group being committed, with the change that made it.
struct Touched {
    value: u64,
    seq: u64,
    request_id: String,
}

/// What the writer works with beside its connection and queue.
pub(crate) struct Writer {
    /// Counts its group commits.
    pub(crate) commits: Arc<AtomicU64>,
    /// Told of each counter's commit before it is made; makes each commit durable, then answers it.
    pub(crate) syncer: Syncer,
    /// Set by the checkpointer when the writer is to finish a checkpoint (checkpointer.rs).
    pub(crate) start_over: Arc<AtomicBool>,
    /// Dropped when the writer stops, which stops the checkpointer.
    pub(crate) alive: std::sync::mpsc::Sender<()>,
}

/// Starts the writer on `connection`: it takes work from `queue` until it is closed or the syncer fails.
pub(crate) fn spawn(connection: Connection, queue: mpsc::Receiver<Work>, writer: Writer) -> std::io::Result<()> {
    std::thread::Builder::new().name("sqlite-writer".to_owned()).spawn(move || {
        let Writer { commits, syncer, start_over, alive } = writer;
        run(connection, queue, &commits, &syncer, &start_over);
        // The syncer stops once it has answered what it was sent, the checkpointer with the writer.
        drop((syncer, alive));
    })?;
    Ok(())
}

fn run(
    mut connection: Connection,
    mut queue: mpsc::Receiver<Work>,
    commits: &AtomicU64,
    syncer: &Syncer,
    start_over: &AtomicBool,
) {
    let mut last_prune: Option<Instant> = None;
    let mut earlier_answers = has_earlier_answers(&connection);
    let probe_room = ProbeRoom::of(&connection);
    // What the database holds for each counter read or written so far: this thread is its only writer.
    let mut heads: HashMap<CounterName, Head> = HashMap::new();
    while let Some(first) = queue.blocking_recv() {
        if syncer.has_failed() {
            // What waits in the queue is dropped with it: each is answered that the writer stopped.
            tracing::error!("the writer stops: its commits can no longer be made durable");
            break;
        }
        let (mut group, mut probes) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(work) = next {
            match work {
                Work::Change(job) => group.push(job),
                Work::Probe(reply) => probes.push(reply),
            }
            next = if group.len() < MAX_GROUP { queue.try_recv().ok() } else { None };
        }
        let mut committed = Committed::default();
        if !group.is_empty()
            && commit_group(&mut connection, &mut heads, syncer, group, earlier_answers, &mut committed)
                == Committing::Committed
        {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        if syncer.has_failed() {
            // What the group committed fails at the syncer; the probes, dropped, are answered that the writer stopped.
            syncer.send(committed);
            tracing::error!("the writer stops: its commits can no longer be made durable");
            break;
        }
        for probe in probes {
            match commit_probe(&connection, &probe_room) {
                Ok(()) => committed.probes.push(probe),
                Err(error) => drop(probe.send(Err(error))),
            }
        }
        syncer.send(committed);
        if let Err(error) = checkpointer::finish_if_asked(&connection, start_over) {
            tracing::error!(error = error_chain(&error), "a WAL checkpoint failed on the disk: the writer stops");
            syncer.fail();
            break;
        }
        if earlier_answers && last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            let pruned = prune_expired_keys(&connection);
            earlier_answers = has_earlier_answers(&connection);
            // A full batch leaves more behind: the next one follows the next group, not the next interval.
            if pruned < PRUNE_BATCH {
                last_prune = Some(Instant::now());
            }
        }
    }
    if syncer.has_failed() {
        checkpointer::keep_wal_on_close(&connection);
    }
    tracing::debug!("sqlite writer stopped");
}

/// Why a group's transaction did not commit.
enum GroupFailure {
    /// One change cannot be made (what the database holds for it is unreadable): it fails alone.
    Change { index: usize, error: StoreError },
    /// The database cannot commit: every change of the group fails.
    Store(StoreError),
}

/// What became of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Committing {
    /// Some or all of it committed.
    Committed,
    /// Nothing of it committed.
    Failed,
    /// Nothing of it committed, and one change alone found no room on the disk: nor will any other.
    NoRoom,
}

/// Whether the database could not commit for lack of room on the disk.
fn no_room(error: &StoreError) -> bool {
    let StoreError::Unavailable(cause) = error else { return false };
    cause.downcast_ref::<rusqlite::Error>().and_then(rusqlite::Error::sqlite_error_code)
        == Some(rusqlite::ErrorCode::DiskFull)
}

/// Commits every job of the group in one transaction (each counter's row written once, with its last state), and
/// adds their answers to `committed`, for the syncer. A change that cannot be made fails alone: the transaction is
/// rolled back and the rest of the group committed without it. A group that finds no room on the disk is tried in
/// halves, down to one change: a change that fits commits, and a change that does not fit tells that no other
/// will (the rest then fails at once). Failures are answered at once.
fn commit_group(
    connection: &mut Connection,
    heads: &mut HashMap<CounterName, Head>,
    syncer: &Syncer,
    group: Vec<Job>,
    earlier_answers: bool,
    committed: &mut Committed,
) -> Committing {
    let now = Instant::now();
    let (mut jobs, late): (Vec<Job>, Vec<Job>) = group.into_iter().partition(|job| job.command.deadline > now);
    for job in late {
        let _ = job.reply.send(Err(StoreError::Timeout));
    }
    while !jobs.is_empty() {
        let stamped = Timestamp::now();
        let mut touched: HashMap<CounterName, Touched> = HashMap::new();
        let applied = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| GroupFailure::Store(sql_error(error)))
            .and_then(|transaction| {
                let mut outcomes = Vec::with_capacity(jobs.len());
                for (index, job) in jobs.iter().enumerate() {
                    match apply(&transaction, heads, &mut touched, &job.command, earlier_answers, stamped) {
                        Ok(outcome) => outcomes.push(outcome),
                        Err(error @ StoreError::Corrupt(_)) => return Err(GroupFailure::Change { index, error }),
                        Err(error) => return Err(GroupFailure::Store(error)),
                    }
                }
                write_counters(&transaction, &touched, stamped).map_err(GroupFailure::Store)?;
                if syncer.has_failed() {
                    return Err(GroupFailure::Store(StoreError::unavailable(Failure::NotDurable)));
                }
                for (counter, state) in &touched {
                    let before = heads.get(counter).map_or(0, |&(_, seq)| seq);
                    syncer.committing(counter, before, state.seq);
                }
                transaction.commit().map_err(|error| GroupFailure::Store(sql_error(error)))?;
                Ok(outcomes)
            });
        match applied {
            Ok(outcomes) => {
                heads.extend(touched.into_iter().map(|(counter, state)| (counter, (state.value, state.seq))));
                committed.changes.extend(latest_changes(&jobs, &outcomes, stamped));
                committed.answers.extend(jobs.into_iter().map(|job| job.reply).zip(outcomes));
                return Committing::Committed;
            }
            Err(GroupFailure::Change { index, error }) => {
                let failed = jobs.remove(index);
                tracing::error!(
                    error = error_chain(&error),
                    request_id = %failed.command.request_id,
                    "a change cannot be made; the rest of its group is committed without it"
                );
                let _ = failed.reply.send(Err(error));
            }
            Err(GroupFailure::Store(error)) if no_room(&error) && jobs.len() > 1 => {
                tracing::debug!(changes = jobs.len(), "no room on the disk for the group: its halves try alone");
                let rest = jobs.split_off(jobs.len() / 2);
                let first = commit_group(connection, heads, syncer, jobs, earlier_answers, committed);
                if first == Committing::NoRoom {
                    fail(rest, &error);
                    return Committing::NoRoom;
                }
                let second = commit_group(connection, heads, syncer, rest, earlier_answers, committed);
                return if first == Committing::Committed { first } else { second };
            }
            Err(GroupFailure::Store(error)) => {
                tracing::error!(
                    error = error_chain(&error),
                    changes = jobs.len(),
                    "group commit failed; nothing of it was committed"
                );
                let no_room = no_room(&error);
                fail(jobs, &error);
                return if no_room { Committing::NoRoom } else { Committing::Failed };
            }
        }
    }
    Committing::Failed
}

fn fail(jobs: Vec<Job>, error: &StoreError) {
    for job in jobs {
        let _ = job.reply.send(Err(error.clone()));
    }
}

/// Replays a known request id, refuses a change past a bound, or writes the change's audit record (its counter's
/// row is written once for the group, by [`write_counters`]).
fn apply(
    transaction: &Transaction<'_>,
    heads: &mut HashMap<CounterName, Head>,
    touched: &mut HashMap<CounterName, Touched>,
    command: &ChangeCommand,
    earlier_answers: bool,
    at: Timestamp,
) -> Result<ChangeOutcome, StoreError> {
    // An id made for this very request names no earlier change: no need to look.
    if !command.request_id.is_fresh()
        && let Some(replayed) = remembered(transaction, command, earlier_answers)?
    {
        return Ok(replayed);
    }
    let (value, seq) = match touched.get(&command.counter) {
        Some(state) => (state.value, state.seq),
        None => head(transaction, heads, &command.counter)?,
    };
    let value = match command.delta.apply(value, command.max) {
        Ok(value) => value,
        Err(bound) => return Ok(ChangeOutcome::Refused(bound)),
    };
    let change = Change {
        counter: command.counter.clone(),
        value,
        seq: seq + 1,
        delta: command.delta,
        request_id: command.request_id.clone(),
        updated_at: at,
    };
    let body = change.response_body()?;
    let (stored_value, stored_seq) = (stored(change.value)?, stored(change.seq)?);
    let (counter, request_id, delta) = (command.counter.as_str(), command.request_id.as_str(), command.delta.as_i64());
    transaction
        .prepare_cached(
            "INSERT INTO audit (counter, seq, delta, value, request_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut insert| {
            insert.execute(params![counter, stored_seq, delta, stored_value, request_id, at.unix_millis()])
        })
        .map_err(sql_error)?;
    let state = Touched { value: change.value, seq: change.seq, request_id: request_id.to_owned() };
    touched.insert(command.counter.clone(), state);
    Ok(ChangeOutcome::Committed { value: change.value, seq: change.seq, body })
}

/// The answer to the change already made under the command's request id, as a replay: as an earlier layout
/// remembered it, or rebuilt from its audit record.
fn remembered(
    transaction: &Transaction<'_>,
    command: &ChangeCommand,
    earlier_answers: bool,
) -> Result<Option<ChangeOutcome>, StoreError> {
    let corrupt = |cause: Box<dyn std::error::Error + Send + Sync>| {
        StoreError::corrupt(Unreadable::Change { request_id: command.request_id.clone(), cause })
    };
    let key = command.request_id.as_str();
    if earlier_answers {
        let earlier = transaction
            .prepare_cached("SELECT counter, delta, response FROM idempotency WHERE key = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row([key], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
                    })
                    .optional()
            })
            .map_err(sql_error)?;
        if let Some((counter, delta, body)) = earlier {
            let counter = CounterName::parse(&counter).map_err(|error| corrupt(error.into()))?;
            let delta = Delta::from_i64(delta).map_err(|error| corrupt(error.into()))?;
            return Ok(Some(ChangeOutcome::Replayed { counter, delta, body }));
        }
    }
    let record = transaction
        .prepare_cached("SELECT counter, seq, delta, value, at FROM audit WHERE request_id = ?1 LIMIT 1")
        .and_then(|mut statement| {
            statement
                .query_row([key], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .optional()
        })
        .map_err(sql_error)?;
    let Some((counter, seq, delta, value, at)) = record else { return Ok(None) };
    let change = Change {
        counter: CounterName::parse(&counter).map_err(|error| corrupt(error.into()))?,
        value: stored_value(value)?,
        seq: stored_value(seq)?,
        delta: Delta::from_i64(delta).map_err(|error| corrupt(error.into()))?,
        request_id: command.request_id.clone(),
        updated_at: Timestamp::from_unix_millis(at),
    };
    let body = change.response_body()?;
    Ok(Some(ChangeOutcome::Replayed { counter: change.counter, delta: change.delta, body }))
}

/// How many pages `/health`'s probe writes beside its row's own leaf: more than one change writes. A change writes
/// three leaves (its counter's row, its audit record, the record's request-id index), and when a leaf splits, SQLite
/// rewrites it with its siblings and their parent, up the tree: with the largest names and keys, 30 pages at most
/// over 30 000 changes (`a_probe_writes_more_pages_than_any_change`), more as the trees deepen.
const PROBE_PAGES: i64 = 64;

/// What `/health` asks of the store: a commit as large as a change's, so that it fails where a change would (on a
/// full disk, a smaller write may still fit in the space the WAL already holds while a change does not). Each probe
/// writes new random bytes over the last one's: SQLite writes only the pages whose bytes differ.
fn commit_probe(connection: &Connection, room: &ProbeRoom) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO probe (id, written_at, room) VALUES (1, ?1, randomblob(?2))
             ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at, room = excluded.room",
        )
        .and_then(|mut probe| probe.execute(params![Timestamp::now().unix_millis(), room.bytes]))
        .map(drop)
        .map_err(|error| {
            tracing::warn!(error = error_chain(&error), "the database cannot commit a change");
            sql_error(error)
        })
}

/// The size of the probe's `room`: [`PROBE_PAGES`] overflow pages of the database's page size.
struct ProbeRoom {
    bytes: i64,
}

impl ProbeRoom {
    fn of(connection: &Connection) -> Self {
        // An existing database keeps the page size it was made with; an overflow page holds all of it but 4 bytes.
        let page_size = connection.pragma_query_value(None, "page_size", |row| row.get::<_, i64>(0)).unwrap_or(4096);
        Self { bytes: PROBE_PAGES * (page_size - 4) }
    }
}

/// Whether answers remembered by an earlier layout are still kept (they are replayed first, until they expire).
fn has_earlier_answers(connection: &Connection) -> bool {
    connection.query_row("SELECT EXISTS (SELECT 1 FROM idempotency)", [], |row| row.get(0)).unwrap_or_else(|error| {
        tracing::warn!(error = error_chain(&error), "cannot tell whether earlier answers are kept; looking them up");
        true
    })
}

/// A counter's committed state: from memory, or read once from the database (zero for a counter never changed).
fn head(
    transaction: &Transaction<'_>,
    heads: &mut HashMap<CounterName, Head>,
    counter: &CounterName,
) -> Result<Head, StoreError> {
    if let Some(head) = heads.get(counter) {
        return Ok(*head);
    }
    let current = transaction
        .prepare_cached("SELECT value, seq FROM counters WHERE name = ?1")
        .and_then(|mut statement| {
            statement.query_row([counter.as_str()], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))).optional()
        })
        .map_err(sql_error)?;
    let head = match current {
        Some((value, seq)) => (stored_value(value)?, stored_value(seq)?),
        None => (0, 0),
    };
    heads.insert(counter.clone(), head);
    Ok(head)
}

/// Writes each counter the group changed, once, with its last state.
fn write_counters(
    transaction: &Transaction<'_>,
    touched: &HashMap<CounterName, Touched>,
    at: Timestamp,
) -> Result<(), StoreError> {
    for (counter, state) in touched {
        let (value, seq) = (stored(state.value)?, stored(state.seq)?);
        transaction
            .prepare_cached(
                "INSERT INTO counters (name, value, seq, updated_at, request_id) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, seq = excluded.seq,
                   updated_at = excluded.updated_at, request_id = excluded.request_id",
            )
            .and_then(|mut statement| {
                statement.execute(params![counter.as_str(), value, seq, at.unix_millis(), state.request_id])
            })
            .map_err(sql_error)?;
    }
    Ok(())
}

/// The latest committed value of each counter the group changed.
fn latest_changes(jobs: &[Job], outcomes: &[ChangeOutcome], at: Timestamp) -> Vec<CounterChange> {
    let committed = jobs.iter().zip(outcomes).filter_map(|(job, outcome)| match outcome {
        ChangeOutcome::Committed { value, seq, .. } => {
            Some(CounterChange { counter: job.command.counter.clone(), value: *value, seq: *seq, updated_at: at })
        }
        ChangeOutcome::Replayed { .. } | ChangeOutcome::Refused(_) => None,
    });
    acidizer_core::live::coalesce(committed)
}

/// Deletes up to [`PRUNE_BATCH`] answers past their retention, oldest first; tells how many.
fn prune_expired_keys(connection: &Connection) -> usize {
    let now = Timestamp::now().unix_seconds();
    let pruned = connection.execute(
        "DELETE FROM idempotency WHERE key IN
           (SELECT key FROM idempotency WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2)",
        params![now, PRUNE_BATCH as i64],
    );
    match pruned {
        Ok(0) => 0,
        Ok(pruned) => {
            tracing::info!(pruned, "forgot idempotency keys past their retention");
            pruned
        }
        Err(error) => {
            tracing::warn!(error = error_chain(&error), "could not prune expired idempotency keys");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Committing, Head, Job, ProbeRoom, commit_group, commit_probe};
    use crate::checkpointer::WalBound;
    use crate::syncer::{Committed, Syncer};
    use crate::unsynced::Unsynced;
    use crate::{DATABASE_FILE, Synchronous, reader, schema};
    use acidizer_core::{
        ChangeCommand, ChangeOutcome, CounterMax, CounterName, Delta, HistoryLimit, HistoryQuery, RequestId,
        StoreError, Timestamp,
    };
    use rusqlite::Connection;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    use tokio::sync::oneshot;

    fn job(delta: Delta) -> (Job, oneshot::Receiver<Result<ChangeOutcome, StoreError>>) {
        let command = ChangeCommand {
            counter: CounterName::parse("c").unwrap(),
            delta,
            request_id: RequestId::generate(),
            max: CounterMax::DEFAULT,
            at: Timestamp::now(),
            deadline: Instant::now() + Duration::from_secs(10),
        };
        let (reply, answer) = oneshot::channel();
        (Job { command, reply }, answer)
    }

    /// A writer's connection on a new database, a reading connection beside it, and a syncer that never syncs.
    struct Fixture {
        _dir: tempfile::TempDir,
        connection: Connection,
        reading: Connection,
        unsynced: Arc<Unsynced>,
        failed: Arc<AtomicBool>,
        syncer: Syncer,
        heads: HashMap<CounterName, Head>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(DATABASE_FILE);
            let connection = schema::open_writer(&path, Synchronous::Full, WalBound::STORE.kept_bytes).unwrap();
            let reading = schema::open_reader(&path).unwrap();
            let (unsynced, failed) = (Arc::new(Unsynced::default()), Arc::new(AtomicBool::new(false)));
            let syncer = Syncer::detached(Arc::clone(&unsynced), Arc::clone(&failed));
            Self { _dir: dir, connection, reading, unsynced, failed, syncer, heads: HashMap::new() }
        }

        fn commit(&mut self, jobs: Vec<Job>, committed: &mut Committed) -> bool {
            commit_group(&mut self.connection, &mut self.heads, &self.syncer, jobs, false, committed)
                == Committing::Committed
        }

        /// What readers show of the counter `c`: value, seq, and its history's (seq, value) pairs.
        fn shown(&self) -> (u64, u64, Vec<(u64, u64)>) {
            let counter = CounterName::parse("c").unwrap();
            let snapshot = reader::snapshot(&self.reading, &self.unsynced, counter.clone()).unwrap();
            let query = HistoryQuery { before: None, limit: HistoryLimit::parse("100").unwrap() };
            let history = reader::history(&self.reading, &self.unsynced, &counter, query).unwrap();
            (snapshot.value, snapshot.seq, history.iter().map(|record| (record.seq, record.value)).collect())
        }
    }

    /// A committed group is neither answered nor shown to readers (value, history) until the syncer has made it
    /// durable; before, readers show the counter as of its last durable change.
    #[test]
    fn readers_see_a_commit_once_it_is_durable() {
        let mut fixture = Fixture::new();
        let mut durable = Committed::default();
        assert!(fixture.commit(vec![job(Delta::Increment).0], &mut durable));
        assert_eq!(fixture.shown(), (0, 0, vec![]), "nothing is shown before the first fsync");
        durable.durable(&fixture.unsynced, &None);
        assert_eq!(fixture.shown(), (1, 1, vec![(1, 1)]));

        let mut pending = Committed::default();
        let ((second, mut answered), (third, _)) = (job(Delta::Increment), job(Delta::Decrement));
        assert!(fixture.commit(vec![second, third], &mut pending));
        assert_eq!(fixture.shown(), (1, 1, vec![(1, 1)]), "a commit not yet durable is not shown");
        assert!(answered.try_recv().is_err(), "nor answered");
        pending.durable(&fixture.unsynced, &None);
        assert_eq!(fixture.shown(), (1, 3, vec![(3, 1), (2, 2), (1, 1)]));
        assert!(matches!(answered.try_recv(), Ok(Ok(ChangeOutcome::Committed { value: 2, seq: 2, .. }))));
    }

    /// Once an fsync has failed, the writer commits nothing more: the group is rolled back and answered with an
    /// error.
    #[test]
    fn after_a_failed_fsync_nothing_more_is_committed() {
        let mut fixture = Fixture::new();
        fixture.failed.store(true, Ordering::Release);
        let (change, mut answered) = job(Delta::Increment);
        let mut committed = Committed::default();
        assert!(!fixture.commit(vec![change], &mut committed));
        assert!(committed.is_empty());
        assert!(matches!(answered.try_recv(), Ok(Err(StoreError::Unavailable(_)))));
        let (counter, seq): (Option<String>, Option<i64>) = fixture
            .connection
            .query_row("SELECT max(counter), max(seq) FROM audit", [], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        assert_eq!((counter, seq), (None, None), "the group was rolled back");
    }

    /// The WAL's length in frames (each a page and its 24-byte header, after the WAL's 32-byte header).
    fn wal_frames(dir: &std::path::Path, page_size: u64) -> u64 {
        let wal = std::fs::metadata(dir.join(format!("{DATABASE_FILE}-wal"))).map_or(0, |metadata| metadata.len());
        wal.saturating_sub(32) / (page_size + 24)
    }

    /// `/health`'s probe writes more pages than any one change does — the largest names and keys, on counters new
    /// and old, through the splits of every tree — so that a disk with room for the probe has
    /// room for a change.
    #[test]
    fn a_probe_writes_more_pages_than_any_change() {
        let mut fixture = Fixture::new();
        let page_size = 2048;
        let name = |n: usize| CounterName::parse(&format!("{n:0>64}")).unwrap();
        let mut most = 0;
        for n in 0..30000 {
            if n % 1000 == 0 {
                // The WAL starts over (from the writer's connection: nothing reads), as the checkpointer has it.
                let _: i64 =
                    fixture.connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0)).unwrap();
            }
            let (mut change, _) = job(Delta::Increment);
            change.command.counter = name(n % 40);
            change.command.request_id = RequestId::parse(&format!("{n:x>128}")).unwrap();
            let before = wal_frames(fixture._dir.path(), page_size);
            assert!(fixture.commit(vec![change], &mut Committed::default()));
            most = most.max(wal_frames(fixture._dir.path(), page_size) - before);
        }
        let room = ProbeRoom::of(&fixture.connection);
        let mut least = u64::MAX;
        for _ in 0..3 {
            let before = wal_frames(fixture._dir.path(), page_size);
            commit_probe(&fixture.connection, &room).unwrap();
            least = least.min(wal_frames(fixture._dir.path(), page_size) - before);
        }
        println!("the most pages a change wrote: {most}; the fewest a probe wrote: {least}");
        assert!(least > most, "a probe wrote {least} pages, a change up to {most}");
    }

    /// A group with no room for all of it on the disk commits what fits, in halves, down to one change; the changes
    /// that find no room fail, and the rest of the group with them once one change alone did not fit.
    #[test]
    fn a_group_with_no_room_for_all_of_it_commits_what_fits() {
        let mut fixture = Fixture::new();
        let pages: i64 = fixture.connection.pragma_query_value(None, "page_count", |row| row.get(0)).unwrap();
        // The database may grow by a few pages only: room for some new counters, not for 200.
        fixture.connection.pragma_update(None, "max_page_count", pages + 8).unwrap();
        let (jobs, answers): (Vec<Job>, Vec<_>) = (0..200)
            .map(|n| {
                let (mut change, answer) = job(Delta::Increment);
                change.command.counter = CounterName::parse(&format!("{n:0>64}")).unwrap();
                (change, answer)
            })
            .unzip();
        let mut committed = Committed::default();
        let outcome =
            commit_group(&mut fixture.connection, &mut fixture.heads, &fixture.syncer, jobs, false, &mut committed);
        let failed = answers
            .into_iter()
            .filter_map(|mut answer| answer.try_recv().ok())
            .inspect(|answer| assert!(matches!(answer, Err(StoreError::Unavailable(_))), "{answer:?}"))
            .count();
        println!("committed {} of 200 changes; {failed} failed", committed.answers.len());
        assert_eq!(outcome, Committing::Committed);
        assert!(!committed.answers.is_empty() && failed > 0, "{} committed, {failed} failed", committed.answers.len());
        assert_eq!(committed.answers.len() + failed, 200, "every change is answered, once");
    }
}

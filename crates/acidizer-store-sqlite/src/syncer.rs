//! Makes the writer's commits durable, beside it. The writer commits a group to the WAL without an fsync
//! (`synchronous=NORMAL`, under which SQLite keeps the WAL consistent but not durable) and hands the group's answers
//! here; this thread fsyncs the WAL and only then answers, publishes the group's changes and lets readers see them
//! (unsynced.rs). Meanwhile the writer commits the next group: one fsync covers every group committed before it
//! began, so the writer's work and the disk's flush overlap instead of taking turns.
//!
//! A failed fsync may have dropped what it was to make durable, and a later one would not say so: the first failure
//! (or a checkpoint's failure on the disk, checkpointer.rs) fails every answer still waiting (their outcome is
//! unknown), and stops the writer — no commit after it, nor any other write — and the checkpointer, which copies
//! nothing more into the database, not even when its connection closes.

use crate::failure::Failure;
use crate::unsynced::Unsynced;
use acidizer_core::telemetry::error_chain;
use acidizer_core::{ChangeOutcome, CounterChange, StoreError};
use rusqlite::Connection;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Where committed changes go, if anywhere.
pub(crate) type Changes = Option<mpsc::UnboundedSender<CounterChange>>;

/// What one commit of the writer answers once it is durable.
#[derive(Default)]
pub(crate) struct Committed {
    /// Each change's answer, including replays and refusals: they were decided on what the commits before hold.
    pub(crate) answers: Vec<(oneshot::Sender<Result<ChangeOutcome, StoreError>>, ChangeOutcome)>,
    /// The `/health` probes whose write committed.
    pub(crate) probes: Vec<oneshot::Sender<Result<(), StoreError>>>,
    /// The latest change of each counter each of the commit's transactions changed, in order: published, and what
    /// readers may now see of each (every counter the commit changed must be here, or readers would stay behind on
    /// it).
    pub(crate) changes: Vec<CounterChange>,
}

impl Committed {
    pub(crate) fn is_empty(&self) -> bool {
        self.answers.is_empty() && self.probes.is_empty()
    }

    pub(crate) fn durable(self, unsynced: &Unsynced, publish: &Changes) {
        for change in self.changes {
            unsynced.synced(&change.counter, change.seq);
            if let Some(publish) = publish {
                // No one listening is no reason to fail a commit.
                let _ = publish.send(change);
            }
        }
        for (reply, outcome) in self.answers {
            let _ = reply.send(Ok(outcome));
        }
        for probe in self.probes {
            let _ = probe.send(Ok(()));
        }
    }

    fn failed(self, error: &StoreError) {
        for (reply, _) in self.answers {
            let _ = reply.send(Err(error.clone()));
        }
        for probe in self.probes {
            let _ = probe.send(Err(error.clone()));
        }
    }
}

/// The writer's end of the syncer.
pub(crate) struct Syncer {
    committed: std::sync::mpsc::Sender<Committed>,
    unsynced: Arc<Unsynced>,
    failed: Arc<AtomicBool>,
}

impl Syncer {
    /// Before the writer commits `counter` from `seq` `before` to `after` (see [`Unsynced::committing`]).
    pub(crate) fn committing(&self, counter: &acidizer_core::CounterName, before: u64, after: u64) {
        self.unsynced.committing(counter, before, after);
    }

    pub(crate) fn send(&self, committed: Committed) {
        if committed.is_empty() {
            return;
        }
        if let Err(std::sync::mpsc::SendError(committed)) = self.committed.send(committed) {
            // Nothing will make commits durable any more: the writer stops too.
            self.fail();
            committed.failed(&unknown_outcome());
        }
    }

    /// A syncer with no thread behind it, for tests of the writer: what is sent to it is never answered.
    #[cfg(test)]
    pub(crate) fn detached(unsynced: Arc<Unsynced>, failed: Arc<AtomicBool>) -> Self {
        Self { committed: std::sync::mpsc::channel().0, unsynced, failed }
    }

    /// Commits can no longer be made durable (the disk failed): every answer waiting fails, and the writer stops.
    pub(crate) fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// Whether commits can no longer be made durable: the writer stops.
    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// Opens the WAL of `connection`'s database (under the name SQLite gives it: the database's path with symbolic
/// links resolved) and fsyncs it: what an earlier process committed without its fsync is made durable before
/// anything is read. The writer's connection has made the file by then (its first read opens the WAL).
pub(crate) fn open_wal(connection: &Connection) -> std::io::Result<File> {
    let database = connection.path().filter(|path| !path.is_empty());
    let database =
        database.ok_or_else(|| std::io::Error::other("the database has no file, or its path is not UTF-8"))?;
    let wal = File::open(format!("{database}-wal"))?;
    wal.sync_data()?;
    Ok(wal)
}

/// Starts the syncer: it fsyncs `wal` (none: commits are answered as they are, for tests of what durability rests
/// on), then marks commits durable in `unsynced` and publishes their changes to `publish`; it sets `failed` when an
/// fsync fails. It stops once the writer's end is dropped and every commit sent is answered.
pub(crate) fn spawn(
    wal: Option<File>,
    unsynced: Arc<Unsynced>,
    publish: Changes,
    failed: Arc<AtomicBool>,
) -> std::io::Result<Syncer> {
    let (committed, queue) = std::sync::mpsc::channel();
    let (marks, failing) = (Arc::clone(&unsynced), Arc::clone(&failed));
    std::thread::Builder::new().name("sqlite-syncer".to_owned()).spawn(move || {
        run(&queue, wal.as_ref(), &marks, &publish, &failing);
    })?;
    Ok(Syncer { committed, unsynced, failed })
}

/// What a change whose commit may or may not be durable is answered.
fn unknown_outcome() -> StoreError {
    StoreError::unavailable(Failure::UnknownOutcome)
}

fn run(
    queue: &std::sync::mpsc::Receiver<Committed>,
    wal: Option<&File>,
    unsynced: &Unsynced,
    publish: &Changes,
    failed: &AtomicBool,
) {
    while let Ok(first) = queue.recv() {
        // Every commit made so far is in the WAL: one fsync makes them all durable.
        let ready: Vec<Committed> = std::iter::once(first).chain(queue.try_iter()).collect();
        let synced =
            if failed.load(Ordering::Acquire) { Err(None) } else { wal.map_or(Ok(()), File::sync_data).map_err(Some) };
        match synced {
            Ok(()) => ready.into_iter().for_each(|committed| committed.durable(unsynced, publish)),
            Err(error) => {
                if let Some(error) = error {
                    tracing::error!(
                        error = error_chain(&error),
                        "the WAL's fsync failed: nothing more is answered as durable"
                    );
                    failed.store(true, Ordering::Release);
                }
                let error = unknown_outcome();
                ready.into_iter().for_each(|committed| committed.failed(&error));
            }
        }
    }
    tracing::debug!("sqlite syncer stopped");
}

#[cfg(test)]
mod tests {
    use super::{Committed, spawn};
    use crate::unsynced::Unsynced;
    use acidizer_core::{ChangeOutcome, StoreError};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use tokio::sync::oneshot;

    /// A failed fsync answers what it was to make durable with an error, fails every later commit without trying
    /// again, and tells the writer to stop.
    #[test]
    fn a_failed_fsync_fails_its_commits_and_every_later_one() {
        // fsync of a character device fails (EINVAL), as a disk's failed write-back would.
        let wal = std::fs::File::open("/dev/null").unwrap();
        let failed = Arc::new(AtomicBool::new(false));
        let syncer = spawn(Some(wal), Arc::new(Unsynced::default()), None, Arc::clone(&failed)).unwrap();
        let answer = |syncer: &super::Syncer| {
            let (reply, answer) = oneshot::channel();
            let outcome = ChangeOutcome::Committed { value: 1, seq: 1, body: String::new() };
            syncer.send(Committed { answers: vec![(reply, outcome)], ..Committed::default() });
            answer.blocking_recv().unwrap()
        };
        assert!(matches!(answer(&syncer), Err(StoreError::Unavailable(_))));
        assert!(syncer.has_failed());
        assert!(matches!(answer(&syncer), Err(StoreError::Unavailable(_))), "a later fsync is not trusted");
    }
}

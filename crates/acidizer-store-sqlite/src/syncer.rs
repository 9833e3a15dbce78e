//! Makes the writer's commits durable, beside it. The writer commits a group to the WAL without an fsync
//! (`synchronous=NORMAL`, under which SQLite keeps the WAL consistent but not durable) and hands the group's answers
//! here; this thread fsyncs the WAL and only then answers, publishes the group's changes and lets readers see them
//! (unsynced.rs). Meanwhile the writer commits the next group: one fsync covers every group committed before it
//! began, so the writer's work and the disk's flush overlap instead of taking turns.
//!
//! A failed fsync may have dropped what it was to make durable, and a later one would not say so: the first failure
//! fails every answer still waiting and stops the writer.

use crate::unsynced::Unsynced;
use acidizer_core::{ChangeOutcome, CounterChange, StoreError};
use std::fs::File;
use std::path::PathBuf;
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
    /// The latest change of each counter the commit changed.
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
    failed: Arc<AtomicBool>,
}

impl Syncer {
    pub(crate) fn send(&self, committed: Committed) {
        if let Err(std::sync::mpsc::SendError(committed)) = self.committed.send(committed) {
            committed.failed(&StoreError::Unavailable("the syncer has stopped".to_owned()));
        }
    }

    /// Whether an fsync failed: the writer stops.
    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// Starts the syncer: it fsyncs the WAL at `wal` (none: commits are answered as they are, for tests of what
/// durability rests on), then marks commits durable in `unsynced` and publishes their changes to `publish`. It
/// stops once the writer's end is dropped and every commit sent is answered.
pub(crate) fn spawn(wal: Option<PathBuf>, unsynced: Arc<Unsynced>, publish: Changes) -> std::io::Result<Syncer> {
    let (committed, queue) = std::sync::mpsc::channel();
    let failed = Arc::new(AtomicBool::new(false));
    let failing = Arc::clone(&failed);
    std::thread::Builder::new().name("acidizer-sqlite-sync".to_owned()).spawn(move || {
        run(&queue, Wal { path: wal, file: None }, &unsynced, &publish, &failing);
    })?;
    Ok(Syncer { committed, failed })
}

/// The WAL file, opened on the first fsync (after the first commit, which creates it).
struct Wal {
    path: Option<PathBuf>,
    file: Option<File>,
}

impl Wal {
    fn sync(&mut self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let file = match &self.file {
            Some(file) => file,
            None => self.file.insert(File::open(path)?),
        };
        file.sync_data()
    }
}

fn run(
    queue: &std::sync::mpsc::Receiver<Committed>,
    mut wal: Wal,
    unsynced: &Unsynced,
    publish: &Changes,
    failed: &AtomicBool,
) {
    while let Ok(first) = queue.recv() {
        // Every commit made so far is in the WAL: one fsync makes them all durable.
        let ready: Vec<Committed> = std::iter::once(first).chain(queue.try_iter()).collect();
        let synced = if failed.load(Ordering::Acquire) { Err(None) } else { wal.sync().map_err(Some) };
        match synced {
            Ok(()) => ready.into_iter().for_each(|committed| committed.durable(unsynced, publish)),
            Err(error) => {
                if let Some(error) = error {
                    tracing::error!(%error, "the WAL's fsync failed: nothing more is answered as durable");
                    failed.store(true, Ordering::Release);
                }
                let error = StoreError::Unavailable("the WAL could not be made durable".to_owned());
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
    use tokio::sync::oneshot;

    /// A failed fsync answers what it was to make durable with an error, fails every later commit without trying
    /// again, and tells the writer to stop.
    #[test]
    fn a_failed_fsync_fails_its_commits_and_every_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let syncer = spawn(Some(dir.path().join("no-such-wal")), Arc::new(Unsynced::default()), None).unwrap();
        let answer = |syncer: &super::Syncer| {
            let (reply, answer) = oneshot::channel();
            let outcome = ChangeOutcome::Committed { value: 1, seq: 1, body: String::new() };
            syncer.send(Committed { answers: vec![(reply, outcome)], ..Committed::default() });
            answer.blocking_recv().unwrap()
        };
        assert!(matches!(answer(&syncer), Err(StoreError::Unavailable(_))));
        assert!(syncer.has_failed());
        std::fs::write(dir.path().join("no-such-wal"), b"").unwrap();
        assert!(matches!(answer(&syncer), Err(StoreError::Unavailable(_))), "a later fsync is not trusted");
    }
}

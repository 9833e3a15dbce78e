//! WAL checkpoints off the writer's path. SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, so that commit — and every change waiting on it — would wait for the database file's copy and fsync.
//! The writer turns it off; this thread checkpoints from a connection of its own, `PASSIVE`ly (never waiting on the
//! writer nor holding it up), until the writer is gone.
//!
//! A passive checkpoint cannot copy the commits made while it runs, and SQLite writes a new WAL from its start
//! only once every commit is copied: under a load that keeps the writer busy the WAL would grow for as long as the
//! load lasts (by some 11 MB/s at 16 000 increments/s), and stay that large. So once the WAL is long, the writer
//! is asked, after a checkpoint, to copy what is left (the pages committed while that checkpoint ran) itself,
//! between two groups; its next commit then starts the WAL over, and that commit cuts a WAL file past
//! `journal_size_limit` back to it.

use acidizer_core::telemetry::error_chain;
use rusqlite::Connection;
use rusqlite::config::DbConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How often the WAL is copied back into the database.
const EVERY: Duration = Duration::from_secs(1);

/// How long the WAL may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalBound {
    /// The WAL's length from which the writer is asked to finish a checkpoint.
    pub start_over_at_bytes: i64,
    /// A WAL file larger than this is cut back to it by the first commit after the WAL starts over.
    pub kept_bytes: i64,
}

impl WalBound {
    /// Finishing a checkpoint holds the changes waiting on the writer for some 40 – 70 ms under load (the database
    /// file's fsync waits for the file system's journal), so it is kept rare: about once every 15 – 20 s under a
    /// load that keeps the writer busy. The file kept is above what the WAL reaches before it starts over under a
    /// steady load, so that the file is reused, not cut: cutting it frees blocks and holds the commit that does it.
    pub(crate) const STORE: WalBound = WalBound { start_over_at_bytes: 256 << 20, kept_bytes: 320 << 20 };
}

/// What a WAL frame takes beside its page.
const FRAME_HEADER: i64 = 24;

/// `PRAGMA wal_checkpoint`'s row: whether it could not run, the WAL's frames, the frames copied; `None` when it
/// failed in a way the next checkpoint may mend (logged here). Fails when it failed reading, writing or syncing a
/// file: what it was copying may be lost, and a retry might copy it on as if it were not. The store then stops
/// writing (syncer.rs).
fn checkpoint(connection: &Connection) -> rusqlite::Result<Option<(bool, i64, i64)>> {
    match connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
    {
        Ok(row) => Ok(Some(row)),
        Err(error) if error.sqlite_error_code() == Some(rusqlite::ErrorCode::SystemIoFailure) => Err(error),
        Err(error) => {
            tracing::warn!(error = error_chain(&error), "WAL checkpoint failed; the next one tries again");
            Ok(None)
        }
    }
}

/// Keeps SQLite from checkpointing the WAL when `connection` closes (as the last connection of the database does):
/// after a failed fsync, what the WAL holds stays there, for the next start to recover what the disk kept.
pub(crate) fn keep_wal_on_close(connection: &Connection) {
    if let Err(error) = connection.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true) {
        tracing::error!(error = error_chain(&error), "cannot keep the WAL from being checkpointed on close");
    }
}

/// Checkpoints `connection`'s database every [`EVERY`], until `writer_alive` is closed (its sender dropped) or
/// `failed` is set (an fsync of the WAL failed: what the WAL holds is not copied on, not even when the connection
/// closes); sets `start_over` after a checkpoint of a WAL of `bound.start_over_at_bytes` or more, and `failed` when
/// a checkpoint fails on a file's I/O.
pub(crate) fn spawn(
    connection: Connection,
    writer_alive: Receiver<()>,
    start_over: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
    bound: WalBound,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("wal-checkpoint".to_owned()).spawn(move || {
        // An existing database keeps the page size it was made with.
        let page_size = connection.pragma_query_value(None, "page_size", |row| row.get::<_, i64>(0)).unwrap_or(4096);
        let start_over_at = bound.start_over_at_bytes / (page_size + FRAME_HEADER);
        let has_failed = || failed.load(Ordering::Acquire);
        while let Err(RecvTimeoutError::Timeout) = writer_alive.recv_timeout(EVERY) {
            if has_failed() {
                break;
            }
            match checkpoint(&connection) {
                Ok(Some((_, frames, _))) if frames >= start_over_at => start_over.store(true, Ordering::Release),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(
                        error = error_chain(&error),
                        "a WAL checkpoint failed on the disk: the store stops writing"
                    );
                    failed.store(true, Ordering::Release);
                }
            }
        }
        if has_failed() {
            tracing::error!("the checkpointer stops: the disk failed, what the WAL holds is not copied on");
            keep_wal_on_close(&connection);
            return;
        }
        // The writer stopped: one last, complete checkpoint leaves a small WAL behind.
        let _ = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0));
        tracing::debug!("sqlite checkpointer stopped");
    })?;
    Ok(())
}

/// The writer's part, between two groups, when `start_over` is set: copies the rest of the WAL, after which SQLite
/// starts it over at the next commit (unless a reader is still on it: then after the next checkpoint, a second
/// later). A checkpoint that could not run (another was running) is asked for again. Fails only when the
/// checkpoint failed on a file's I/O (see [`checkpoint`]).
pub(crate) fn finish_if_asked(connection: &Connection, start_over: &AtomicBool) -> Result<(), rusqlite::Error> {
    // Read first: between nearly all groups nothing is asked, and a read costs less than a swap.
    if !start_over.load(Ordering::Relaxed) || !start_over.swap(false, Ordering::Acquire) {
        return Ok(());
    }
    match checkpoint(connection)? {
        Some((true, _, _)) => start_over.store(true, Ordering::Release),
        Some((false, frames, copied)) if copied < frames => {
            tracing::debug!(frames, copied, "a reader holds part of the WAL; it starts over later");
        }
        Some(_) | None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::WalBound;
    use crate::{DATABASE_FILE, SqliteStore, Synchronous};
    use acidizer_core::{ChangeCommand, CounterMax, CounterName, CounterStore, Delta, RequestId, Timestamp};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// After a failure on the disk, the last connection to close leaves the WAL as it is (SQLite would otherwise
    /// copy it into the database and delete it).
    #[test]
    fn a_connection_kept_from_checkpointing_on_close_leaves_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASE_FILE);
        let wal = dir.path().join(format!("{DATABASE_FILE}-wal"));
        for keep in [false, true] {
            let connection = crate::schema::open_writer(&path, Synchronous::Full, WalBound::STORE.kept_bytes).unwrap();
            let write = "INSERT INTO probe (id, written_at, room) VALUES (1, ?1, x'00')
                         ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at";
            connection.execute(write, [i64::from(keep)]).unwrap();
            if keep {
                super::keep_wal_on_close(&connection);
            }
            drop(connection);
            let left = std::fs::metadata(&wal).map_or(0, |metadata| metadata.len());
            assert_eq!(left > 0, keep, "kept from checkpointing on close: {keep}; the WAL left: {left} bytes");
        }
    }

    /// Under a load that never lets the writer rest, the WAL still starts over: its file is cut back (to the
    /// journal size limit) rather than growing for as long as the load lasts. The bound is small here, and the
    /// file kept below it, so that a few seconds show the WAL start over by its file being cut.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_a_steady_load() {
        let dir = tempfile::tempdir().unwrap();
        let bound = WalBound { start_over_at_bytes: 512 << 10, kept_bytes: 64 << 10 };
        let store = Arc::new(SqliteStore::open_inner(dir.path(), Synchronous::Full, bound, None).unwrap());
        let until = Instant::now() + Duration::from_secs(5);
        let clients: Vec<_> = (0..32)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    while Instant::now() < until {
                        let command = ChangeCommand {
                            counter: CounterName::parse("steady").unwrap(),
                            delta: Delta::Increment,
                            request_id: RequestId::generate(),
                            max: CounterMax::DEFAULT,
                            at: Timestamp::now(),
                            deadline: Instant::now() + Duration::from_secs(10),
                        };
                        store.change(command).await.unwrap();
                    }
                })
            })
            .collect();
        let wal = dir.path().join(format!("{DATABASE_FILE}-wal"));
        let (mut largest, mut cut_back) = (0, false);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let size = std::fs::metadata(&wal).map_or(0, |metadata| metadata.len());
            cut_back |= size < largest;
            largest = largest.max(size);
        }
        for client in clients {
            client.await.unwrap();
        }
        assert!(cut_back, "the WAL grew to {largest} bytes and was never cut back");
    }
}

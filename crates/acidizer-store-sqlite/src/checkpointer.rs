//! WAL checkpoints off the writer's path. SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, so that commit — and every change waiting on it — would wait for the database file's copy and fsync.
//! The writer turns it off; this thread checkpoints from a connection of its own, `PASSIVE`ly (never waiting on the
//! writer nor holding it up), until the writer is gone.

use rusqlite::Connection;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How often the WAL is copied back into the database.
const EVERY: Duration = Duration::from_secs(1);

/// Checkpoints `connection`'s database every [`EVERY`], until `writer_alive` is closed (its sender dropped).
pub(crate) fn spawn(connection: Connection, writer_alive: Receiver<()>) -> std::io::Result<()> {
    std::thread::Builder::new().name("acidizer-sqlite-checkpoint".to_owned()).spawn(move || {
        while let Err(RecvTimeoutError::Timeout) = writer_alive.recv_timeout(EVERY) {
            let checkpoint = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(0));
            if let Err(error) = checkpoint {
                tracing::warn!(%error, "WAL checkpoint failed; the next one tries again");
            }
        }
        // The writer stopped: one last, complete checkpoint leaves a small WAL behind.
        let _ = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0));
        tracing::debug!("sqlite checkpointer stopped");
    })?;
    Ok(())
}

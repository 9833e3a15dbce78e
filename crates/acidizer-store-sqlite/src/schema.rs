//! The database layout and the settings every connection runs with.

use crate::Synchronous;
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// The layout's version, kept in `PRAGMA user_version`. Version 1 (user_version 0) had increments only; version 2
/// kept each change's answer in `idempotency` as well as its audit record; version 3 wrote `/health`'s one small
/// row to a table `health`.
const VERSION: i64 = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counters (
    name       TEXT PRIMARY KEY,
    value      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    seq        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    counter    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    delta      INTEGER NOT NULL,
    value      INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (counter, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_request ON audit (request_id);
-- What `/health` writes to learn whether a change could commit: `room` takes as many pages as a change writes.
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, written_at INTEGER NOT NULL, room BLOB NOT NULL);
-- The answers remembered by versions 1 and 2, replayed as they were first sent until they expire. Since version 3
-- a change's answer is rebuilt from its audit record, found by request id.
CREATE TABLE IF NOT EXISTS idempotency (
    key        TEXT PRIMARY KEY,
    counter    TEXT NOT NULL,
    response   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    delta      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
";

/// From version 1 (increments only: every audit record's `seq` is its value, every change +1) to version 2, in
/// two steps around [`SCHEMA`], which creates the new audit table. Remembered answers keep their bodies, so
/// replays of them stay byte for byte what was first sent.
const MIGRATE_1_TO_2_BEFORE: &str = "
ALTER TABLE counters ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE counters SET seq = value;
ALTER TABLE audit RENAME TO audit_v1;
ALTER TABLE idempotency ADD COLUMN delta INTEGER NOT NULL DEFAULT 1;
";
const MIGRATE_1_TO_2_AFTER: &str = "
INSERT INTO audit (counter, seq, delta, value, request_id, at)
    SELECT counter, value, 1, value, request_id, at FROM audit_v1;
DROP TABLE audit_v1;
";

/// Brings the database to [`VERSION`] in one transaction: a new file gets the layout, a version 1 file is
/// migrated, a version 2 file gets the index of audit records by request id, a version 3 file `/health`'s new
/// table in place of its old one; a file from a newer version is refused.
fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == VERSION {
        return Ok(());
    }
    if version > VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the database has layout version {version}; this acidizer knows up to {VERSION}"
        )));
    }
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated the file meanwhile.
    let version: i64 = transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == VERSION {
        return Ok(());
    }
    let has_counters: bool = transaction.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'counters')",
        [],
        |row| row.get(0),
    )?;
    let from_version_1 = has_counters && version < 2;
    if from_version_1 {
        transaction.execute_batch(MIGRATE_1_TO_2_BEFORE)?;
    }
    transaction.execute_batch(SCHEMA)?;
    transaction.execute_batch("DROP TABLE IF EXISTS health")?;
    if from_version_1 {
        transaction.execute_batch(MIGRATE_1_TO_2_AFTER)?;
    }
    if has_counters {
        tracing::info!(from = version.max(1), "migrated the database to layout version {VERSION}");
    }
    transaction.pragma_update(None, "user_version", VERSION)?;
    transaction.commit()
}

/// The page size of a new database. Every commit writes each page it touched to the WAL whole: the counter's row,
/// the audit record and its request-id index, each a page. Rows are small (about 80 bytes), so 2 KiB pages
/// halve the bytes each commit writes and fsyncs; 1 KiB pages make the trees deeper and were slower still.
const PAGE_SIZE: i64 = 2048;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the one writing connection: WAL, `synchronous` as [`Synchronous::pragma`] says (at FULL, what the store
/// runs with, the syncer makes each commit durable before it is answered). A WAL file larger than
/// `wal_kept_bytes` is cut back to it by the first commit after the WAL starts over (checkpointer.rs).
pub(crate) fn open_writer(path: &Path, synchronous: Synchronous, wal_kept_bytes: i64) -> rusqlite::Result<Connection> {
    let mut connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // Takes effect only in a new file: an existing database keeps the page size it was made with.
    connection.pragma_update(None, "page_size", PAGE_SIZE)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", synchronous.pragma())?;
    // Checkpoints run on a thread of their own (checkpointer.rs), not inside the writer's commits.
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    connection.pragma_update(None, "journal_size_limit", wal_kept_bytes)?;
    migrate(&mut connection)?;
    Ok(connection)
}

/// Opens the connection that checkpoints the WAL (with `synchronous` above OFF, it fsyncs what it copies).
pub(crate) fn open_checkpointer(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "synchronous", synchronous.pragma())?;
    Ok(connection)
}

/// Opens a reading connection.
pub(crate) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "query_only", true)?;
    Ok(connection)
}

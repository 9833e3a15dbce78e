//! The naive durable rate `acidizer bench --baseline` compares with: one SQLite transaction per increment, one
//! after another, in WAL mode with `synchronous=FULL` — what a store without group commit does.

use rusqlite::Connection;
use std::path::Path;
use std::time::{Duration, Instant};

/// Increments per second over `duration`, each its own durable transaction, in a database under `dir`.
pub fn naive_rate(dir: &Path, duration: Duration) -> rusqlite::Result<f64> {
    let connection = Connection::open(dir.join("naive.sqlite"))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
         INSERT OR IGNORE INTO counters (name, value) VALUES ('naive', 0);",
    )?;
    let started = Instant::now();
    let mut increments = 0_u64;
    while started.elapsed() < duration {
        connection
            .execute_batch("BEGIN IMMEDIATE; UPDATE counters SET value = value + 1 WHERE name = 'naive'; COMMIT;")?;
        increments += 1;
    }
    Ok(increments as f64 / started.elapsed().as_secs_f64())
}

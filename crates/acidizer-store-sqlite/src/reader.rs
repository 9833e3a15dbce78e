//! Reads on their own connections: a small pool beside the writer. A read shows each counter as of its last
//! durable change: what the writer committed since, the syncer has yet to make durable (unsynced.rs).

use crate::failure::Unreadable;
use crate::unsynced::Unsynced;
use crate::{schema, sql_error};
use acidizer_core::{AuditRecord, CounterName, CounterSnapshot, Delta, HistoryQuery, RequestId, StoreError, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::PathBuf;
use std::sync::Mutex;

/// Idle reading connections, opened on demand and kept for the next read.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, idle: Mutex::new(Vec::new()) }
    }

    /// Opens the first connection now, so a bad file fails at start rather than on the first read.
    pub(crate) fn warm_up(&self) -> rusqlite::Result<()> {
        let connection = schema::open_reader(&self.path)?;
        self.release(connection);
        Ok(())
    }

    /// Runs `query` on an idle connection (opening one if none is idle); blocking.
    pub(crate) fn with<T>(&self, query: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => schema::open_reader(&self.path).map_err(sql_error)?,
        };
        let result = query(&connection);
        self.release(connection);
        result
    }

    fn release(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
    }
}

/// The counter's value, `seq` and time of its last durable change.
pub(crate) fn snapshot(
    connection: &Connection,
    unsynced: &Unsynced,
    counter: CounterName,
) -> Result<CounterSnapshot, StoreError> {
    let row = connection
        .prepare_cached("SELECT value, seq, updated_at FROM counters WHERE name = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([counter.as_str()], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                })
                .optional()
        })
        .map_err(sql_error)?;
    let Some((value, seq, updated_at)) = row else { return Ok(CounterSnapshot::zero(counter)) };
    let (mut value, seq, mut updated_at) = (stored_value(value)?, stored_value(seq)?, updated_at);
    // Asked only once the counter's row is read: see `Unsynced::durable_seq`.
    let seq = match unsynced.durable_seq(&counter) {
        Some(0) => return Ok(CounterSnapshot::zero(counter)),
        Some(durable) if durable < seq => {
            let at_seq = stored(durable)?;
            // The audit record of a `seq` the row has passed: committed before the row was read, and kept.
            let (durable_value, at) = connection
                .prepare_cached("SELECT value, at FROM audit WHERE counter = ?1 AND seq = ?2")
                .and_then(|mut statement| {
                    statement.query_row(params![counter.as_str(), at_seq], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                    })
                })
                .map_err(sql_error)?;
            (value, updated_at) = (stored_value(durable_value)?, at);
            durable
        }
        _ => seq,
    };
    Ok(CounterSnapshot { counter, value, seq, updated_at: Some(Timestamp::from_unix_millis(updated_at)) })
}

/// A page of the counter's history, up to its last durable change.
pub(crate) fn history(
    connection: &Connection,
    unsynced: &Unsynced,
    counter: &CounterName,
    query: HistoryQuery,
) -> Result<Vec<AuditRecord>, StoreError> {
    let head: Option<i64> = connection
        .prepare_cached("SELECT seq FROM counters WHERE name = ?1")
        .and_then(|mut statement| statement.query_row([counter.as_str()], |row| row.get(0)).optional())
        .map_err(sql_error)?;
    // Asked only once the counter's row is read: see `Unsynced::durable_seq`.
    let shown = match unsynced.durable_seq(counter) {
        Some(durable) => stored(durable)?.min(head.unwrap_or(0)),
        None => head.unwrap_or(0),
    };
    let before = query.before.map_or(i64::MAX, |before| i64::try_from(before).unwrap_or(i64::MAX)).min(shown + 1);
    // Every record up to `shown` was committed before the head was read: a later read finds them all.
    let mut statement = connection
        .prepare_cached(
            "SELECT seq, delta, value, request_id, at FROM audit WHERE counter = ?1 AND seq < ?2
             ORDER BY seq DESC LIMIT ?3",
        )
        .map_err(sql_error)?;
    let rows = statement
        .query_map(params![counter.as_str(), before, query.limit.get()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .map_err(sql_error)?;
    rows.map(|row| {
        let (seq, delta, value, request_id, at) = row.map_err(sql_error)?;
        let corrupt = |cause: Box<dyn std::error::Error + Send + Sync>| {
            StoreError::corrupt(Unreadable::AuditRecord { seq, counter: counter.clone(), cause })
        };
        Ok(AuditRecord {
            seq: stored_value(seq)?,
            delta: Delta::from_i64(delta).map_err(|error| corrupt(error.into()))?,
            value: stored_value(value)?,
            request_id: RequestId::parse(&request_id).map_err(|error| corrupt(error.into()))?,
            at: Timestamp::from_unix_millis(at),
        })
    })
    .collect()
}

pub(crate) fn ping(connection: &Connection) -> Result<(), StoreError> {
    connection.query_row("SELECT 1", [], |_| Ok(())).map_err(sql_error)
}

/// A value or `seq` as SQLite stores it.
pub(crate) fn stored(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::corrupt(Unreadable::Overflow(n)))
}

/// A stored value or `seq`, which is never negative.
pub(crate) fn stored_value(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(Unreadable::Negative(value)))
}

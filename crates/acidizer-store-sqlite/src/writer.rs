//! The one writer: group commit of changes, each answered once its commit is durable.

use crate::reader::stored_value;
use crate::sql_error;
use acidizer_core::store::IDEMPOTENCY_RETENTION;
use acidizer_core::{Change, ChangeCommand, ChangeOutcome, CounterChange, CounterName, Delta, StoreError, Timestamp};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The most changes one commit carries.
const MAX_GROUP: usize = 1024;
/// How often remembered answers past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

pub(crate) struct Job {
    pub(crate) command: ChangeCommand,
    pub(crate) reply: oneshot::Sender<Result<ChangeOutcome, StoreError>>,
}

/// Where committed changes go, if anywhere.
type Changes = Option<mpsc::UnboundedSender<CounterChange>>;

pub(crate) fn spawn(
    connection: Connection,
    queue: mpsc::Receiver<Job>,
    commits: Arc<AtomicU64>,
    changes: Changes,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("acidizer-sqlite-writer".to_owned())
        .spawn(move || run(connection, queue, &commits, &changes))?;
    Ok(())
}

fn run(mut connection: Connection, mut queue: mpsc::Receiver<Job>, commits: &AtomicU64, changes: &Changes) {
    let mut last_prune: Option<Instant> = None;
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if commit_group(&mut connection, group, changes) {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            prune_expired_keys(&connection);
            last_prune = Some(Instant::now());
        }
    }
    tracing::debug!("sqlite writer stopped");
}

/// Commits every job of the group in one transaction, then answers each; tells whether it committed.
fn commit_group(connection: &mut Connection, group: Vec<Job>, changes: &Changes) -> bool {
    let now = Instant::now();
    let (jobs, late): (Vec<Job>, Vec<Job>) = group.into_iter().partition(|job| job.command.deadline > now);
    for job in late {
        let _ = job.reply.send(Err(StoreError::Timeout));
    }
    if jobs.is_empty() {
        return false;
    }
    let stamped = Timestamp::now();
    let applied = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_error).and_then(
        |transaction| {
            let outcomes =
                jobs.iter().map(|job| apply(&transaction, &job.command, stamped)).collect::<Result<Vec<_>, _>>()?;
            transaction.commit().map_err(sql_error)?;
            Ok(outcomes)
        },
    );
    match applied {
        Ok(outcomes) => {
            if let Some(changes) = changes {
                publish(changes, &jobs, &outcomes, stamped);
            }
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
            true
        }
        Err(error) => {
            tracing::error!(%error, changes = jobs.len(), "group commit failed; nothing of it was committed");
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Unavailable(error.to_string())));
            }
            false
        }
    }
}

/// Replays a known request id, refuses a change past a bound, or writes the counter, its audit record and the
/// remembered answer.
fn apply(transaction: &Transaction<'_>, command: &ChangeCommand, at: Timestamp) -> Result<ChangeOutcome, StoreError> {
    let remembered = transaction
        .prepare_cached("SELECT counter, delta, response FROM idempotency WHERE key = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([command.request_id.as_str()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
                })
                .optional()
        })
        .map_err(sql_error)?;
    if let Some((counter, delta, body)) = remembered {
        let corrupt = |what: String| StoreError::Corrupt(format!("remembered answer {}: {what}", command.request_id));
        let counter = CounterName::parse(&counter).map_err(|_| corrupt(format!("counter {counter:?}")))?;
        let delta = Delta::from_i64(delta).map_err(|error| corrupt(error.to_string()))?;
        return Ok(ChangeOutcome::Replayed { counter, delta, body });
    }

    let current = transaction
        .prepare_cached("SELECT value, seq FROM counters WHERE name = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([command.counter.as_str()], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
                .optional()
        })
        .map_err(sql_error)?;
    let (value, seq) = match current {
        Some((value, seq)) => (stored_value(value)?, stored_value(seq)?),
        None => (0, 0),
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
    let body = change.response_body();
    let stored = |n: u64| i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("counter overflow at {n}")));
    let (stored_value, stored_seq) = (stored(change.value)?, stored(change.seq)?);
    let expires_at = at.unix_seconds() + IDEMPOTENCY_RETENTION.as_secs() as i64;
    let (counter, request_id, delta) = (command.counter.as_str(), command.request_id.as_str(), command.delta.as_i64());
    let written: rusqlite::Result<()> = (|| {
        transaction
            .prepare_cached(
                "INSERT INTO counters (name, value, seq, updated_at, request_id) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, seq = excluded.seq,
                   updated_at = excluded.updated_at, request_id = excluded.request_id",
            )?
            .execute(params![counter, stored_value, stored_seq, at.unix_millis(), request_id])?;
        transaction
            .prepare_cached(
                "INSERT INTO audit (counter, seq, delta, value, request_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![counter, stored_seq, delta, stored_value, request_id, at.unix_millis()])?;
        transaction
            .prepare_cached(
                "INSERT INTO idempotency (key, counter, delta, response, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![request_id, counter, delta, body, expires_at])?;
        Ok(())
    })();
    written.map_err(sql_error)?;
    Ok(ChangeOutcome::Committed { value: change.value, seq: change.seq, body })
}

/// Sends the latest committed value of each counter the group changed.
fn publish(changes: &mpsc::UnboundedSender<CounterChange>, jobs: &[Job], outcomes: &[ChangeOutcome], at: Timestamp) {
    let committed = jobs.iter().zip(outcomes).filter_map(|(job, outcome)| match outcome {
        ChangeOutcome::Committed { value, seq, .. } => {
            Some(CounterChange { counter: job.command.counter.clone(), value: *value, seq: *seq, updated_at: at })
        }
        ChangeOutcome::Replayed { .. } | ChangeOutcome::Refused(_) => None,
    });
    for change in acidizer_core::live::coalesce(committed) {
        // No one listening is no reason to fail a commit.
        let _ = changes.send(change);
    }
}

fn prune_expired_keys(connection: &Connection) {
    let now = Timestamp::now().unix_seconds();
    match connection.execute("DELETE FROM idempotency WHERE expires_at < ?1", [now]) {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "forgot idempotency keys past their retention"),
        Err(error) => tracing::warn!(%error, "could not prune expired idempotency keys"),
    }
}

//! Where `acidizer serve` and `acidizer bench` write their logs: stderr, through tracing-appender's non-blocking
//! writer, so a request's line is handed to a thread of its own instead of waiting for the write. Lines are
//! coloured only on a terminal. `RUST_LOG` overrides the default filter.

use crate::cli::LogFormat;
use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

/// The writer thread's guard while the process runs: dropped at exit, or by a panic that aborts the process, it
/// writes out what is queued (waiting a second at most).
static WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Why the logs could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set the logs up")]
pub struct LogsError(#[source] tracing_subscriber::util::TryInitError);

/// The logs while they are set up; dropped, the lines queued so far are written out.
pub struct Logs(());

impl Drop for Logs {
    fn drop(&mut self) {
        flush();
    }
}

/// Sets the logs up: `default_filter` unless `RUST_LOG` says otherwise, in `format`.
pub fn init(default_filter: &str, format: LogFormat) -> Result<Logs, LogsError> {
    use tracing_subscriber::util::SubscriberInitExt;
    // The writer thread writes what is queued in one go, and flushes whenever the queue is empty. A stalled stderr (a
    // pipe nobody reads) never holds up a request: past 128 000 queued lines, new ones are dropped.
    let (writer, guard) = NonBlockingBuilder::default().finish(std::io::BufWriter::new(std::io::stderr()));
    *WRITER.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |panic| {
        // A panic that aborts the process (the release profile) would leave the queued lines unwritten: they are
        // written out first. A panic that unwinds leaves the writer running; the lines are written at exit.
        if cfg!(panic = "abort") {
            flush();
        }
        previous(panic);
    }));
    // RUST_LOG, when set to something (an empty or unreadable one means the default).
    let filter = std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|directives| !directives.trim().is_empty())
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).finish().try_init(),
        LogFormat::Json => logs.json().with_current_span(true).finish().try_init(),
    }
    .map_err(LogsError)?;
    Ok(Logs(()))
}

/// Writes out every line logged so far, and stops the writer thread.
fn flush() {
    let guard = WRITER.lock().unwrap_or_else(PoisonError::into_inner).take();
    drop(guard);
}

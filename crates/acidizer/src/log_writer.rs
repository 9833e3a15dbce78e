//! Where `acidizer serve` writes its logs: stderr, through a buffer that a thread of its own writes out every
//! [`FLUSH_EVERY`] (or as soon as it holds [`FLUSH_AT`] bytes). A request's log line is one copy into the buffer:
//! no system call, and no other thread woken, per line.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How much the buffer holds before the line that fills it writes it out.
const FLUSH_AT: usize = 64 * 1024;

/// The buffered stderr; cloned into the subscriber and the flushing thread.
#[derive(Clone, Default)]
pub struct BufferedStderr {
    pending: Arc<Mutex<Vec<u8>>>,
}

impl BufferedStderr {
    /// Starts the thread that writes the buffer out every [`FLUSH_EVERY`]; it stops with the process.
    pub fn start() -> std::io::Result<Self> {
        let writer = Self::default();
        let flusher = writer.clone();
        std::thread::Builder::new().name("acidizer-logs".to_owned()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flusher.flush_pending();
            }
        })?;
        Ok(writer)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while appending leaves at worst a partial line: the buffer itself stays usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes out whatever the buffer holds (also at exit).
    pub fn flush_pending(&self) {
        let lines = std::mem::take(&mut *self.lock());
        if !lines.is_empty() {
            // Nowhere left to report a failure to write the logs.
            let _ = std::io::stderr().lock().write_all(&lines);
        }
    }
}

/// One event's line, appended to the buffer when complete.
pub struct Line<'a> {
    writer: &'a BufferedStderr,
    line: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        let full = {
            let mut pending = self.writer.lock();
            pending.extend_from_slice(&self.line);
            pending.len() >= FLUSH_AT
        };
        if full {
            self.writer.flush_pending();
        }
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line { writer: self, line: Vec::with_capacity(256) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_kept_whole_until_flushed() {
        let writer = BufferedStderr::default();
        {
            let mut line = writer.make_writer();
            line.write_all(b"request ").unwrap();
            line.write_all(b"status=200\n").unwrap();
            assert!(writer.lock().is_empty(), "nothing of a line is visible before it is complete");
        }
        assert_eq!(&*writer.lock(), b"request status=200\n");
        writer.flush_pending();
        assert!(writer.lock().is_empty());
    }
}

//! The embedded store of `acidizer serve`: SQLite in WAL mode, each commit fsynced before it is answered.
//!
//! One writer thread owns the only writing connection and commits changes in groups: every change that arrives
//! while a commit is under way joins the next one. A syncer thread fsyncs the WAL behind it, and answers each
//! change only once its commit is durable; until then readers do not see it. Reads (value, history, health) run
//! on their own connections, beside the writer.

mod checkpointer;
mod directory;
mod failure;
mod reader;
mod schema;
mod syncer;
mod unsynced;
mod writer;

use acidizer_core::{
    AuditRecord, ChangeCommand, ChangeOutcome, CounterChange, CounterName, CounterSnapshot, CounterStore, HistoryQuery,
    StoreError,
};
use checkpointer::WalBound;
use failure::Failure;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use unsynced::Unsynced;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "acidizer.sqlite3";

/// How many changes may wait for the writer before new ones are turned away as overloaded.
const WRITE_QUEUE: usize = 16_384;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open the database {path}")]
    Database { path: PathBuf, source: rusqlite::Error },
    #[error("cannot open the WAL of {path} to fsync it")]
    Wal { path: PathBuf, source: std::io::Error },
    #[error("cannot fsync the data directory {path}")]
    SyncDir { path: PathBuf, source: std::io::Error },
    #[error("cannot start the writer thread")]
    Writer(#[source] std::io::Error),
}

/// How the store makes a commit durable: the `PRAGMA synchronous` of its connections, and whether its syncer
/// fsyncs the WAL before answering. [`SqliteStore::open`] and [`SqliteStore::open_publishing`] always use
/// [`Synchronous::Full`], which the store's durability promise rests on; the lower levels exist for tests that show
/// what that promise depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// No fsync at all: a power cut may lose any commit (and more).
    Off,
    /// SQLite's NORMAL without the syncer's fsync: in WAL mode, fsync only at checkpoints, so a power cut may lose
    /// the commits since the last one.
    Normal,
    /// The WAL is fsynced (by the store's syncer) before a commit is answered or shown: a power cut loses no
    /// acknowledged commit.
    Full,
}

impl Synchronous {
    /// The value of `PRAGMA synchronous`: at [`Synchronous::Full`] the syncer fsyncs each commit, and SQLite's
    /// NORMAL keeps the WAL consistent (and fsyncs it around checkpoints) without an fsync in every commit.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal | Synchronous::Full => "NORMAL",
        }
    }
}

/// A counter store in one SQLite database file.
pub struct SqliteStore {
    writes: mpsc::Sender<writer::Work>,
    readers: Arc<reader::Readers>,
    unsynced: Arc<Unsynced>,
    commits: Arc<AtomicU64>,
}

impl SqliteStore {
    /// Opens (creating if need be) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        Self::open_publishing(data_dir, None)
    }

    /// Opens the store with `synchronous` instead of [`Synchronous::Full`]: below it, acknowledged changes do not
    /// survive a power cut. Only for tests of that.
    pub fn open_with(data_dir: &Path, synchronous: Synchronous) -> Result<Self, OpenError> {
        Self::open_inner(data_dir, synchronous, WalBound::STORE, None)
    }

    /// Opens the store; once a commit is durable, the syncer sends the latest change of each counter it changed to
    /// `changes` (never waiting on it).
    pub fn open_publishing(
        data_dir: &Path,
        changes: Option<mpsc::UnboundedSender<CounterChange>>,
    ) -> Result<Self, OpenError> {
        Self::open_inner(data_dir, Synchronous::Full, WalBound::STORE, changes)
    }

    fn open_inner(
        data_dir: &Path,
        synchronous: Synchronous,
        wal: WalBound,
        changes: Option<mpsc::UnboundedSender<CounterChange>>,
    ) -> Result<Self, OpenError> {
        directory::create(data_dir).map_err(|source| OpenError::DataDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join(DATABASE_FILE);
        let database_error = |source| OpenError::Database { path: path.clone(), source };
        let connection = schema::open_writer(&path, synchronous, wal.kept_bytes).map_err(database_error)?;
        let wal_file = match synchronous {
            Synchronous::Full => {
                Some(syncer::open_wal(&connection).map_err(|source| OpenError::Wal { path: path.clone(), source })?)
            }
            Synchronous::Off | Synchronous::Normal => None,
        };
        // The database and its WAL may be new: their entries are made durable before any change is answered. (SQLite
        // fsyncs the directory itself at its first sync of a new WAL or journal, at the store's settings; the store
        // does not rest on that.)
        directory::sync(data_dir).map_err(|source| OpenError::SyncDir { path: data_dir.to_owned(), source })?;
        let readers = Arc::new(reader::Readers::new(path.clone()));
        readers.warm_up().map_err(database_error)?;
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        let checkpoints = schema::open_checkpointer(&path, synchronous).map_err(database_error)?;
        let (alive, writer_gone) = std::sync::mpsc::channel();
        let (start_over, failed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        checkpointer::spawn(checkpoints, writer_gone, Arc::clone(&start_over), Arc::clone(&failed), wal)
            .map_err(OpenError::Writer)?;
        let unsynced = Arc::new(Unsynced::default());
        let syncer = syncer::spawn(wal_file, Arc::clone(&unsynced), changes, failed).map_err(OpenError::Writer)?;
        let parts = writer::Writer { commits: Arc::clone(&commits), syncer, start_over, alive };
        writer::spawn(connection, queue, parts).map_err(OpenError::Writer)?;
        Ok(Self { writes, readers, unsynced, commits })
    }

    /// How many group commits the writer has made since the store was opened.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn ask_writer(&self, work: writer::Work) -> Result<(), StoreError> {
        self.writes.try_send(work).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => StoreError::unavailable(Failure::WriterStopped),
        })
    }

    async fn read_with<T: Send + 'static>(
        &self,
        query: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.with(query))
            .await
            .map_err(|error| StoreError::unavailable(Failure::ReadTask(error)))?
    }
}

impl CounterStore for SqliteStore {
    async fn change(&self, command: ChangeCommand) -> Result<ChangeOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.ask_writer(writer::Work::Change(writer::Job { command, reply }))?;
        answer.await.map_err(|_| StoreError::unavailable(Failure::WriterStopped))?
    }

    async fn read(&self, counter: &CounterName) -> Result<CounterSnapshot, StoreError> {
        let (counter, unsynced) = (counter.clone(), Arc::clone(&self.unsynced));
        self.read_with(move |connection| reader::snapshot(connection, &unsynced, counter)).await
    }

    async fn history(&self, counter: &CounterName, query: HistoryQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let (counter, unsynced) = (counter.clone(), Arc::clone(&self.unsynced));
        self.read_with(move |connection| reader::history(connection, &unsynced, &counter, query)).await
    }

    /// The store can read, and a change could commit: a durable write as large as a change's goes through the
    /// writer, after the changes waiting for it (a full disk or a read-only data directory fails it).
    async fn health(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.ask_writer(writer::Work::Probe(reply))?;
        answer.await.map_err(|_| StoreError::unavailable(Failure::WriterStopped))??;
        self.read_with(reader::ping).await
    }
}

pub(crate) fn sql_error(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

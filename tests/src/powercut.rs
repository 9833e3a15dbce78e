//! A power cut under a server's data directory. The shim `tests/support/powercut.c`, loaded into the server with
//! LD_PRELOAD, keeps an undo log beside each data file of every change not yet fsynced, and a log of the files and
//! directories it created and of the directories it fsynced; after a `kill -9`, [`Shim::cut`] deletes what was
//! created in a directory not fsynced since, and applies the undo logs, so the directory holds only what the
//! server's fsyncs made durable — what a disk that loses all unsynced writes holds when the power comes back.

use crate::binaries;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long building the shim may take (it is one small C file).
const BUILD_WITHIN: Duration = Duration::from_secs(120);

/// The suffix of an undo log, beside its data file.
const UNDO_SUFFIX: &str = ".powercut-undo";

/// The calls the shim counts, in the order of its stats file (`enum call` in powercut.c).
pub const CALLS: [&str; 15] = [
    "write",
    "pwrite",
    "pwrite64",
    "writev",
    "pwritev",
    "pwritev64",
    "ftruncate",
    "ftruncate64",
    "posix_fallocate",
    "posix_fallocate64",
    "fsync",
    "fdatasync",
    "undo records",
    "creates",
    "directory syncs",
];

/// The shim, built, watching one data directory.
pub struct Shim {
    library: PathBuf,
    stats: PathBuf,
    /// The entries created under the directory ("+PATH") and the directories fsynced ("-DIR"), one a line.
    created: PathBuf,
    data_dir: PathBuf,
}

impl Shim {
    /// Compiles the shim into `build_dir` with `cc` (which must be installed), to watch `data_dir` (created if
    /// need be) and everything under it.
    pub fn build(build_dir: &Path, data_dir: &Path) -> Shim {
        let source = binaries::repo_root().join("tests/support/powercut.c");
        let library = build_dir.join("powercut.so");
        let mut cc = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&library)
            .arg(&source)
            .arg("-ldl")
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot run cc to build the power-cut shim (is a C compiler installed?): {error}")
            });
        let until = Instant::now() + BUILD_WITHIN;
        let compiled = loop {
            match cc.try_wait().expect("cc's status") {
                Some(status) => break status,
                None if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
                None => {
                    let _ = cc.kill();
                    let _ = cc.wait();
                    panic!("cc did not build {} within {BUILD_WITHIN:?}", source.display());
                }
            }
        };
        assert!(compiled.success(), "cc failed to build {}: {compiled}", source.display());
        std::fs::create_dir_all(data_dir).expect("the data directory");
        // Named as the shim sees it (symbolic links resolved), as its logs name what is under it.
        let data_dir = data_dir.canonicalize().expect("the data directory's real path");
        Shim { library, stats: build_dir.join("powercut.stats"), created: build_dir.join("powercut.created"), data_dir }
    }

    /// The environment that loads the shim into a server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", self.library.display().to_string()),
            ("POWERCUT_DIR", self.data_dir.display().to_string()),
            ("POWERCUT_STATS", self.stats.display().to_string()),
            ("POWERCUT_CREATED", self.created.display().to_string()),
        ]
    }

    /// Whether every change of the data file `name` (a path under the watched directory) so far is durable
    /// (fsynced since).
    pub fn all_synced(&self, name: &str) -> bool {
        let log = self.data_dir.join(format!("{name}{UNDO_SUFFIX}"));
        std::fs::metadata(log).map_or(true, |metadata| metadata.len() == 0)
    }

    /// How many times each call was intercepted on a data file so far (in the order of [`CALLS`]).
    pub fn calls(&self) -> Calls {
        let bytes = std::fs::read(&self.stats).expect("the shim's stats: was it loaded?");
        assert_eq!(bytes.len(), CALLS.len() * 8, "the shim's stats hold one u64 per call");
        let counts = bytes.chunks_exact(8).map(|n| u64::from_le_bytes(n.try_into().expect("8 bytes")));
        Calls(CALLS.into_iter().zip(counts).collect())
    }
}

/// Calls intercepted on data files, by name.
#[derive(Debug, Clone)]
pub struct Calls(pub Vec<(&'static str, u64)>);

impl Calls {
    pub fn get(&self, name: &str) -> u64 {
        self.0.iter().find(|(call, _)| *call == name).map(|(_, n)| *n).unwrap_or_else(|| panic!("no call {name}"))
    }
}

impl std::fmt::Display for Calls {
    /// The calls made at least once, e.g. `pwrite64 1200, fsync 300, undo records 1500`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let made: Vec<String> = self.0.iter().filter(|(_, n)| *n > 0).map(|(call, n)| format!("{call} {n}")).collect();
        f.write_str(&made.join(", "))
    }
}

/// What a power cut undid.
#[derive(Debug, Default)]
pub struct Cut {
    /// What was created in a directory not fsynced since (paths under the watched directory): deleted.
    pub uncreated: Vec<String>,
    /// Each data file whose unsynced changes were undone, with how many, and the bytes written back.
    pub undone: Vec<(String, usize, u64)>,
    /// The files that had changes since their last fsync but were deleted before the cut.
    pub gone: Vec<String>,
}

impl Cut {
    /// How many changes were undone, in all files.
    pub fn changes(&self) -> usize {
        self.undone.iter().map(|(_, changes, _)| changes).sum()
    }
}

impl Shim {
    /// Cuts the power under the watched directory, whose server is gone (killed): what was created in a directory
    /// not fsynced since is deleted (a directory with all it holds), every other data file goes back to what its
    /// last fsync made durable (its undo records applied newest first), and the shared-memory files (`*-shm`,
    /// memory that a power cut loses) are deleted.
    pub fn cut(&self) -> Cut {
        let mut cut = Cut::default();
        let log = match std::fs::read(&self.created) {
            Ok(log) => String::from_utf8(log).expect("the log of entries created names UTF-8 paths"),
            // The shim was never loaded: nothing was created under it.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => panic!("the log of entries created: {error}"),
        };
        for path in not_durable(&log) {
            let name = path.strip_prefix(&self.data_dir).unwrap_or(&path).display().to_string();
            match std::fs::symlink_metadata(&path) {
                Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(&path).expect("a directory deleted"),
                Ok(_) => std::fs::remove_file(&path).expect("a file deleted"),
                // Within a directory deleted already, or deleted by the server: deleting is not modelled.
                Err(_) => continue,
            }
            let undo = PathBuf::from(format!("{}{UNDO_SUFFIX}", path.display()));
            if undo.exists() {
                std::fs::remove_file(undo).expect("the undo log of a file never made durable can be deleted");
            }
            cut.uncreated.push(name);
        }
        std::fs::write(&self.created, "").expect("the log of entries created emptied");
        undo(&self.data_dir, &self.data_dir, cut)
    }
}

/// What the log of entries created ("+PATH" made, "-DIR" fsynced; a line cut short by the kill is ignored) holds
/// as not durable: each entry made and not followed by a sync of the directory that holds it, in the order made.
fn not_durable(log: &str) -> Vec<PathBuf> {
    let mut pending: Vec<PathBuf> = Vec::new();
    for line in log.split_inclusive('\n').filter_map(|line| line.strip_suffix('\n')) {
        if let Some(made) = line.strip_prefix('+') {
            pending.push(PathBuf::from(made));
        } else if let Some(synced) = line.strip_prefix('-') {
            pending.retain(|path| path.parent() != Some(Path::new(synced)));
        }
    }
    pending
}

/// Applies the undo logs in `dir` and the directories under it, and deletes their shared-memory files; names
/// files by their path under `root`.
fn undo(root: &Path, dir: &Path, mut cut: Cut) -> Cut {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("the data directory").map(|entry| entry.expect("an entry").path()).collect();
    entries.sort();
    for path in entries {
        let name = path.strip_prefix(root).expect("under the watched directory").to_string_lossy().into_owned();
        if path.is_dir() {
            cut = undo(root, &path, cut);
        } else if name.ends_with("-shm") {
            std::fs::remove_file(&path).expect("the shared memory file can be deleted");
        } else if let Some(data_name) = name.strip_suffix(UNDO_SUFFIX) {
            let log = std::fs::read(&path).expect("an undo log");
            std::fs::remove_file(&path).expect("the undo log can be deleted");
            let records = undo_records(&log);
            let data = match std::fs::OpenOptions::new().write(true).open(root.join(data_name)) {
                Ok(data) => data,
                // Deleted since (a rollback journal): deleting files is not modelled.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    cut.gone.push(data_name.to_owned());
                    continue;
                }
                Err(error) => panic!("cannot open {data_name}: {error}"),
            };
            let mut bytes = 0;
            for record in records.iter().rev() {
                data.write_all_at(record.old, record.offset).expect("old bytes written back");
                data.set_len(record.size).expect("the old size restored");
                bytes += record.old.len() as u64;
            }
            if !records.is_empty() {
                cut.undone.push((data_name.to_owned(), records.len(), bytes));
            }
        }
    }
    cut
}

/// One change of a data file, undone: its size and the bytes from `offset` before the change.
struct Undo<'a> {
    size: u64,
    offset: u64,
    old: &'a [u8],
}

/// The records of an undo log: three little-endian i64 (the size before, the offset, the length n) and n bytes,
/// each. A record cut short (the server was killed while writing it, before its change) is ignored.
fn undo_records(log: &[u8]) -> Vec<Undo<'_>> {
    let mut records = Vec::new();
    let mut rest = log;
    while rest.len() >= 24 {
        let field = |at: usize| {
            let n = i64::from_le_bytes(rest[at..at + 8].try_into().expect("8 bytes"));
            u64::try_from(n).expect("sizes, offsets and lengths are not negative")
        };
        let (size, offset, len) = (field(0), field(8), field(16) as usize);
        let Some(old) = rest.get(24..24 + len) else { break };
        records.push(Undo { size, offset, old });
        rest = &rest[24 + len..];
    }
    records
}

//! A power cut under a server's data directory. The shim `tests/support/powercut.c`, loaded into the server with
//! LD_PRELOAD, keeps an undo log beside each data file of every change not yet fsynced; after a `kill -9`, [`cut`]
//! applies them, so the directory holds only what the server's fsyncs made durable — what a disk that loses all
//! unsynced writes holds when the power comes back.

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
pub const CALLS: [&str; 13] = [
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
];

/// The shim, built, watching one data directory.
pub struct Shim {
    library: PathBuf,
    stats: PathBuf,
    data_dir: PathBuf,
}

impl Shim {
    /// Compiles the shim into `build_dir` with `cc` (which must be installed), to watch `data_dir` (created if
    /// need be).
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
        Shim { library, stats: build_dir.join("powercut.stats"), data_dir: data_dir.to_owned() }
    }

    /// The environment that loads the shim into a server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", self.library.display().to_string()),
            ("POWERCUT_DIR", self.data_dir.display().to_string()),
            ("POWERCUT_STATS", self.stats.display().to_string()),
        ]
    }

    /// Whether every change of the data file `name` so far is durable (fsynced since).
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

/// Cuts the power under `data_dir`, whose server is gone (killed): every data file goes back to what its last
/// fsync made durable (its undo records applied newest first), and the shared-memory files (`*-shm`, memory that
/// a power cut loses) are deleted.
pub fn cut(data_dir: &Path) -> Cut {
    let mut cut = Cut::default();
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(data_dir).expect("the data directory").map(|entry| entry.expect("an entry").path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
        if name.ends_with("-shm") {
            std::fs::remove_file(&path).expect("the shared memory file can be deleted");
        } else if let Some(data_name) = name.strip_suffix(UNDO_SUFFIX) {
            let log = std::fs::read(&path).expect("an undo log");
            std::fs::remove_file(&path).expect("the undo log can be deleted");
            let records = undo_records(&log);
            let data = match std::fs::OpenOptions::new().write(true).open(data_dir.join(data_name)) {
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

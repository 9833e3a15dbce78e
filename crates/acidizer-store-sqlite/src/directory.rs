//! The store's directory entries made durable. A new file or directory survives a power cut only once the directory
//! that holds it has been fsynced since it was made: SQLite fsyncs the data directory at its first sync of a new WAL
//! or journal (which its settings may skip), and nothing else fsyncs the directory above a new data directory.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates `data_dir` and what it lacks above it, and fsyncs each directory that gained an entry.
pub(crate) fn create(data_dir: &Path) -> io::Result<()> {
    let missing: Vec<&Path> =
        data_dir.ancestors().take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists()).collect();
    std::fs::create_dir_all(data_dir)?;
    for made in missing.into_iter().rev() {
        sync(made.parent().unwrap_or(Path::new("")))?;
    }
    Ok(())
}

/// Fsyncs the directory `dir` (the current one when empty): the entries made in it so far are durable. Only the
/// disk's failure (EIO) fails it: a file system that cannot fsync a directory (EINVAL), or a directory this process
/// may not open for reading, is logged and passed, as SQLite does with its own fsyncs of directories.
pub(crate) fn sync(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    match File::open(dir).and_then(|opened| opened.sync_all()) {
        Err(error) if error.raw_os_error() == Some(libc::EIO) => Err(error),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot fsync a directory: its new entries may not survive a power cut");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    /// What is missing is made, what is there is left as it is. (That each new entry is durable is tested through
    /// a power cut, in tests/tests/power_loss.rs.)
    #[test]
    fn creates_every_missing_directory() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("a/b/data");
        super::create(&data).unwrap();
        assert!(data.is_dir());
        super::create(&data).unwrap();
    }
}

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
        sync(made.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Fsyncs the directory `dir`: the entries made in it so far are durable.
pub(crate) fn sync(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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

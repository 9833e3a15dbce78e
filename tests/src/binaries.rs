//! Where the workspace's built binaries are. `tests/run.sh` builds them before the tests run.

use std::path::PathBuf;

/// The path of a binary built beside this test executable (`target/<profile>/<name>`).
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let profile_dir =
        exe.parent().and_then(|deps| deps.parent()).expect("test executables live in target/<profile>/deps");
    let binary = profile_dir.join(name);
    assert!(
        binary.is_file(),
        "{} is missing: build the workspace's binaries first (`cargo build --workspace --bins`, as tests/run.sh does)",
        binary.display()
    );
    binary
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repository").to_owned()
}

/// The environment variable naming a directory of release bootstraps (`cargo lambda build` output:
/// `DIR/<function>/bootstrap`) to run instead of the debug builds.
pub const LAMBDA_BOOTSTRAPS_ENV: &str = "ACIDIZER_LAMBDA_BOOTSTRAPS";

/// A Lambda function's binary: the release bootstrap when `ACIDIZER_LAMBDA_BOOTSTRAPS` names their directory,
/// else the debug build beside the tests.
pub fn lambda(name: &str) -> PathBuf {
    match std::env::var_os(LAMBDA_BOOTSTRAPS_ENV) {
        Some(dir) => {
            let bootstrap = repo_root().join(dir).join(name).join("bootstrap");
            assert!(bootstrap.is_file(), "{} is missing: cargo lambda build --release", bootstrap.display());
            bootstrap
        }
        None => path(name),
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

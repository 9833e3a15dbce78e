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

/// The environment variable naming a directory of release bootstraps to run instead of the debug builds: the
/// output of `cargo lambda build` (`DIR/<function>/bootstrap`) or of `sam build` (`DIR/<LogicalId>/bootstrap`).
pub const LAMBDA_BOOTSTRAPS_ENV: &str = "ACIDIZER_LAMBDA_BOOTSTRAPS";

/// Each function's logical id in `infra/template.yaml`, where `sam build` puts its bootstrap.
pub const TEMPLATE_FUNCTIONS: [(&str, &str); 3] =
    [("acidizer-api", "ApiFunction"), ("acidizer-ws", "WsFunction"), ("acidizer-stream", "StreamFunction")];

/// A Lambda function's binary: the release bootstrap when `ACIDIZER_LAMBDA_BOOTSTRAPS` names their directory,
/// else the debug build beside the tests.
pub fn lambda(name: &str) -> PathBuf {
    match std::env::var_os(LAMBDA_BOOTSTRAPS_ENV) {
        Some(dir) => {
            let dir = repo_root().join(dir);
            let logical_id = TEMPLATE_FUNCTIONS.iter().find(|(binary, _)| *binary == name).map(|(_, id)| *id);
            let candidates = [Some(name), logical_id].into_iter().flatten().map(|sub| dir.join(sub).join("bootstrap"));
            let found = candidates.clone().find(|bootstrap| bootstrap.is_file());
            found.unwrap_or_else(|| {
                let tried: Vec<String> = candidates.map(|c| c.display().to_string()).collect();
                panic!("no bootstrap for {name} at {}: cargo lambda build --release, or sam build", tried.join(" or "))
            })
        }
        None => path(name),
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

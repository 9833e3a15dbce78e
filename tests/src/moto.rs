//! moto's DynamoDB emulator, started once per test binary on a free port, one request at a time.

use acidizer_store_dynamodb::aws_sdk_dynamodb;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Moto {
    pub endpoint: String,
    _process: Child,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The running emulator, started on first use. Fails loudly when moto is not installed.
pub fn shared() -> &'static Moto {
    MOTO.get_or_init(start)
}

fn start() -> Moto {
    let port = free_port();
    let script = crate::binaries::repo_root().join("tests/support/moto_server.py");
    let process = Command::new("python3")
        .arg(&script)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 must be installed to run the DynamoDB emulator");
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_answering(&endpoint, port);
    Moto { endpoint, _process: process }
}

fn wait_until_answering(endpoint: &str, port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the DynamoDB emulator did not start at {endpoint}: is moto installed? (pip install \"moto[server]\")"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
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

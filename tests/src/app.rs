//! A running acidizer to test against — `spawn_app`-style: every test gets its own server and its own data.

use crate::{binaries, dynamo_model, dynamodb_local, lambda};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The file in a test server's directory that holds its logs.
const SERVE_LOG: &str = "acidizer-serve.log";

/// The origin the test servers allow through CORS.
pub const ALLOWED_ORIGIN: &str = "https://app.example";

/// What a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `acidizer serve` on the embedded SQLite store.
    ServeSqlite,
    /// `acidizer serve --store dynamodb` on DynamoDB Local.
    ServeDynamodb,
    /// The `acidizer-api` Lambda binary on DynamoDB Local, behind a local Runtime API and HTTP API stand-in.
    Lambda,
}

/// A running acidizer: its base URL and whatever keeps it alive.
pub struct App {
    pub base: String,
    pub target: Target,
    pub http: reqwest::Client,
    _keep: Keep,
}

enum Keep {
    /// The server, and the directory that holds its data and logs (dropped after it).
    Server {
        _server: Server,
        _dir: tempfile::TempDir,
    },
    Lambda(lambda::Gateway),
    Nothing,
}

impl App {
    pub async fn spawn(target: Target) -> App {
        let http = pooled_client();
        match target {
            Target::ServeSqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let server = Server::start(&dir.path().join("data"), &[], &[], dir.path()).await;
                App { base: server.base.clone(), target, http, _keep: Keep::Server { _server: server, _dir: dir } }
            }
            // On DynamoDB Local behind the model of DynamoDB's latency, conflicts and partition budget.
            Target::ServeDynamodb => Self::spawn_serve_dynamodb(dynamo_model::shared_endpoint()).await,
            // As many warm instances as the tests send concurrent clients: 16 requests really run at once.
            Target::Lambda => Self::spawn_lambda(dynamo_model::shared_endpoint(), 16, &[]).await,
        }
    }

    /// `instances` warm instances of the `acidizer-api` Lambda on the DynamoDB endpoint `endpoint`, with `extra`
    /// environment.
    pub async fn spawn_lambda(endpoint: &str, instances: usize, extra: &[(&'static str, String)]) -> App {
        let http = pooled_client();
        let table = unique_table("counters");
        acidizer_store_dynamodb::create_missing_tables(&dynamodb_local::client(endpoint), &table, None)
            .await
            .expect("tables on the emulator");
        let mut env = dynamodb_local::aws_env(endpoint);
        env.push(("COUNTER_TABLE", table));
        env.push(("ALLOWED_ORIGINS", ALLOWED_ORIGIN.to_owned()));
        env.extend(extra.iter().cloned());
        let gateway = lambda::Gateway::start(&binaries::lambda("acidizer-api"), &env, instances).await;
        App { base: gateway.base.clone(), target: Target::Lambda, http, _keep: Keep::Lambda(gateway) }
    }

    /// `acidizer serve --store dynamodb` on the DynamoDB endpoint `endpoint` (the emulator, or a proxy before it).
    pub async fn spawn_serve_dynamodb(endpoint: &str) -> App {
        Self::spawn_serve_dynamodb_on(endpoint, &unique_table("counters"), &unique_table("connections")).await
    }

    /// `acidizer serve --store dynamodb` on `endpoint`, with the tables named (created if missing): several
    /// servers on the same tables are the hosts of one deployment.
    pub async fn spawn_serve_dynamodb_on(endpoint: &str, counter_table: &str, connections_table: &str) -> App {
        let http = pooled_client();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut env = dynamodb_local::aws_env(endpoint);
        env.push(("COUNTER_TABLE", counter_table.to_owned()));
        env.push(("CONNECTIONS_TABLE", connections_table.to_owned()));
        let args = ["--store", "dynamodb", "--create-tables"];
        let server = Server::start(&dir.path().join("data"), &args, &env, dir.path()).await;
        let target = Target::ServeDynamodb;
        App { base: server.base.clone(), target, http, _keep: Keep::Server { _server: server, _dir: dir } }
    }

    /// A handle on an app another `App` keeps alive, for concurrent clients.
    pub fn detached(base: String, target: Target, http: reqwest::Client) -> App {
        App { base, target, http, _keep: Keep::Nothing }
    }

    /// What the server or the Lambda functions logged so far.
    pub fn logs(&self) -> String {
        match &self._keep {
            Keep::Lambda(gateway) => gateway.logs(),
            Keep::Server { _dir, .. } => std::fs::read_to_string(_dir.path().join(SERVE_LOG)).unwrap_or_default(),
            Keep::Nothing => String::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("the server answers")
    }

    /// `POST /counters/{counter}/increment` (or `/increment` for `None`), with an optional key.
    pub async fn increment(&self, counter: Option<&str>, key: Option<&str>) -> reqwest::Response {
        self.change(counter, "increment", key).await
    }

    /// `POST /counters/{counter}/{operation}` (or `/{operation}` for `None`), with an optional key.
    pub async fn change(&self, counter: Option<&str>, operation: &str, key: Option<&str>) -> reqwest::Response {
        let path = counter.map_or_else(|| format!("/{operation}"), |c| format!("/counters/{c}/{operation}"));
        let mut request = self.http.post(self.url(&path));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("the server answers")
    }

    /// The JSON body of `GET path`, which must answer 200.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }
}

/// An HTTP client that keeps enough idle connections for the tests' concurrent clients to reuse them all.
fn pooled_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("an HTTP client")
}

/// A table name no other test uses.
pub fn unique_table(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// One server process: `acidizer serve`, or another that prints its URL when it listens.
pub struct Server {
    pub base: String,
    child: Child,
}

impl Server {
    /// Starts `acidizer serve` on a free port with `data_dir`, and waits until it prints its URL.
    pub async fn start(data_dir: &Path, args: &[&str], env: &[(&str, String)], log_dir: &Path) -> Server {
        let mut command = Command::new(binaries::path("acidizer"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir).args(args);
        if !args.contains(&"--static-dir") {
            command.arg("--static-dir").arg(log_dir.join("no-site"));
        }
        Self::run(command, env, log_dir).await
    }

    /// Runs `command`, a server that prints its URL on stdout once it listens, with `env` and its logs in
    /// `log_dir`, and waits until it prints its URL.
    pub async fn run(mut command: Command, env: &[(&str, String)], log_dir: &Path) -> Server {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(log_dir.join(SERVE_LOG)).expect("a log file");
        command
            .env("ALLOWED_ORIGINS", ALLOWED_ORIGIN)
            .env("RUST_LOG", "warn,acidizer_store_dynamodb=debug")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        let program = command.as_std().get_program().to_string_lossy().into_owned();
        let mut child = command.spawn().unwrap_or_else(|error| panic!("{program} starts: {error}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("readable stdout") {
                if let Some(url) = line.split_whitespace().find(|word| word.starts_with("http://")) {
                    return url.trim_end_matches('/').to_owned();
                }
            }
            panic!("{program} exited before printing its URL; see {}", log_dir.display());
        })
        .await
        .unwrap_or_else(|_| panic!("{program} prints its URL within 60 s"));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { base, child }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("a running server has a pid")
    }

    /// Kills the server with SIGKILL, as a crash or `kill -9` would, and waits for it to be gone.
    pub async fn kill_hard(mut self) {
        self.child.start_kill().expect("the server can be killed");
        // Its exit is collected by polling (`waitpid` with WNOHANG), which does not rest on a wake-up that can be
        // missed, within a bound.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().expect("the server's exit status").is_none() {
            assert!(tokio::time::Instant::now() < deadline, "the server is gone within 30 s of SIGKILL");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("a running server has a pid") as libc::pid_t;
        // SAFETY: sending a signal to a child process this test owns.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server stops within 30 s of SIGTERM")
            .expect("the server exits")
    }
}

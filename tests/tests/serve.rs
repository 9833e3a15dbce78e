//! What only `acidizer serve` does: rate limiting, the SPA beside the API, a store that is down, WebSocket sessions,
//! the access log, the bench. The disk's edges are in disk.rs.

use acidizer_tests::app::{ALLOWED_ORIGIN, Server};
use acidizer_tests::contract::assert_problem;
use acidizer_tests::ws::WsClient;
use acidizer_tests::{App, Target, binaries, dynamodb_local};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after_and_changes_nothing_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--rate-limit", "5"], &[], dir.path()).await;
    // A page on the allowed origin: its 429s, like every answer, carry CORS headers (or the page could not read
    // them) and a request id.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ORIGIN, ALLOWED_ORIGIN.parse().unwrap());
    let http = reqwest::Client::builder().default_headers(headers).build().unwrap();
    let app = App::detached(server.base.clone(), Target::ServeSqlite, http);
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..30 {
        let response = app.increment(Some("limited"), None).await;
        match response.status().as_u16() {
            200 => ok += 1,
            429 => {
                let retry_after = response.headers().get("retry-after").expect("Retry-After on a 429");
                assert!(retry_after.to_str().unwrap().parse::<u64>().unwrap() >= 1);
                let allowed = response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap());
                assert_eq!(allowed, Some(ALLOWED_ORIGIN), "a 429 carries CORS headers");
                assert!(response.headers().contains_key("x-request-id"), "a 429 carries its request id");
                assert_problem(response, 429, "rate limited").await;
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 5 && limited > 0, "{ok} answered, {limited} limited");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let body = app.get_json("/counters/limited").await;
    assert_eq!(body["value"], ok, "only the answered increments counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_spa_beside_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("assets")).unwrap();
    std::fs::write(site.join("index.html"), "<!doctype html><title>acidizer</title>").unwrap();
    std::fs::write(site.join("assets/app.js"), "console.log('acidizer')").unwrap();
    let args = ["--static-dir", site.to_str().unwrap()];
    let server = Server::start(&dir.path().join("data"), &args, &[], dir.path()).await;
    let http = reqwest::Client::new();
    for path in ["/", "/c/global", "/c/my-counter"] {
        let response = http.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.text().await.unwrap().contains("<title>acidizer</title>"), "{path} is the SPA");
    }
    let script = http.get(format!("{}/assets/app.js", server.base)).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().contains("javascript"));
    for path in ["/assets/missing.js", "/nope", "/c/a/b"] {
        let response = http.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert_problem(response, 404, path).await;
    }
    let value = http.get(format!("{}/value", server.base)).send().await.unwrap();
    assert_eq!(value.json::<serde_json::Value>().await.unwrap()["value"], 0, "the API still answers");
    let post = http.post(format!("{}/", server.base)).send().await.unwrap();
    assert_problem(post, 404, "POST /").await;

    let config: serde_json::Value =
        http.get(format!("{}/config.json", server.base)).send().await.unwrap().json().await.unwrap();
    let ws = server.base.replacen("http://", "ws://", 1) + "/ws";
    let expected = serde_json::json!({"apiUrl": server.base, "wsUrl": ws, "counterMax": 1_000_000_000});
    assert_eq!(config, expected, "the SPA finds this server, and the ceiling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = binaries::free_port();
    let mut env = dynamodb_local::aws_env(&format!("http://127.0.0.1:{closed_port}"));
    env.push(("COUNTER_TABLE", "counters".to_owned()));
    let server = Server::start(&dir.path().join("data"), &["--store", "dynamodb"], &env, dir.path()).await;
    let app = App::detached(server.base.clone(), Target::ServeDynamodb, reqwest::Client::new());
    for (response, what) in [
        (app.get("/health").await, "health"),
        (app.increment(Some("down"), Some("k-1")).await, "increment"),
        (app.get("/counters/down").await, "read"),
        (app.get("/counters/down/history").await, "history"),
    ] {
        assert!(response.headers().contains_key("retry-after"), "{what}: Retry-After");
        let problem = assert_problem(response, 503, what).await;
        assert!(!problem["detail"].as_str().unwrap().contains("127.0.0.1"), "no internals leak: {problem}");
    }
}

/// Runs `acidizer bench ARGS` to its end, which must be a success, and returns what it printed.
async fn bench(args: &[&str]) -> String {
    let output = tokio::process::Command::new(binaries::path("acidizer"))
        .arg("bench")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_with_decrements_ends_with_an_exact_history() {
    let said = bench(&["--requests", "400", "--concurrency", "8", "--mix", "0.6"]).await;
    assert!(said.contains("60 % decrements"), "{said}");
    assert!(said.contains("exact          seq 0 to"), "the exactness check ran: {said}");
    let refused = said.lines().find(|line| line.contains("refused at a bound")).unwrap_or_default().to_owned();
    assert!(!refused.contains("(0 refused"), "a walk from 0 that goes down more than up meets the floor: {refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_reports_json_with_the_naive_baseline() {
    let said = bench(&["--requests", "300", "--concurrency", "8", "--duration", "20", "--json", "--baseline"]).await;
    let report: serde_json::Value = serde_json::from_str(said.trim()).expect("one JSON object");
    assert_eq!(report["exact"], true, "{report}");
    assert_eq!(report["acknowledged"], 300, "--requests caps a --duration run: {report}");
    assert_eq!(report["failed"], 0, "{report}");
    let naive = report["naivePerSecond"].as_f64().unwrap_or_default();
    let times = report["timesNaive"].as_f64().unwrap_or_default();
    let throughput = report["answersPerSecond"].as_f64().unwrap_or_default();
    assert!(naive > 0.0 && (times - throughput / naive).abs() < 1e-6, "{report}");
    assert!(report["latencyMs"]["p99"].as_f64().is_some_and(|ms| ms > 0.0), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_measures_delivery_to_every_subscriber() {
    let said = bench(&["--subscribers", "40", "--interval-ms", "50", "--duration", "1", "--json"]).await;
    let report: serde_json::Value = serde_json::from_str(said.trim()).expect("one JSON object");
    assert_eq!(report["exact"], true, "{report}");
    let changes = report["acknowledged"].as_u64().unwrap_or_default();
    // One change every 50 ms at the most (the first at once), each sent once its predecessor is answered.
    assert!((2..=21).contains(&changes), "one change every 50 ms for 1 s: {report}");
    assert_eq!(report["subscribers"], 40, "{report}");
    assert_eq!(report["missed"], 0, "{report}");
    assert_eq!(report["delivered"].as_u64(), Some(40 * changes), "each change reached each subscriber: {report}");
    let p50 = report["deliveryMs"]["p50"].as_f64().unwrap_or(-1.0);
    assert!(p50 >= 0.0 && report["deliveryMs"]["max"].as_f64() >= Some(p50), "{report}");
}

/// `acidizer serve` in `dir` that pings a WebSocket client after 1 s of silence and closes it 1 s after a ping it
/// does not answer, a client of its API, and a subscriber of `counter` that has synced.
async fn serve_pinging_after_a_second(dir: &std::path::Path, counter: &str) -> (Server, App, WsClient) {
    let args = ["--ws-ping-after", "1", "--ws-answer-within", "1"];
    let server = Server::start(&dir.join("data"), &args, &[], dir).await;
    let app = App::detached(server.base.clone(), Target::ServeSqlite, reqwest::Client::new());
    let mut subscriber = WsClient::connect(&server.base, Some(counter)).await;
    subscriber.sync().await;
    (server, app, subscriber)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_websocket_client_is_closed_by_its_deadline_while_others_get_values() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (server, app, mut live) = serve_pinging_after_a_second(dir.path(), "quiet").await;

    // A client that completes the upgrade, then neither reads nor answers anything.
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let upgrade = format!(
        "GET /ws?counter=quiet HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    silent.write_all(upgrade.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let silent = tokio::spawn(async move {
        let (mut received, mut chunk) = (Vec::new(), [0_u8; 1024]);
        while let Ok(read @ 1..) = silent.read(&mut chunk).await {
            received.extend_from_slice(&chunk[..read]);
        }
        (received, started.elapsed())
    });
    // The other subscriber keeps talking (any message counts as an answer) while the silent one is found out.
    while !silent.is_finished() && started.elapsed() < std::time::Duration::from_secs(10) {
        live.sync().await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let closed = tokio::time::timeout(std::time::Duration::from_secs(1), silent).await;
    let (received, closed_after) = closed.expect("the silent client's connection is closed").unwrap();
    assert!(received.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&received));
    // Pinged after 1 s of silence, closed when 1 s more passed unanswered: never sooner (the heartbeat's timing is
    // tested on paused time in `live::heartbeat`).
    assert!(closed_after >= std::time::Duration::from_secs(2), "closed after {closed_after:?}");
    for n in 0..3 {
        assert_eq!(app.increment(Some("quiet"), Some(&format!("quiet-{n}"))).await.status(), 200);
    }
    let seen = live.seqs_until(3, std::time::Duration::from_secs(10)).await;
    assert_eq!(seen.last().map(|(_, seq)| *seq), Some(3), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_only_answers_pings_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, app, mut client) = serve_pinging_after_a_second(dir.path(), "answering").await;
    // Only reading for 4 s: the client's WebSocket answers each ping (one a second) with a pong, and sends nothing
    // else.
    let quiet = std::time::Duration::from_secs(4);
    let read = tokio::time::timeout(quiet, client.next(quiet + std::time::Duration::from_secs(1))).await;
    assert!(read.is_err(), "nothing came but pings, and the session stayed open: {read:?}");
    assert_eq!(app.increment(Some("answering"), None).await.status(), 200);
    let seen = client.seqs_until(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(seen.last().map(|(_, seq)| *seq), Some(1), "{seen:?}");
}

/// The access log of `acidizer serve`: off by default (the router is then built without it), a line per
/// answered request, in the request's span, with `--access-log`; the server's own lines are there either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_written_only_when_asked_for() {
    for (args, logged) in [(&[][..], false), (&["--access-log"][..], true)] {
        let dir = tempfile::tempdir().unwrap();
        // An empty RUST_LOG: the server's default filter.
        let env = [("RUST_LOG", String::new())];
        let server = Server::start(&dir.path().join("data"), args, &env, dir.path()).await;
        let app = App::detached(server.base.clone(), Target::ServeSqlite, reqwest::Client::new());
        let response = app.increment(Some("logged"), None).await;
        assert_eq!(response.status(), 200);
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let span = format!("request{{id=\"{id}\"");
        // Lines are written by a thread of their own: wait for this one.
        let path = dir.path().join("acidizer-serve.log");
        let mut logs = String::new();
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            logs = std::fs::read_to_string(&path).unwrap();
            if logs.contains(&span) {
                break;
            }
        }
        let line = logs.lines().find(|line| line.contains(&span) && line.contains("answered"));
        assert_eq!(line.is_some(), logged, "{args:?}:\n{logs}");
        if let Some(line) = line {
            assert!(line.contains("status=200") && line.contains("latency_ms="), "{line}");
            assert!(line.contains(r#"method=POST path="/counters/logged/increment""#), "{line}");
            assert_eq!(line.matches("request{").count(), 1, "in the request's span once: {line}");
        }
        assert!(logs.contains("store: sqlite"), "{args:?}: the server's own lines:\n{logs}");
    }
}

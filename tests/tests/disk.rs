//! The embedded store at the disk's edges, through `acidizer serve`: a file-size limit, a file system that fills up
//! (a tmpfs) and one that turns read-only after an error (ext4 on a loop device, `errors=remount-ro`). In each,
//! changes answer 503 with `Retry-After` and `/health` does too, reads still answer, nothing acknowledged is lost,
//! and service comes back with the room, or, for the file system turned read-only (which the kernel makes writable
//! again only on a new mount, after a repair), on the repaired file system. The kernel refuses to remount a file
//! system read-only while files on it are open for writing: its own error path is how a live one turns read-only.
//! The file systems are real and mounted here (tests/src/mount.rs): a machine where they cannot be fails these
//! tests.

use acidizer_tests::app::Server;
use acidizer_tests::contract::assert_problem;
use acidizer_tests::mount::Mount;
use acidizer_tests::{App, Target, load};
use std::io::Write;
use std::path::Path;

const COUNTER: &str = "full";

/// Sends a keyed increment of [`COUNTER`]; its value when it is acknowledged (200), `None` when refused for the
/// disk (503, problem+json, `Retry-After`).
async fn increment(app: &App, key: &str) -> Option<u64> {
    let response = app.increment(Some(COUNTER), Some(key)).await;
    match response.status().as_u16() {
        200 => Some(response.json::<serde_json::Value>().await.unwrap()["value"].as_u64().expect("a value")),
        _ => {
            assert!(response.headers().contains_key("retry-after"), "{key}: a 503 says when to retry");
            assert_problem(response, 503, key).await;
            None
        }
    }
}

/// `/health` answers 503, problem+json, with `Retry-After`.
async fn assert_unhealthy(app: &App, what: &str) {
    let response = app.get("/health").await;
    assert!(response.headers().contains_key("retry-after"), "{what}: a 503 says when to retry");
    assert_problem(response, 503, what).await;
}

async fn assert_healthy(app: &App, what: &str) {
    assert_eq!(app.get("/health").await.status(), 200, "{what}");
}

/// Writes zeros to a new file at `path` until the file system has no space left; returns the file.
fn fill(path: &Path) -> std::fs::File {
    let mut filler = std::fs::File::create(path).expect("a file to fill the file system with");
    let chunk = vec![0u8; 64 << 10];
    loop {
        match filler.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(error) => panic!("filling the file system: {error}"),
        }
    }
    // What the last chunk could not write page by page.
    while filler.write(&[0u8; 1]).is_ok_and(|written| written == 1) {}
    filler
}

/// Sends the refused keys again: each commits, once.
async fn commit_again(app: &App, refused: &[String], acked: &mut Vec<(String, u64)>) {
    for key in refused {
        let value = increment(app, key).await.unwrap_or_else(|| panic!("{key} commits once the disk is back"));
        acked.push((key.clone(), value));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_file_system_answers_503_and_health_says_so_then_service_resumes_exact() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Mount::tmpfs(&dir.path().join("disk"), 8 << 20);
    let data = disk.point().join("data");
    let server = Server::start(&data, &[], &[], dir.path()).await;
    let app = App::detached(server.base.clone(), Target::ServeSqlite, load::client());
    let mut acked = Vec::new();
    for n in 0..20 {
        let key = format!("before-{n}");
        acked.push((key.clone(), increment(&app, &key).await.expect("room to commit")));
    }
    assert_healthy(&app, "/health with room to commit").await;

    // Something else takes every free block; changes take what the store's files still hold, then fail.
    let filler = fill(&disk.point().join("filler"));
    let (mut refused, mut failing) = (Vec::new(), 0);
    for n in 0.. {
        assert!(n < 20_000, "changes still commit after {n} on a full file system");
        let key = format!("full-{n}");
        match increment(&app, &key).await {
            Some(value) => {
                acked.push((key, value));
                failing = 0;
            }
            None => {
                refused.push(key);
                failing += 1;
                if failing == 3 {
                    break;
                }
            }
        }
    }
    // While changes fail, /health says so, each time.
    for n in 0..3 {
        assert_unhealthy(&app, "/health while changes fail for the disk").await;
        let key = format!("still-full-{n}");
        assert_eq!(increment(&app, &key).await, None, "{key} on a full file system");
        refused.push(key);
    }
    // Room for a small write is not room for a change: /health's probe is as large as a change.
    filler.set_len(filler.metadata().unwrap().len() - 4096).unwrap();
    assert_unhealthy(&app, "/health with room for a small write only").await;
    let value = app.get_json(&format!("/counters/{COUNTER}")).await["value"].clone();
    assert_eq!(value, acked.len(), "reads still answer, with every acknowledged change");

    drop(filler);
    std::fs::remove_file(disk.point().join("filler")).unwrap();
    assert_healthy(&app, "/health once there is room again").await;
    commit_again(&app, &refused, &mut acked).await;
    load::assert_all_acknowledged_survive(&app, COUNTER, &acked).await;
    server.kill_hard().await;
    let restarted = Server::start(&data, &[], &[], dir.path()).await;
    let app = App::detached(restarted.base.clone(), Target::ServeSqlite, load::client());
    load::assert_all_acknowledged_survive(&app, COUNTER, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_system_turned_read_only_answers_503_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Mount::ext4(&dir.path().join("disk"), &dir.path().join("disk.img"), 64 << 20);
    let data = disk.point().join("data");
    let server = Server::start(&data, &[], &[], dir.path()).await;
    let app = App::detached(server.base.clone(), Target::ServeSqlite, load::client());
    let mut acked = Vec::new();
    for n in 0..50 {
        let key = format!("before-{n}");
        acked.push((key.clone(), increment(&app, &key).await.expect("a writable file system")));
    }

    disk.fail_read_only();
    let mut refused = Vec::new();
    for n in 0..3 {
        assert_unhealthy(&app, "/health on a read-only file system").await;
        let key = format!("read-only-{n}");
        assert_eq!(increment(&app, &key).await, None, "{key} on a read-only file system");
        refused.push(key);
    }
    let value = app.get_json(&format!("/counters/{COUNTER}")).await["value"].clone();
    assert_eq!(value, acked.len(), "reads still answer, with every acknowledged change");

    // The kernel gives write access back to a new mount only, after a repair: the server stops when asked, the
    // file system is repaired and mounted again, and a server started on it has every acknowledged change.
    let stopped = server.terminate().await;
    assert!(stopped.success(), "the server stops cleanly: {stopped}");
    disk.repair();
    let restarted = Server::start(&data, &[], &[], dir.path()).await;
    let app = App::detached(restarted.base.clone(), Target::ServeSqlite, load::client());
    assert_healthy(&app, "/health on the repaired file system").await;
    load::assert_all_acknowledged_survive(&app, COUNTER, &acked).await;
    commit_again(&app, &refused, &mut acked).await;
    load::assert_all_acknowledged_survive(&app, COUNTER, &acked).await;
}

/// Sets `acidizer serve`'s largest file size, its soft limit (`prlimit`, util-linux): what a full disk looks like
/// to SQLite.
fn limit_file_size(server: &Server, bytes: &str) {
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &server.pid().to_string(), &format!("--fsize={bytes}:")])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit {bytes}");
}

/// The server's log (a file: no colour codes) has a one-line warning for each refused request, in the span of the
/// request (its `X-Request-Id`), naming the change (its counter, delta and key), with the error's chain rather than
/// a debug dump.
async fn assert_store_warnings_name_their_requests(log_dir: &std::path::Path, request_ids: &[String]) {
    // Log lines are written by a thread of their own: wait until the last request's warning is there.
    let path = log_dir.join("acidizer-serve.log");
    let last = format!("request{{id=\"{}\"", request_ids.last().map_or("", String::as_str));
    let mut logs = String::new();
    for _ in 0..100 {
        logs = std::fs::read_to_string(&path).unwrap();
        if logs.lines().any(|line| line.contains(&last) && line.contains("WARN")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!logs.contains('\u{1b}'), "no terminal colour codes in a log file");
    for (n, id) in request_ids.iter().enumerate() {
        let line = logs
            .lines()
            .find(|line| line.contains(&format!("request{{id=\"{id}\"")) && line.contains("WARN"))
            .unwrap_or_else(|| panic!("a warning in the span of request {id}:\n{logs}"));
        assert!(line.contains(&format!(" counter=full delta=1 request_id=full-{n}")), "{line}");
        assert_eq!(line.matches("unavailable").count(), 1, "each cause said once: {line}");
        assert!(line.contains("error=") && !line.contains("Error {"), "a one-line error chain: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_answers_503_then_service_resumes_exact() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[], &[], dir.path()).await;
    let app = App::detached(server.base.clone(), Target::ServeSqlite, reqwest::Client::new());
    let mut answered = 0;
    for n in 0..5 {
        assert_eq!(app.increment(Some("full"), Some(&format!("before-{n}"))).await.status(), 200);
        answered += 1;
    }
    // No file of the store may grow past 4 KiB: no WAL frame fits, as a disk with no space left would have it.
    limit_file_size(&server, "4096");
    let mut refused_ids = Vec::new();
    for n in 0..3 {
        let response = app.increment(Some("full"), Some(&format!("full-{n}"))).await;
        assert!(response.headers().contains_key("retry-after"), "a 503 says when to retry");
        refused_ids.push(response.headers()["x-request-id"].to_str().unwrap().to_owned());
        assert_problem(response, 503, "an increment on a full disk").await;
    }
    assert_store_warnings_name_their_requests(dir.path(), &refused_ids).await;
    let health = app.http.get(format!("{}/health", server.base)).send().await.unwrap();
    assert_eq!(health.status(), 503, "/health says the store cannot commit");
    assert_eq!(app.get_json("/counters/full").await["value"], answered, "reads still answer, unchanged");

    limit_file_size(&server, "unlimited");
    let health = app.http.get(format!("{}/health", server.base)).send().await.unwrap();
    assert_eq!(health.status(), 200, "/health recovers with the space");
    // The refused changes, sent again with their keys, now commit once each.
    for n in 0..3 {
        assert_eq!(app.increment(Some("full"), Some(&format!("full-{n}"))).await.status(), 200);
        answered += 1;
    }
    let state = app.get_json("/counters/full").await;
    assert_eq!((state["value"].as_u64(), state["seq"].as_u64()), (Some(answered), Some(answered)));
    let history = app.get_json("/counters/full/history?limit=100").await;
    let seqs: Vec<u64> = history["items"].as_array().unwrap().iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=answered).rev().collect::<Vec<_>>(), "a history without gaps");
    // Nothing is corrupted: the database opens again as it was.
    server.kill_hard().await;
    let reopened = Server::start(&dir.path().join("data"), &[], &[], dir.path()).await;
    let app = App::detached(reopened.base.clone(), Target::ServeSqlite, reqwest::Client::new());
    assert_eq!(app.get_json("/counters/full").await["value"], answered);
}

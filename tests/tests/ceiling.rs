//! The ceiling: `acidizer serve --counter-max N` and the `acidizer-api` Lambda's `COUNTER_MAX`, on every store.

use acidizer_tests::app::Server;
use acidizer_tests::contract::assert_problem;
use acidizer_tests::{App, Target, binaries, dynamodb_local};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

/// Three increments, then one too many; a decrement, then an increment again.
async fn a_ceiling_of_three_holds(app: &App) {
    for n in 1..=3 {
        let body: Value = app.increment(Some("capped"), None).await.json().await.unwrap();
        assert_eq!(body["value"], n);
    }
    let refused = assert_problem(app.increment(Some("capped"), Some("one-too-many")).await, 409, "at 3").await;
    assert_eq!(refused["type"], "urn:acidizer:problem:counter-at-ceiling");
    assert!(refused["detail"].as_str().unwrap().contains("ceiling of 3"), "{refused}");
    let read = app.get_json("/counters/capped").await;
    assert_eq!((&read["value"], &read["seq"]), (&json!(3), &json!(3)), "the refusal committed nothing");
    let down: Value = app.change(Some("capped"), "decrement", None).await.json().await.unwrap();
    assert_eq!((&down["value"], &down["seq"]), (&json!(2), &json!(4)));
    let up: Value = app.increment(Some("capped"), Some("one-too-many")).await.json().await.unwrap();
    assert_eq!((&up["value"], &up["seq"]), (&json!(3), &json!(5)), "the refused key tries again, and commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_sqlite_keeps_its_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--counter-max", "3"], &[], dir.path()).await;
    let app = App::detached(server.base.clone(), Target::ServeSqlite, reqwest::Client::new());
    a_ceiling_of_three_holds(&app).await;
    assert_eq!(app.get_json("/config.json").await["counterMax"], 3, "the page learns the ceiling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_dynamodb_keeps_its_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = dynamodb_local::aws_env(&dynamodb_local::shared().endpoint);
    let suffix = uuid::Uuid::new_v4().simple();
    env.push(("COUNTER_TABLE", format!("capped-{suffix}")));
    let args = ["--store", "dynamodb", "--create-tables", "--counter-max", "3"];
    let server = Server::start(&dir.path().join("data"), &args, &env, dir.path()).await;
    let app = App::detached(server.base.clone(), Target::ServeDynamodb, reqwest::Client::new());
    a_ceiling_of_three_holds(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_keeps_its_ceiling() {
    let app = App::spawn_lambda(&dynamodb_local::shared().endpoint, 2, &[("COUNTER_MAX", "3".to_owned())]).await;
    a_ceiling_of_three_holds(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_ceiling_is_a_billion() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[], &[], dir.path()).await;
    let app = App::detached(server.base.clone(), Target::ServeSqlite, reqwest::Client::new());
    assert_eq!(app.get_json("/config.json").await["counterMax"], 1_000_000_000);
}

/// Runs `command` to its end (it must not start), and returns what it wrote.
async fn refused_at_startup(mut command: tokio::process::Command) -> String {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("it stops at once")
        .expect("it runs");
    assert!(!output.status.success(), "refused, not started");
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceilings_outside_one_to_two_to_the_53_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["0", "9007199254740993", "-5", "ten", "1e9", ""] {
        let mut serve = tokio::process::Command::new(binaries::path("acidizer"));
        serve.args(["serve", "--listen", "127.0.0.1:0", &format!("--counter-max={bad}"), "--data-dir"]).arg(dir.path());
        let said = refused_at_startup(serve).await;
        assert!(said.contains("counter ceiling") && said.contains("9007199254740992"), "serve, {bad:?}: {said}");

        let mut lambda = tokio::process::Command::new(binaries::lambda("acidizer-api"));
        lambda
            .env_clear()
            .env("COUNTER_TABLE", "counters")
            .env("COUNTER_MAX", bad)
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .env("AWS_REGION", "us-east-1");
        let said = refused_at_startup(lambda).await;
        assert!(said.contains("COUNTER_MAX") && said.contains("9007199254740992"), "lambda, {bad:?}: {said}");
    }
}

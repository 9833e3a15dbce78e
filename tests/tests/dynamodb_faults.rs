//! `acidizer serve --store dynamodb` on DynamoDB Local behind a proxy that injects faults into the increment path,
//! and the DynamoDB requests an increment costs, counted by the same proxy.

use acidizer_tests::fault_proxy::{Fault, FaultProxy};
use acidizer_tests::{App, dynamodb_local, load};

/// 16 clients on one counter, one in ten requests repeating a key: every acknowledged increment is in history
/// exactly once, values 1..N, every answer 200 after retries of 429/503 (each with `Retry-After`).
async fn exact_under(fault: Fault, rate: f64) {
    let proxy = FaultProxy::start(&dynamodb_local::shared().endpoint, fault, rate).await;
    let app = App::spawn_serve_dynamodb(&proxy.endpoint).await;
    let report = load::run(&app, "faulty", 16, 10).await;
    let injected = proxy.injected();
    assert!(injected > 0, "{fault:?} was injected");
    // The checks read with faults off: a read that meets a fault answers 503, which proves nothing here.
    proxy.stop_faults();
    load::assert_exact(&app, "faulty", &report).await;
    assert!(!report.replays.is_empty());
    let requests = proxy.count("TransactWriteItems") + proxy.count("GetItem");
    eprintln!("{fault:?}: {injected} faults in {requests} requests, {} 503/429 retried by clients", report.retried_503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_when_dynamodb_throttles() {
    exact_under(Fault::Throttling, 0.2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_when_provisioned_throughput_is_exceeded() {
    exact_under(Fault::ProvisionedThroughputExceeded, 0.2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_when_dynamodb_fails_with_500() {
    exact_under(Fault::InternalError, 0.2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_when_answers_are_lost_after_the_write_applied() {
    exact_under(Fault::DropAfterApply, 0.15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_when_answers_come_after_the_sdk_gave_up() {
    exact_under(Fault::SlowAfterApply, 0.05).await;
}

/// DynamoDB requests (`GetItem` + `TransactWriteItems`) per increment request, and transaction attempts per
/// commit: one client and 16 on one counter, on `acidizer serve` (one process: its changes of a counter commit in
/// groups) and on the `acidizer-api` Lambda with as many warm instances as clients (Lambda runs one request per
/// instance: 16 clients are 16 processes racing). The figures go to
/// BENCHMARKS.md: `cargo test -p acidizer-tests --test dynamodb_faults requests_per_increment -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_increment() {
    let proxy = FaultProxy::start(&dynamodb_local::shared().endpoint, Fault::None, 0.0).await;
    for (host, clients, per_client) in [("serve", 1, 200), ("serve", 16, 20), ("lambda", 1, 200), ("lambda", 16, 20)] {
        // A host of its own for each run, warmed up by one increment of another counter.
        let app = match host {
            "serve" => App::spawn_serve_dynamodb(&proxy.endpoint).await,
            _ => App::spawn_lambda(&proxy.endpoint, clients, &[]).await,
        };
        for _ in 0..16 {
            assert_eq!(app.increment(Some("warm-up"), None).await.status(), 200);
        }
        let counter = format!("requests-{clients}");
        proxy.reset_counts();
        let report = load::run(&app, &counter, clients, per_client).await;
        let commits = report.first.len() as f64;
        let answered = commits + report.replays.len() as f64;
        let requests = (proxy.count("GetItem") + proxy.count("TransactWriteItems")) as f64;
        let attempts = proxy.count("TransactWriteItems") as f64;
        println!(
            "{host}, {clients} client(s): {answered} increment requests ({commits} commits), {:.2} DynamoDB requests \
             per increment request, {:.2} transaction attempts per commit",
            requests / answered,
            attempts / commits
        );
        load::assert_exact(&app, &counter, &report).await;
        if host == "serve" || clients == 1 {
            // An uncontended change from a process that knows the counter's state is one transaction.
            assert!(requests / answered <= 1.2, "{requests} requests for {answered} increment requests");
        }
    }
}

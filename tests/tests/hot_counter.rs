//! One counter that everyone changes at once, on DynamoDB as the model in front of DynamoDB Local has it
//! (tests/src/dynamo_model.rs: latency, transactions cancelled by conflicts, a partition's write budget): the
//! changes of one process commit in groups, processes racing on the counter settle it by the transaction's
//! condition, and every promise of the contract holds. The rates are measured in BENCHMARKS.md, not here.

use acidizer_tests::app::unique_table;
use acidizer_tests::dynamo_model::DynamoModel;
use acidizer_tests::fault_proxy::FaultProxy;
use acidizer_tests::{App, dynamodb_local, load};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_process_commits_a_hot_counter_in_groups_exact() {
    let proxy = FaultProxy::start_modelled(&dynamodb_local::shared().endpoint, DynamoModel::AWS).await;
    let app = App::spawn_serve_dynamodb(&proxy.endpoint).await;
    assert_eq!(app.increment(Some("warm-up"), None).await.status(), 200);
    proxy.reset_counts();
    let before = proxy.model_counts();
    let report = load::run(&app, "hot", 32, 10).await;
    load::assert_exact(&app, "hot", &report).await;
    let counts = proxy.model_counts();
    let (commits, transactions) = (report.first.len() as f64, proxy.count("TransactWriteItems") as f64);
    let units = (counts.write_units - before.write_units) as f64 / commits;
    println!("{commits} commits in {transactions} transactions, {units:.2} write units a change; {counts:?}");
    assert!(transactions < commits / 2.0, "{transactions} transactions for {commits} changes: not in groups");
    assert!(units <= 3.0, "{units:.2} write units a change");
}

/// Three hosts of one deployment (three `acidizer serve` on the same tables, as three environments would be)
/// race on one counter: the model cancels the transactions that meet another's, each host retries from the state
/// the cancellation tells, and every change of each is answered, once, in a gap-free history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_racing_on_a_hot_counter_are_exact_and_each_is_answered() {
    let proxy = FaultProxy::start_modelled(&dynamodb_local::shared().endpoint, DynamoModel::AWS).await;
    let (counters, connections) = (unique_table("counters"), unique_table("connections"));
    let mut hosts = Vec::new();
    for _ in 0..3 {
        hosts.push(App::spawn_serve_dynamodb_on(&proxy.endpoint, &counters, &connections).await);
    }
    let prefixes: Vec<String> = (0..hosts.len()).map(|n| format!("h{n}-")).collect();
    let loads = hosts.iter().zip(&prefixes).map(|(host, prefix)| load::run_keyed(host, "raced", prefix, 12, 10));
    let reports = futures::future::join_all(loads).await;
    let mut all = load::LoadReport::default();
    for (n, report) in reports.into_iter().enumerate() {
        println!("host {n}: {} changes, {} answers retried after a 503", report.first.len(), report.retried_503);
        assert!(!report.first.is_empty(), "host {n} is answered");
        all.first.extend(report.first);
        all.replays.extend(report.replays);
    }
    load::assert_exact(&hosts[0], "raced", &all).await;
    let counts = proxy.model_counts();
    println!("{counts:?}");
    assert!(counts.conflicts > 0, "the hosts' transactions met: {counts:?}");
}

/// One Lambda Managed Instances environment: one `acidizer-api` process that takes 32 invocations at once
/// (`AWS_LAMBDA_MAX_CONCURRENCY`, from a Runtime API that hands them out as they come), whose changes of one
/// counter commit in groups, exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_managed_instances_environment_commits_its_invocations_in_groups_exact() {
    let proxy = FaultProxy::start_modelled(&dynamodb_local::shared().endpoint, DynamoModel::AWS).await;
    let app = App::spawn_lambda(&proxy.endpoint, 1, &[("AWS_LAMBDA_MAX_CONCURRENCY", "32".to_owned())]).await;
    assert_eq!(app.increment(Some("warm-up"), None).await.status(), 200);
    proxy.reset_counts();
    let report = load::run(&app, "managed", 32, 8).await;
    load::assert_exact(&app, "managed", &report).await;
    let (commits, transactions) = (report.first.len() as f64, proxy.count("TransactWriteItems") as f64);
    println!("one environment, 32 at once: {commits} commits in {transactions} transactions");
    assert!(transactions < commits / 2.0, "{transactions} transactions for {commits} changes: not at once, in groups");
}

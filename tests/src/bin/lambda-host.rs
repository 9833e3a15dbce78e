//! A Lambda function run as Lambda runs it — a local Runtime API and, in front of it, a stand-in for API Gateway's
//! HTTP API (`acidizer_tests::lambda`) — for the benchmarks of tests/perf: prints `listening on http://ADDR` once
//! it listens, and runs until SIGTERM or SIGINT, when it stops the function's processes with it. The function gets
//! this program's environment (its table, `AWS_ENDPOINT_URL`, `AWS_LAMBDA_MAX_CONCURRENCY` for a Lambda Managed
//! Instances environment, …).
//!
//! Usage: `lambda-host BOOTSTRAP INSTANCES`

use acidizer_tests::lambda::Gateway;
use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, bootstrap, instances] = args.as_slice() else {
        eprintln!("usage: lambda-host BOOTSTRAP INSTANCES");
        std::process::exit(2);
    };
    let Ok(instances) = instances.parse::<usize>() else {
        eprintln!("lambda-host: INSTANCES is a number, not {instances:?}");
        std::process::exit(2);
    };
    let env: Vec<(&str, String)> = ["COUNTER_TABLE", "ALLOWED_ORIGINS", "COUNTER_MAX", "AWS_LAMBDA_MAX_CONCURRENCY"]
        .into_iter()
        .chain(["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "RUST_LOG"])
        .filter_map(|name| std::env::var(name).ok().map(|value| (name, value)))
        .collect();
    let gateway = Gateway::start(&PathBuf::from(bootstrap), &env, instances).await;
    println!("listening on {}", gateway.base);
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    // The function's processes are killed with the gateway.
    drop(gateway);
}

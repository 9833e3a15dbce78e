//! DynamoDB Local behind the model of what DynamoDB does to a hot item (`acidizer_tests::dynamo_model`), for the
//! benchmarks of tests/perf: prints `listening on http://ADDR` once it answers, and writes what it counted (the
//! model's write units, conflicts and throttles, and the transactions forwarded) as one JSON object to COUNTS_FILE
//! every half second. It runs until it is killed; DynamoDB Local dies with it.
//!
//! Usage: `dynamodb-model COUNTS_FILE`

use acidizer_tests::dynamo_model::DynamoModel;
use acidizer_tests::dynamodb_local;
use acidizer_tests::fault_proxy::FaultProxy;
use std::time::Duration;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, counts_file] = args.as_slice() else {
        eprintln!("usage: dynamodb-model COUNTS_FILE");
        std::process::exit(2);
    };
    let upstream =
        tokio::task::spawn_blocking(|| dynamodb_local::shared().endpoint.clone()).await.expect("DynamoDB Local");
    let proxy = FaultProxy::start_modelled(&upstream, DynamoModel::AWS).await;
    println!("listening on {}", proxy.endpoint);
    loop {
        let counts = proxy.model_counts();
        let json = serde_json::json!({
            "writeUnits": counts.write_units,
            "conflicts": counts.conflicts,
            "throttled": counts.throttled,
            "transactions": proxy.count("TransactWriteItems"),
        });
        if let Err(error) = std::fs::write(counts_file, json.to_string()) {
            eprintln!("dynamodb-model: cannot write {counts_file}: {error}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

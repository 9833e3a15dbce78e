//! `acidizer-stream`: the counter table's stream → the latest value of each changed counter → every subscriber,
//! through the API Gateway Management API. A record is reported as a batch item failure only when its broadcast
//! could not be attempted at all (its counter's subscribers could not be listed).
//!
//! Environment: `CONNECTIONS_TABLE`, `WEBSOCKET_ENDPOINT`, and the AWS SDK's standard variables.

use acidizer_apigw::{ManagementApi, WEBSOCKET_ENDPOINT_ENV};
use acidizer_core::live::{Broadcaster, failed_records};
use acidizer_store_dynamodb::stream::stream_record;
use acidizer_store_dynamodb::{CONNECTIONS_TABLE_ENV, DynamoConnections, sdk_config_from_env};
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{Error, LambdaEvent};
use std::sync::Arc;

type Broadcast = Broadcaster<DynamoConnections, ManagementApi>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = acidizer_lambda::init("acidizer-stream")?;
    let table = std::env::var(CONNECTIONS_TABLE_ENV).map_err(|_| format!("{CONNECTIONS_TABLE_ENV} is not set"))?;
    let endpoint = std::env::var(WEBSOCKET_ENDPOINT_ENV).map_err(|_| format!("{WEBSOCKET_ENDPOINT_ENV} is not set"))?;
    let config = sdk_config_from_env().await;
    let connections = DynamoConnections::new(acidizer_store_dynamodb::aws_sdk_dynamodb::Client::new(&config), table);
    let broadcaster = Broadcaster::new(Arc::new(connections), Arc::new(ManagementApi::new(&config, &endpoint)));
    let broadcaster = &broadcaster;
    acidizer_lambda::handler::run(metrics, move |event: LambdaEvent<Event>| handle(broadcaster, event)).await
}

async fn handle(broadcaster: &Broadcast, event: LambdaEvent<Event>) -> Result<DynamoDbEventResponse, Error> {
    let records: Vec<_> = event
        .payload
        .records
        .into_iter()
        .map(|record| {
            let sequence_number = record.change.sequence_number.unwrap_or_default();
            stream_record(sequence_number, &record.event_name, record.change.new_image)
        })
        .collect();
    let (failed, report) = failed_records(broadcaster, &records).await;
    tracing::info!(
        records = records.len(),
        counters = report.counters,
        reached = report.reached,
        gone = report.gone,
        failed = report.failed,
        unreachable = report.unreachable.len(),
        "broadcast"
    );
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|sequence_number| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            failure
        })
        .collect();
    Ok(response)
}

//! `acidizer-stream`: the counter table's stream → the latest value of each changed counter → every subscriber,
//! through the API Gateway Management API. Failing posts (a throttled or failing Management API) are retried with
//! backoff while the invocation's time lasts; the records of every counter whose latest value did not reach all
//! its subscribers are reported as batch item failures, so that Lambda sends them again.
//!
//! Environment: `CONNECTIONS_TABLE`, `WEBSOCKET_ENDPOINT`, and the AWS SDK's standard variables.

use acidizer_apigw::{ManagementApi, WEBSOCKET_ENDPOINT_ENV};
use acidizer_core::live::{Broadcaster, failed_records};
use acidizer_store_dynamodb::stream::stream_record;
use acidizer_store_dynamodb::{CONNECTIONS_TABLE_ENV, DynamoConnections, lambda_sdk_config};
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{Error, LambdaEvent};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

type Broadcast = Broadcaster<DynamoConnections, ManagementApi>;

/// What is left of an invocation for answering, after the broadcast's retries.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);
/// The longest one batch keeps retrying: past it, Lambda's own retry of the reported records takes over.
const MAX_BROADCAST: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = acidizer_lambda::init("acidizer-stream")?;
    let table = acidizer_lambda::required_env(CONNECTIONS_TABLE_ENV)?;
    let endpoint = acidizer_lambda::required_env(WEBSOCKET_ENDPOINT_ENV)?;
    let config = lambda_sdk_config();
    let connections = DynamoConnections::new(acidizer_store_dynamodb::aws_sdk_dynamodb::Client::new(&config), table);
    let broadcaster = Broadcaster::new(Arc::new(connections), Arc::new(ManagementApi::new(&config, &endpoint)));
    let broadcaster = &broadcaster;
    acidizer_lambda::handler::run(metrics, move |event: LambdaEvent<Event>| handle(broadcaster, event)).await
}

/// Failing subscribers are retried until shortly before the invocation's own deadline, so that the function
/// still answers (with the records to retry) before Lambda gives up on it.
fn broadcast_deadline(context: &lambda_runtime::Context) -> Instant {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let remaining = Duration::from_millis(context.deadline).saturating_sub(now);
    Instant::now() + remaining.saturating_sub(ANSWER_MARGIN).min(MAX_BROADCAST)
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
    let (failed, report) = failed_records(broadcaster, &records, broadcast_deadline(&event.context)).await;
    tracing::info!(
        records = records.len(),
        counters = report.counters,
        reached = report.reached,
        gone = report.gone,
        failed = report.failed,
        undelivered = report.undelivered.len(),
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

//! `acidizer-stream`: the counter table's stream → the latest value of each changed counter → every subscriber,
//! through the API Gateway Management API. Failing posts (a throttled or failing Management API) are retried with
//! backoff while the invocation's time lasts; the records of every counter whose latest value did not reach all
//! its subscribers are reported as batch item failures, so that Lambda sends them again.
//!
//! A counter with more subscribers than one invocation reaches is taken up where it stopped by the next invocation
//! (the reported records, sent again). While it broadcasts, the function reads the counter's newest state from
//! `COUNTER_TABLE` every quarter of a second: the subscribers not yet reached get that one instead.
//!
//! Environment: `CONNECTIONS_TABLE`, `WEBSOCKET_ENDPOINT`, `COUNTER_TABLE` (optional: without it, each broadcast
//! sends the newest state of its batch), `MAX_POSTS_IN_FLIGHT` (optional, 500 unless set: the ceiling of the
//! adaptive number of posts in flight), and the AWS SDK's standard variables.

use acidizer_apigw::{ManagementApi, WEBSOCKET_ENDPOINT_ENV};
use acidizer_core::live::{Broadcaster, DEFAULT_MAX_IN_FLIGHT, failed_records};
use acidizer_lambda::StartError;
use acidizer_store_dynamodb::stream::stream_record;
use acidizer_store_dynamodb::{
    CONNECTIONS_TABLE_ENV, COUNTER_TABLE_ENV, DynamoConnections, DynamoStore, lambda_sdk_config,
};
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

/// The environment variable with the most posts in flight at once.
const MAX_POSTS_IN_FLIGHT_ENV: &str = "MAX_POSTS_IN_FLIGHT";

/// Not a whole number from 1 to 10 000.
#[derive(Debug, thiserror::Error)]
#[error("expected a whole number from 1 to 10000, not {0:?}")]
struct InvalidWidth(String);

fn max_in_flight() -> Result<usize, StartError> {
    let Ok(raw) = std::env::var(MAX_POSTS_IN_FLIGHT_ENV) else { return Ok(DEFAULT_MAX_IN_FLIGHT) };
    match raw.trim().parse::<usize>() {
        Ok(width @ 1..=10_000) => Ok(width),
        _ => Err(StartError::invalid(MAX_POSTS_IN_FLIGHT_ENV, InvalidWidth(raw))),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let metrics = acidizer_lambda::init("acidizer-stream")?;
    let table = acidizer_lambda::required_env(CONNECTIONS_TABLE_ENV)?;
    let endpoint = acidizer_lambda::required_env(WEBSOCKET_ENDPOINT_ENV)?;
    let config = lambda_sdk_config();
    let client = acidizer_store_dynamodb::aws_sdk_dynamodb::Client::new(&config);
    let connections = DynamoConnections::new(client.clone(), table);
    let mut broadcaster = Broadcaster::new(Arc::new(connections), Arc::new(ManagementApi::new(&config, &endpoint)))
        .with_max_in_flight(max_in_flight()?);
    if let Ok(counters) = std::env::var(COUNTER_TABLE_ENV) {
        broadcaster = broadcaster.with_newest_state(Arc::new(DynamoStore::new(client, counters)));
    }
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
        throttled = report.throttled,
        undelivered = report.undelivered.len(),
        "broadcast"
    );
    let mut response = DynamoDbEventResponse::default();
    // A record without a sequence number cannot be named; DynamoDB Streams gives every record one.
    response.batch_item_failures = failed
        .into_iter()
        .filter(|sequence_number| !sequence_number.is_empty())
        .map(|sequence_number| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            failure
        })
        .collect();
    Ok(response)
}

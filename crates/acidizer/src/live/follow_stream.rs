//! On the DynamoDB store, `acidizer serve` follows the counter table's stream itself — every shard, from LATEST
//! at start, new shards from their beginning — and feeds the records through the same code path as the
//! `acidizer-stream` Lambda.

use super::LocalBroadcaster;
use acidizer_core::live::failed_records;
use acidizer_store_dynamodb::aws_config::SdkConfig;
use acidizer_store_dynamodb::stream::stream_record;
use aws_sdk_dynamodbstreams::Client as Streams;
use aws_sdk_dynamodbstreams::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often open shards are read.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// How often the stream is described again to find new shards.
const DISCOVER_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("cannot find the stream of table {table}: {detail}")]
    NoStream { table: String, detail: String },
}

/// How long to wait before looking for the stream again, when the store does not answer at start.
const LOCATE_RETRY: Duration = Duration::from_secs(2);

/// Follows the table's stream from now on (positioned before this returns, when the store answers), in the
/// background. While the store does not answer — the server still starts, and answers 503 — it keeps looking.
pub async fn start(
    config: SdkConfig,
    table: String,
    broadcaster: LocalBroadcaster,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let first = locate(&config, &table).await;
    tokio::spawn(async move {
        let mut follower = match first {
            Ok(follower) => follower,
            Err(error) => {
                tracing::warn!(%error, "cannot follow the stream yet; retrying");
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(LOCATE_RETRY) => {}
                    }
                    if let Ok(follower) = locate(&config, &table).await {
                        break follower;
                    }
                }
            }
        };
        tracing::info!(table, "following the counter table's stream");
        follower.run(broadcaster, shutdown).await;
    })
}

/// Finds the table's stream and its open shards, positioned at their ends.
async fn locate(config: &SdkConfig, table: &str) -> Result<Follower, FollowError> {
    let no_stream = |detail: String| FollowError::NoStream { table: table.to_owned(), detail };
    let tables = acidizer_store_dynamodb::aws_sdk_dynamodb::Client::new(config);
    let description = tables
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|error| no_stream(DisplayErrorContext(&error).to_string()))?;
    let arn = description
        .table()
        .and_then(|table| table.latest_stream_arn())
        .ok_or_else(|| no_stream("the table has no stream enabled".to_owned()))?
        .to_owned();
    let mut follower = Follower { streams: Streams::new(config), arn, shards: HashMap::new() };
    follower.discover(ShardIteratorType::Latest).await.map_err(no_stream)?;
    Ok(follower)
}

struct Follower {
    streams: Streams,
    arn: String,
    /// Open shards, and where each is read from next.
    shards: HashMap<String, Position>,
}

#[derive(Default)]
struct Position {
    iterator: Option<String>,
    /// The last record read: an expired iterator resumes after it.
    last_sequence_number: Option<String>,
}

impl Follower {
    async fn run(&mut self, broadcaster: LocalBroadcaster, shutdown: CancellationToken) {
        let mut discovered = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
            if discovered.elapsed() >= DISCOVER_EVERY {
                if let Err(error) = self.discover(ShardIteratorType::TrimHorizon).await {
                    tracing::warn!(error, "cannot look for new stream shards");
                }
                discovered = Instant::now();
            }
            let shards: Vec<String> = self.shards.keys().cloned().collect();
            for shard in shards {
                self.read(&shard, &broadcaster).await;
            }
        }
    }

    /// Adds the shards not yet followed, reading each from `start`.
    async fn discover(&mut self, start: ShardIteratorType) -> Result<(), String> {
        let description = self
            .streams
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .map_err(|error| DisplayErrorContext(&error).to_string())?;
        let shards = description.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            let closed = shard.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_some();
            if self.shards.contains_key(id) || (closed && start == ShardIteratorType::Latest) {
                continue;
            }
            let iterator = self.iterator(id, start.clone(), None).await?;
            self.shards.insert(id.to_owned(), Position { iterator, last_sequence_number: None });
        }
        Ok(())
    }

    async fn iterator(
        &self,
        shard: &str,
        start: ShardIteratorType,
        after: Option<String>,
    ) -> Result<Option<String>, String> {
        let output = self
            .streams
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shard)
            .shard_iterator_type(start)
            .set_sequence_number(after)
            .send()
            .await
            .map_err(|error| DisplayErrorContext(&error).to_string())?;
        Ok(output.shard_iterator().map(str::to_owned))
    }

    /// A fresh iterator for a shard whose iterator expired: after the last record read, else from now.
    async fn resume(&mut self, shard: &str) {
        let Some(last) = self.shards.get(shard).map(|position| position.last_sequence_number.clone()) else {
            return;
        };
        let fresh = match last {
            Some(last) => self.iterator(shard, ShardIteratorType::AfterSequenceNumber, Some(last)).await,
            None => self.iterator(shard, ShardIteratorType::Latest, None).await,
        };
        match (fresh, self.shards.get_mut(shard)) {
            (Ok(iterator), Some(position)) => position.iterator = iterator,
            (Err(error), _) => tracing::warn!(shard, error, "cannot resume the stream"),
            _ => {}
        }
    }

    async fn read(&mut self, shard: &str, broadcaster: &LocalBroadcaster) {
        let Some(iterator) = self.shards.get(shard).and_then(|position| position.iterator.clone()) else {
            self.shards.remove(shard);
            return;
        };
        let output = match self.streams.get_records().shard_iterator(iterator).send().await {
            Ok(output) => output,
            Err(error) if error.code() == Some("ExpiredIteratorException") => {
                self.resume(shard).await;
                return;
            }
            Err(error) => {
                tracing::warn!(shard, error = %DisplayErrorContext(&error), "cannot read the stream; retrying");
                return;
            }
        };
        let records: Vec<_> = output
            .records()
            .iter()
            .filter_map(|record| {
                let change = record.dynamodb()?;
                let event = record.event_name().map(|name| name.as_str()).unwrap_or("");
                let image = change.new_image().cloned().unwrap_or_default();
                Some(stream_record(change.sequence_number().unwrap_or_default().to_owned(), event, image))
            })
            .collect();
        if !records.is_empty() {
            let (failed, _) = failed_records(broadcaster, &records).await;
            if !failed.is_empty() {
                tracing::warn!(records = failed.len(), "stream records whose broadcast could not be attempted");
            }
        }
        let last = records.last().map(|record| record.sequence_number.clone());
        match (output.next_shard_iterator(), self.shards.get_mut(shard)) {
            (Some(next), Some(position)) => {
                position.iterator = Some(next.to_owned());
                position.last_sequence_number = last.or(position.last_sequence_number.take());
            }
            _ => {
                tracing::debug!(shard, "stream shard closed");
                self.shards.remove(shard);
            }
        }
    }
}

//! On the DynamoDB store, `acidizer serve` follows the counter table's stream itself — the open shards from
//! LATEST at start (closed ones are history, never replayed), every shard found later from its beginning, each
//! shard read once to its end — and feeds the records through the same code path as the `acidizer-stream` Lambda.

use super::LocalBroadcaster;
use acidizer_core::live::failed_records;
use acidizer_core::telemetry::error_chain;
use acidizer_store_dynamodb::aws_config::SdkConfig;
use acidizer_store_dynamodb::stream::stream_record;
use aws_sdk_dynamodbstreams::Client as Streams;
use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often open shards are read.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// How often the stream is described again to find new shards.
const DISCOVER_EVERY: Duration = Duration::from_secs(5);
/// How long one batch's broadcast may retry failing subscribers.
const BROADCAST_BUDGET: Duration = Duration::from_secs(5);

/// What an SDK call failed with.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why the stream cannot be followed (yet).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("cannot describe the table {table}")]
    Table {
        table: String,
        #[source]
        source: Cause,
    },
    #[error("the table {0} has no stream enabled")]
    NoStream(String),
    #[error("cannot describe the table's stream")]
    Stream(#[source] Cause),
    #[error("cannot start reading the stream's shard {shard}")]
    Shard {
        shard: String,
        #[source]
        source: Cause,
    },
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
                tracing::warn!(error = error_chain(&error), "cannot follow the stream yet; retrying");
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
    let tables = acidizer_store_dynamodb::aws_sdk_dynamodb::Client::new(config);
    let description = tables
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|error| FollowError::Table { table: table.to_owned(), source: error.into() })?;
    let arn = description
        .table()
        .and_then(|table| table.latest_stream_arn())
        .ok_or_else(|| FollowError::NoStream(table.to_owned()))?
        .to_owned();
    let mut follower = Follower { streams: Streams::new(config), arn, shards: HashMap::new(), seen: HashSet::new() };
    follower.discover(ShardIteratorType::Latest).await?;
    Ok(follower)
}

struct Follower {
    streams: Streams,
    arn: String,
    /// Shards being read, and where each is read from next.
    shards: HashMap<String, Position>,
    /// Every shard ever described: being read, read to its end, or closed before the server started.
    seen: HashSet<String>,
}

struct Position {
    iterator: Option<String>,
    /// Where the shard was first read from: an expired iterator that read nothing yet starts there again.
    start: ShardIteratorType,
    /// The last record read: an expired iterator resumes after it.
    last_sequence_number: Option<String>,
}

/// Which described shards to start reading, and from where. At startup (`start` LATEST) the open shards are read
/// from now on and the closed ones are history; afterwards every shard not seen before is new (a child of a shard
/// that closed, or a shard that opened since) and is read from its beginning. A shard is never read twice.
fn shards_to_start(
    described: &[(String, bool)],
    seen: &mut HashSet<String>,
    start: &ShardIteratorType,
) -> Vec<(String, ShardIteratorType)> {
    described
        .iter()
        .filter(|(id, _)| seen.insert(id.clone()))
        .filter(|(_, closed)| !(*closed && *start == ShardIteratorType::Latest))
        .map(|(id, _)| (id.clone(), start.clone()))
        .collect()
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
                    tracing::warn!(error = error_chain(&error), "cannot look for new stream shards");
                }
                discovered = Instant::now();
            }
            let shards: Vec<String> = self.shards.keys().cloned().collect();
            for shard in shards {
                self.read(&shard, &broadcaster).await;
            }
        }
    }

    /// Adds the shards not yet followed, reading each from `start` (see [`shards_to_start`]).
    async fn discover(&mut self, start: ShardIteratorType) -> Result<(), FollowError> {
        let described = self.describe().await?;
        let mut failed = None;
        for (id, from) in shards_to_start(&described, &mut self.seen, &start) {
            match self.iterator(&id, from.clone(), None).await {
                Ok(iterator) => {
                    self.shards.insert(id, Position { iterator, start: from, last_sequence_number: None });
                }
                Err(error) => {
                    // Described again next time, and started then; the other shards start now.
                    self.seen.remove(&id);
                    failed = Some(error);
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Every shard of the stream (all pages of `DescribeStream`), with whether it is closed.
    async fn describe(&self) -> Result<Vec<(String, bool)>, FollowError> {
        let mut described = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let output = self
                .streams
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(after.take())
                .send()
                .await
                .map_err(|error| FollowError::Stream(error.into()))?;
            let Some(description) = output.stream_description() else { break };
            for shard in description.shards() {
                let Some(id) = shard.shard_id() else { continue };
                let closed = shard.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_some();
                described.push((id.to_owned(), closed));
            }
            match description.last_evaluated_shard_id() {
                Some(last) => after = Some(last.to_owned()),
                None => break,
            }
        }
        Ok(described)
    }

    async fn iterator(
        &self,
        shard: &str,
        start: ShardIteratorType,
        after: Option<String>,
    ) -> Result<Option<String>, FollowError> {
        let output = self
            .streams
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shard)
            .shard_iterator_type(start)
            .set_sequence_number(after)
            .send()
            .await
            .map_err(|error| FollowError::Shard { shard: shard.to_owned(), source: error.into() })?;
        Ok(output.shard_iterator().map(str::to_owned))
    }

    /// A fresh iterator for a shard whose iterator expired: after the last record read, else where it started.
    async fn resume(&mut self, shard: &str) {
        let Some(position) = self.shards.get(shard) else { return };
        match position.last_sequence_number.clone() {
            Some(last) => self.restart(shard, ShardIteratorType::AfterSequenceNumber, Some(last)).await,
            None => self.restart(shard, position.start.clone(), None).await,
        }
    }

    /// A fresh iterator for a shard, from `start` (after the sequence number `after`, when given).
    async fn restart(&mut self, shard: &str, start: ShardIteratorType, after: Option<String>) {
        match (self.iterator(shard, start, after).await, self.shards.get_mut(shard)) {
            (Ok(iterator), Some(position)) => position.iterator = iterator,
            (Err(error), _) => tracing::warn!(shard, error = error_chain(&error), "cannot restart the stream"),
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
            Err(error) if error.code() == Some("TrimmedDataAccessException") => {
                // The iterator points at records already trimmed: go on after the last record read, or, when none
                // was, from the oldest record still there — everything before the iterator is trimmed too, so
                // nothing older than where it stood is replayed. (DynamoDB Local also answers this for a LATEST
                // iterator once a new, empty table gets its first write.)
                let last = self.shards.get(shard).and_then(|position| position.last_sequence_number.clone());
                match last {
                    Some(last) => self.restart(shard, ShardIteratorType::AfterSequenceNumber, Some(last)).await,
                    None => self.restart(shard, ShardIteratorType::TrimHorizon, None).await,
                }
                return;
            }
            Err(error) => {
                tracing::warn!(shard, error = error_chain(&error), "cannot read the stream; retrying");
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
            let (failed, _) =
                failed_records(broadcaster, &records, tokio::time::Instant::now() + BROADCAST_BUDGET).await;
            if !failed.is_empty() {
                tracing::warn!(records = failed.len(), "stream records whose broadcast did not reach everyone");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn described(shards: &[(&str, bool)]) -> Vec<(String, bool)> {
        shards.iter().map(|(id, closed)| ((*id).to_owned(), *closed)).collect()
    }

    #[test]
    fn closed_shards_are_history_at_startup_and_never_read_later() {
        let mut seen = HashSet::new();
        let at_start = described(&[("old-1", true), ("old-2", true), ("open-1", false)]);
        let started = shards_to_start(&at_start, &mut seen, &ShardIteratorType::Latest);
        assert_eq!(started, [("open-1".to_owned(), ShardIteratorType::Latest)]);

        // Later: the open shard closed and has a child; the shards closed before startup are still described.
        let later = described(&[("old-1", true), ("old-2", true), ("open-1", true), ("child-1", false)]);
        let started = shards_to_start(&later, &mut seen, &ShardIteratorType::TrimHorizon);
        assert_eq!(started, [("child-1".to_owned(), ShardIteratorType::TrimHorizon)], "only the new shard");
        assert!(shards_to_start(&later, &mut seen, &ShardIteratorType::TrimHorizon).is_empty(), "nothing twice");
    }

    #[test]
    fn a_shard_that_opened_and_closed_between_looks_is_read_whole() {
        let mut seen = HashSet::new();
        shards_to_start(&described(&[("a", false)]), &mut seen, &ShardIteratorType::Latest);
        let started =
            shards_to_start(&described(&[("a", true), ("b", true)]), &mut seen, &ShardIteratorType::TrimHorizon);
        assert_eq!(started, [("b".to_owned(), ShardIteratorType::TrimHorizon)]);
    }
}

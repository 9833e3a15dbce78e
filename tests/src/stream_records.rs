//! The counter table's stream as the event source mapping reads it for `acidizer-stream`: records read from a
//! shard in order and handed over as Lambda's DynamoDB event (DynamoDB JSON images).

use serde_json::{Value, json};

/// A reader of a table's stream, from its first record on (one shard: DynamoDB Local's tables have one).
pub struct StreamReader {
    streams: aws_sdk_dynamodbstreams::Client,
    arn: String,
    shard: String,
    iterator: Option<String>,
    /// The last record read: a new iterator starts after it.
    last: Option<String>,
}

impl StreamReader {
    /// Reads `table`'s stream on the DynamoDB at `endpoint` from its oldest record.
    pub async fn open(endpoint: &str, dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> StreamReader {
        let config = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new("t", "t", None, None, "tests"))
            .build();
        let streams = aws_sdk_dynamodbstreams::Client::from_conf(config);
        let described = dynamodb.describe_table().table_name(table).send().await.expect("the table");
        let arn = described.table().and_then(|t| t.latest_stream_arn()).expect("a stream").to_owned();
        let stream = streams.describe_stream().stream_arn(&arn).send().await.expect("the stream");
        let shard = stream.stream_description().and_then(|d| d.shards().first()).and_then(|s| s.shard_id());
        let shard = shard.expect("a shard").to_owned();
        let mut reader = StreamReader { streams, arn, shard, iterator: None, last: None };
        reader.iterator = reader.new_iterator().await;
        reader
    }

    /// An iterator from after the last record read, or from the oldest.
    async fn new_iterator(&self) -> Option<String> {
        use aws_sdk_dynamodbstreams::types::ShardIteratorType;
        let request = self.streams.get_shard_iterator().stream_arn(&self.arn).shard_id(&self.shard);
        let request = match &self.last {
            Some(last) => request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(last),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        request.send().await.expect("a shard iterator").shard_iterator().map(str::to_owned)
    }

    /// The records written since the last read (at most 1 000), as event records.
    pub async fn read(&mut self) -> Vec<Value> {
        let Some(iterator) = self.iterator.take() else { return Vec::new() };
        let output = match self.streams.get_records().shard_iterator(iterator).send().await {
            Ok(output) => output,
            Err(error) => {
                // DynamoDB Local at times refuses an iterator of an empty shard (TrimmedDataAccessException):
                // a new one, after the last record read, goes on.
                eprintln!("reading the stream: {error}; going on with a new iterator");
                self.iterator = self.new_iterator().await;
                return Vec::new();
            }
        };
        self.iterator = output.next_shard_iterator().map(str::to_owned);
        let records: Vec<Value> = output.records().iter().map(|record| self.event_record(record)).collect();
        if let Some(last) = output.records().last().and_then(|r| r.dynamodb()).and_then(|c| c.sequence_number()) {
            self.last = Some(last.to_owned());
        }
        records
    }

    fn event_record(&self, record: &aws_sdk_dynamodbstreams::types::Record) -> Value {
        let change = record.dynamodb().expect("a change");
        json!({
            "eventID": record.event_id(),
            "eventName": record.event_name().map(|name| name.as_str()),
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": self.arn,
            "dynamodb": {
                "ApproximateCreationDateTime": 1_795_428_000.0,
                "Keys": change.keys().map(image),
                "NewImage": change.new_image().map(image),
                "SequenceNumber": change.sequence_number(),
                "SizeBytes": change.size_bytes(),
                "StreamViewType": "NEW_IMAGE",
            },
        })
    }
}

/// The event that hands `records` to the function.
pub fn event(records: &[Value]) -> Value {
    json!({ "Records": records })
}

/// Whether an event record is of a counter's item (not an audit record or a remembered answer).
pub fn is_counter(record: &Value) -> bool {
    record["dynamodb"]["NewImage"]["kind"]["S"] == "counter"
}

/// A stream image in DynamoDB JSON, as Lambda receives it.
fn image(item: &std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>) -> Value {
    item.iter().map(|(name, value)| (name.clone(), attribute(value))).collect::<serde_json::Map<_, _>>().into()
}

/// One attribute in DynamoDB JSON: those the counter table's items hold (an audit page's request ids are a list).
fn attribute(value: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match value {
        A::S(s) => json!({ "S": s }),
        A::N(n) => json!({ "N": n }),
        A::L(list) => json!({ "L": list.iter().map(attribute).collect::<Vec<_>>() }),
        other => panic!("unexpected attribute {other:?}"),
    }
}

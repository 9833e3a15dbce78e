//! Reading the counter table's stream: which records are counter changes. The `acidizer-stream` Lambda (records
//! from the event source mapping) and `acidizer serve` (records it reads itself) both come through here.

use crate::items::{CounterItem, Kind};
use acidizer_core::live::StreamRecord;
use acidizer_core::telemetry::error_chain;
use acidizer_core::{CounterChange, Timestamp};
use serde::Deserialize;

/// Just what tells a counter item from the others.
#[derive(Deserialize)]
struct KindOnly {
    kind: Option<Kind>,
}

/// The counter change a new image holds, or `None` for any other item (audit records, remembered answers).
pub fn counter_change(new_image: impl Into<serde_dynamo::Item>) -> Option<CounterChange> {
    let image: serde_dynamo::Item = new_image.into();
    let kind: KindOnly = serde_dynamo::from_item(image.clone()).ok()?;
    if kind.kind != Some(Kind::Counter) {
        return None;
    }
    match serde_dynamo::from_item::<_, CounterItem>(image) {
        Ok(item) => Some(CounterChange {
            seq: item.seq(),
            counter: item.counter,
            value: item.value,
            updated_at: Timestamp::from_unix_millis(item.updated_at),
        }),
        Err(error) => {
            tracing::warn!(error = error_chain(&error), "a counter record that cannot be read; skipped");
            None
        }
    }
}

/// One stream record: removals carry no change.
pub fn stream_record(
    sequence_number: String,
    event_name: &str,
    new_image: impl Into<serde_dynamo::Item>,
) -> StreamRecord {
    let change = if event_name == "REMOVE" { None } else { counter_change(new_image) };
    StreamRecord { sequence_number, change }
}

//! A batch of stream records, as the `acidizer-stream` Lambda and `acidizer serve`'s stream follower get them.

use super::{BroadcastReport, Broadcaster, ConnectionStore, Notifier};
use crate::domain::CounterChange;

/// One record of the counter table's stream: its sequence number, and the counter change it carries (`None` for
/// records that are not counter changes: audit records, remembered answers, removals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub sequence_number: String,
    pub change: Option<CounterChange>,
}

/// Broadcasts a batch, and returns the sequence numbers of the records whose broadcast could not be attempted at
/// all (their counter's subscribers could not be listed): those are the batch item failures.
pub async fn failed_records<C: ConnectionStore, N: Notifier>(
    broadcaster: &Broadcaster<C, N>,
    records: &[StreamRecord],
) -> (Vec<String>, BroadcastReport) {
    let report = broadcaster.broadcast(records.iter().filter_map(|record| record.change.clone())).await;
    let failed = records
        .iter()
        .filter(|record| record.change.as_ref().is_some_and(|change| report.unreachable.contains(&change.counter)))
        .map(|record| record.sequence_number.clone())
        .collect();
    (failed, report)
}

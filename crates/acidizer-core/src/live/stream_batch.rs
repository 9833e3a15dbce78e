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

/// Broadcasts a batch until `deadline`, and returns the sequence numbers of the records of every counter whose
/// latest value did not reach all its subscribers (and that no later record takes on): those are the batch item
/// failures, which the event source mapping sends again; that broadcast goes on where this one stopped.
pub async fn failed_records<C: ConnectionStore, N: Notifier>(
    broadcaster: &Broadcaster<C, N>,
    records: &[StreamRecord],
    deadline: tokio::time::Instant,
) -> (Vec<String>, BroadcastReport) {
    let changes = records.iter().filter_map(|record| record.change.clone());
    let report = broadcaster.broadcast_until(changes, deadline).await;
    let failed = records
        .iter()
        .filter(|record| record.change.as_ref().is_some_and(|change| report.undelivered.contains(&change.counter)))
        .map(|record| record.sequence_number.clone())
        .collect();
    (failed, report)
}

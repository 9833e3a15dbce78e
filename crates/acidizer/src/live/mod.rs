//! Live updates on `acidizer serve`: WebSocket sessions on `/ws`, subscribed in an in-process hub, fed by the
//! SQLite writer's commits or by the DynamoDB table's stream — through the same broadcast use case as on AWS.

pub mod follow_stream;
pub mod heartbeat;
pub mod hub;
pub mod limits;
pub mod websocket;

use acidizer_core::CounterChange;
use acidizer_core::live::Broadcaster;
use hub::Hub;
use tokio::sync::mpsc;

/// The broadcaster of `acidizer serve`: the hub is both the connection store and the notifier.
pub type LocalBroadcaster = Broadcaster<Hub, Hub>;

/// Broadcasts what the SQLite writer commits: all changes waiting are taken together and coalesced.
pub async fn broadcast_commits(broadcaster: LocalBroadcaster, mut changes: mpsc::UnboundedReceiver<CounterChange>) {
    while let Some(first) = changes.recv().await {
        let mut batch = vec![first];
        while let Ok(change) = changes.try_recv() {
            batch.push(change);
        }
        broadcaster.broadcast(batch).await;
    }
}

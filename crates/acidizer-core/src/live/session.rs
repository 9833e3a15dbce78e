//! Answering what a WebSocket client sends: the same on `acidizer serve` and on the `acidizer-ws` Lambda.

use super::{ClientAction, Outbound, parse_client_message};
use crate::domain::CounterName;
use crate::store::CounterStore;
use crate::usecase::Counters;

/// The answer to one client message on a connection subscribed to `counter`.
pub async fn answer<S: CounterStore>(counters: &Counters<S>, counter: &CounterName, message: &str) -> Outbound {
    match parse_client_message(message) {
        Ok(ClientAction::Ping) => Outbound::Pong,
        Ok(ClientAction::Sync) => match counters.read(counter).await {
            Ok(snapshot) => Outbound::Value(snapshot),
            Err(error) => {
                tracing::warn!(%counter, %error, "cannot read a counter for sync");
                Outbound::Error("the counter could not be read; try again".to_owned())
            }
        },
        Err(refused) => Outbound::Error(refused.to_string()),
    }
}

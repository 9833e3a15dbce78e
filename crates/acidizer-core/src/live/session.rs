//! Answering what a WebSocket client sends: the same on `acidizer serve` and on the `acidizer-ws` Lambda.

use super::{ClientAction, Outbound, parse_client_message};
use crate::domain::CounterName;
use crate::store::CounterStore;
use crate::telemetry::error_chain;
use crate::usecase::Counters;

/// The answer to one client message on a connection subscribed to `subscription` (`None`: it could not be read).
pub async fn answer<S: CounterStore>(
    counters: &Counters<S>,
    subscription: Option<&CounterName>,
    message: &str,
) -> Outbound {
    match parse_client_message(message) {
        Ok(ClientAction::Ping) => Outbound::Pong,
        // Never another counter's value: a connection whose subscription is unknown is told so.
        Ok(ClientAction::Sync) => match subscription {
            Some(counter) => sync(counters, counter).await,
            None => Outbound::Error("this connection's subscription could not be read; reconnect".to_owned()),
        },
        Err(refused) => Outbound::Error(refused.to_string()),
    }
}

async fn sync<S: CounterStore>(counters: &Counters<S>, counter: &CounterName) -> Outbound {
    match counters.read(counter).await {
        Ok(snapshot) => Outbound::Value(snapshot),
        Err(error) => {
            tracing::warn!(%counter, error = error_chain(&error), "cannot read a counter for sync");
            Outbound::Error("the counter could not be read; try again".to_owned())
        }
    }
}

//! `acidizer-ws`: API Gateway WebSocket routes. `$connect` checks the `counter` query parameter and subscribes the
//! connection (2 h TTL), `$disconnect` forgets it, `$default` answers `sync`, `ping` and anything else per the
//! contract, through the Management API.
//!
//! When `ALLOWED_ORIGINS` is set (the template sets it as for `acidizer-api`), `$connect` from a browser page is
//! taken only from the origins it lists (403 otherwise; clients that send no `Origin` are not pages, and are not
//! checked); without it, from any.
//!
//! When `COUNTER_NAMES` lists counters, `$connect` to any other than those and `global` answers 404. When
//! `MAX_SUBSCRIBERS_PER_COUNTER` is set, `$connect` to a counter that has that many subscribers answers 503. When
//! `MAX_CONNECTIONS_PER_CLIENT` is set, `$connect` from a client (its IPv4 address, its IPv6 /64) that has that
//! many connections answers 429: no one client takes a counter's places (a count that fails lets it in).
//!
//! Environment: `CONNECTIONS_TABLE`, `COUNTER_TABLE`, `WEBSOCKET_ENDPOINT` (optional: else from the request
//! context), `ALLOWED_ORIGINS`, `COUNTER_NAMES`, `MAX_SUBSCRIBERS_PER_COUNTER` and `MAX_CONNECTIONS_PER_CLIENT`
//! (optional), and the AWS SDK's standard variables.

use acidizer_apigw::{ManagementApi, WEBSOCKET_ENDPOINT_ENV};
use acidizer_core::domain::{COUNTER_NAMES_ENV, ClientAddress};
use acidizer_core::live::{ConnectionStore, Notifier, Outbound, answer};
use acidizer_core::telemetry::error_chain;
use acidizer_core::{ALLOWED_ORIGINS_ENV, AllowedOrigins, KnownCounters};
use acidizer_core::{ConnectionId, CounterName, Counters};
use acidizer_lambda::{StartError, required_env};
use acidizer_store_dynamodb::aws_sdk_dynamodb::Client;
use acidizer_store_dynamodb::{
    CONNECTIONS_TABLE_ENV, COUNTER_TABLE_ENV, DynamoConnections, DynamoStore, lambda_sdk_config,
};
use acidizer_ws::{Route, route};
use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};
use std::sync::Mutex;

struct Routes {
    config: acidizer_store_dynamodb::aws_config::SdkConfig,
    connections: DynamoConnections,
    counters: Counters<DynamoStore>,
    endpoint: Option<String>,
    /// The pages that may connect.
    origins: AllowedOrigins,
    /// The counters that exist, the most subscribers one takes, and the most connections one client has.
    known: KnownCounters,
    max_subscribers: Option<usize>,
    max_per_client: Option<usize>,
    /// Management API clients by endpoint, made on first use.
    notifiers: Mutex<Vec<(String, ManagementApi)>>,
}

/// The environment variable with the most subscribers one counter takes.
const MAX_SUBSCRIBERS_ENV: &str = "MAX_SUBSCRIBERS_PER_COUNTER";
/// The environment variable with the most connections one client may have.
const MAX_PER_CLIENT_ENV: &str = "MAX_CONNECTIONS_PER_CLIENT";

/// Not a whole number of at least 1.
#[derive(Debug, thiserror::Error)]
#[error("expected a whole number of at least 1, not {0:?}")]
struct InvalidMaximum(String);

/// The optional maximum in the environment variable `name`: unset or empty for none.
fn maximum(name: &'static str) -> Result<Option<usize>, StartError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(raw) if raw.trim().is_empty() => Ok(None),
        Ok(raw) => match raw.trim().parse::<usize>() {
            Ok(max @ 1..) => Ok(Some(max)),
            _ => Err(StartError::invalid(name, InvalidMaximum(raw))),
        },
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = acidizer_lambda::init("acidizer-ws")?;
    let (connections_table, counter_table) = (required_env(CONNECTIONS_TABLE_ENV)?, required_env(COUNTER_TABLE_ENV)?);
    // Without ALLOWED_ORIGINS (the contract's environment alone), pages of any origin may connect.
    let origins = match std::env::var(ALLOWED_ORIGINS_ENV) {
        Ok(listed) if !listed.trim().is_empty() => {
            AllowedOrigins::parse(&listed).map_err(|invalid| StartError::invalid(ALLOWED_ORIGINS_ENV, invalid))?
        }
        _ => AllowedOrigins::Any,
    };
    let known = KnownCounters::from_env().map_err(|invalid| StartError::invalid(COUNTER_NAMES_ENV, invalid))?;
    let (max_subscribers, max_per_client) = (maximum(MAX_SUBSCRIBERS_ENV)?, maximum(MAX_PER_CLIENT_ENV)?);
    let config = lambda_sdk_config();
    let client = Client::new(&config);
    let routes = Routes {
        known,
        max_subscribers,
        max_per_client,
        connections: DynamoConnections::new(client.clone(), connections_table),
        counters: Counters::new(DynamoStore::new(client, counter_table)),
        endpoint: std::env::var(WEBSOCKET_ENDPOINT_ENV).ok().filter(|e| !e.is_empty()),
        origins,
        notifiers: Mutex::new(Vec::new()),
        config,
    };
    let routes = &routes;
    acidizer_lambda::handler::run(metrics, move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        routes.handle(event.payload)
    })
    .await
}

fn status(code: u16, body: &str) -> Value {
    json!({ "statusCode": code, "body": body })
}

impl Routes {
    async fn handle(&self, request: ApiGatewayWebsocketProxyRequest) -> Result<Value, Error> {
        match route(&request, &self.origins, &self.known) {
            Route::Refuse { status: code, reason } => {
                tracing::info!(code, reason, "refused an event");
                Ok(status(code, &reason))
            }
            Route::Connect { connection, counter, client } => Ok(self.connect(&connection, &counter, client).await),
            Route::Disconnect { connection } => {
                if let Err(error) = self.connections.unsubscribe(&connection).await {
                    tracing::warn!(%connection, error = error_chain(&error), "cannot forget a connection; its TTL will");
                }
                Ok(status(200, "bye"))
            }
            Route::Message { connection, body } => Ok(self.default_route(&request, &connection, body).await),
        }
    }

    async fn connect(&self, connection: &ConnectionId, counter: &CounterName, client: Option<ClientAddress>) -> Value {
        if let (Some(max), Some(client)) = (self.max_per_client, client) {
            match self.connections.count_connections_of(client, max).await {
                Ok(count) if count >= max => {
                    tracing::info!(%connection, %client, max, "refused a connection: the client has as many as it may");
                    return status(429, "this address has as many connections open as one client may");
                }
                Ok(_) => {}
                // A guard against one client's abuse, not a promise to the others: a count that cannot be made
                // (the index still being built after a deployment added it, say) lets the client in.
                Err(error) => {
                    tracing::warn!(%connection, %client, error = error_chain(&error), "cannot count a client's connections");
                }
            }
        }
        if let Some(max) = self.max_subscribers {
            match self.connections.count_subscribers(counter, max).await {
                Ok(count) if count >= max => {
                    tracing::info!(%connection, %counter, max, "refused a subscriber: the counter has as many as it takes");
                    return status(503, "this counter has as many subscribers as it takes; try again later");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%connection, error = error_chain(&error), "cannot count subscribers");
                    return status(503, "try again");
                }
            }
        }
        match self.connections.subscribe_from(connection, counter, client).await {
            Ok(()) => {
                tracing::info!(%connection, %counter, "subscribed");
                status(200, "connected")
            }
            Err(error) => {
                tracing::error!(%connection, error = error_chain(&error), "cannot subscribe");
                status(503, "try again")
            }
        }
    }

    async fn default_route(
        &self,
        request: &ApiGatewayWebsocketProxyRequest,
        connection: &ConnectionId,
        body: &str,
    ) -> Value {
        let subscription = match self.connections.subscription(connection).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%connection, error = error_chain(&error), "cannot look a subscription up");
                None
            }
        };
        let reply = answer(&self.counters, subscription.as_ref(), body).await;
        let Some(notifier) = self.notifier(request) else {
            tracing::error!("no WEBSOCKET_ENDPOINT and no domain in the request context");
            return status(500, "no endpoint");
        };
        if let Err(error) = notifier.send(connection, &reply).await {
            tracing::warn!(%connection, error = error_chain(&error), "cannot answer a client message");
        }
        if let Outbound::Error(detail) = &reply {
            tracing::info!(%connection, detail, "refused a client message");
        }
        status(200, "ok")
    }

    /// The Management API for this request: `WEBSOCKET_ENDPOINT`, else `https://{domainName}/{stage}`.
    fn notifier(&self, request: &ApiGatewayWebsocketProxyRequest) -> Option<ManagementApi> {
        let context = &request.request_context;
        let endpoint = self.endpoint.clone().or_else(|| {
            let domain = context.domain_name.as_deref()?;
            let stage = context.stage.as_deref()?;
            Some(format!("https://{domain}/{stage}"))
        })?;
        let mut notifiers = self.notifiers.lock().ok()?;
        if let Some((_, notifier)) = notifiers.iter().find(|(known, _)| *known == endpoint) {
            return Some(notifier.clone());
        }
        let notifier = ManagementApi::new(&self.config, &endpoint);
        notifiers.push((endpoint, notifier.clone()));
        Some(notifier)
    }
}

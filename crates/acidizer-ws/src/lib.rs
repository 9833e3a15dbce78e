//! What an API Gateway WebSocket event asks of `acidizer-ws`, read from the event alone: a `$connect` to subscribe
//! (or to refuse, and why), a `$disconnect`, or a client message on `$default`. The binary carries it out.

use acidizer_core::domain::ClientAddress;
use acidizer_core::{AllowedOrigins, KnownCounters};
use acidizer_core::{ConnectionId, CounterName};
use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;

/// What one event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// Subscribe the connection to the counter, for the client the request came from (when API Gateway says).
    Connect { connection: ConnectionId, counter: CounterName, client: Option<ClientAddress> },
    /// Answer the event with `status` and do nothing else.
    Refuse { status: u16, reason: String },
    /// Forget the connection.
    Disconnect { connection: ConnectionId },
    /// Answer the client's message `body`.
    Message { connection: ConnectionId, body: &'a str },
}

/// Reads `request`: its route, connection id, `counter` query parameter (for `$connect`: a counter that exists,
/// one of `known`), `Origin` (for `$connect`: a browser page must be of one of `origins`) and body.
pub fn route<'a>(
    request: &'a ApiGatewayWebsocketProxyRequest,
    origins: &AllowedOrigins,
    known: &KnownCounters,
) -> Route<'a> {
    let context = &request.request_context;
    let Some(connection) = context.connection_id.as_deref().and_then(|id| ConnectionId::parse(id).ok()) else {
        return Route::Refuse { status: 400, reason: "no connection id".to_owned() };
    };
    match context.route_key.as_deref().unwrap_or("$default") {
        "$connect" => {
            let origin = request.headers.get("origin").map(|value| value.to_str());
            let origin = match origin {
                Some(Err(_)) => return Route::Refuse { status: 403, reason: "origin not allowed".to_owned() },
                Some(Ok(origin)) => Some(origin),
                None => None,
            };
            if !origins.admits(origin, None) {
                return Route::Refuse { status: 403, reason: "origin not allowed".to_owned() };
            }
            let counter = match request.query_string_parameters.first("counter").map(CounterName::parse) {
                None => CounterName::global(),
                Some(Ok(counter)) => counter,
                Some(Err(invalid)) => return Route::Refuse { status: 400, reason: invalid.to_string() },
            };
            if !known.admits(&counter) {
                return Route::Refuse { status: 404, reason: format!("there is no counter '{counter}' here") };
            }
            let client = context.identity.source_ip.as_deref().and_then(|ip| ip.parse().ok()).map(ClientAddress::of);
            Route::Connect { connection, counter, client }
        }
        "$disconnect" => Route::Disconnect { connection },
        _ => Route::Message { connection, body: request.body.as_deref().unwrap_or("") },
    }
}

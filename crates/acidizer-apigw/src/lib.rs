//! The notifier of the Lambda functions: API Gateway's Management API `post_to_connection`, with `410 Gone` and
//! throttling (429, `LimitExceededException`) told apart from other failures.

use acidizer_core::ConnectionId;
use acidizer_core::live::{Notifier, NotifyError, Outbound};
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

/// The environment variable with the Management API's endpoint:
/// `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`.
pub const WEBSOCKET_ENDPOINT_ENV: &str = "WEBSOCKET_ENDPOINT";

/// Posts messages to WebSocket connections through one WebSocket API's Management API.
#[derive(Clone)]
pub struct ManagementApi {
    client: Client,
}

impl ManagementApi {
    /// A notifier for the WebSocket API at `endpoint`, with the rest of `config` (region, credentials, timeouts).
    /// The SDK does not retry: the broadcast use case retries briefly itself, and gives up on a slow connection.
    pub fn new(config: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(config)
            .endpoint_url(endpoint)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Self { client: Client::from_conf(config) }
    }
}

impl Notifier for ManagementApi {
    async fn send(&self, connection: &ConnectionId, message: &Outbound) -> Result<(), NotifyError> {
        let sent = self
            .client
            .post_to_connection()
            .connection_id(connection.as_str())
            .data(Blob::new(message.to_json()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(error) => {
                let status = error.raw_response().map(|response| response.status().as_u16());
                let service_error = error.as_service_error();
                if matches!(service_error, Some(PostToConnectionError::GoneException(_))) || status == Some(410) {
                    Err(NotifyError::Gone)
                } else if matches!(service_error, Some(PostToConnectionError::LimitExceededException(_)))
                    || status == Some(429)
                {
                    Err(NotifyError::throttled(error))
                } else {
                    Err(NotifyError::failed(error))
                }
            }
        }
    }
}

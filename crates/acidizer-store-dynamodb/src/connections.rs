//! WebSocket subscriptions in the connections table: one item per connection (found from its id alone), listed
//! per counter through the `byCounter` index — a Query, never a Scan.

use crate::layout::{CONNECTION_KEY, SUBSCRIBERS_INDEX, SUBSCRIBERS_INDEX_KEY, TTL_ATTRIBUTE};
use acidizer_core::live::{ConnectionStore, ConnectionStoreError, SUBSCRIPTION_TTL, SubscriberPage};
use acidizer_core::{ConnectionId, CounterName, Timestamp};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The environment variable naming the connections table.
pub const CONNECTIONS_TABLE_ENV: &str = "CONNECTIONS_TABLE";

/// How many subscribers one page lists.
const PAGE_SIZE: i32 = 500;

#[derive(Clone)]
pub struct DynamoConnections {
    client: Client,
    table: String,
}

impl DynamoConnections {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> ConnectionStoreError {
    ConnectionStoreError::unavailable(error)
}

/// A subscription this code cannot read.
#[derive(Debug, thiserror::Error)]
enum UnreadableSubscription {
    #[error("a subscription without {0}")]
    Missing(String),
    #[error("a subscription to {0:?}")]
    Counter(String, #[source] acidizer_core::domain::InvalidCounterName),
    #[error("a subscription of the connection id {0:?}")]
    Connection(String, #[source] acidizer_core::domain::InvalidConnectionId),
}

fn connection_key(connection: &ConnectionId) -> HashMap<String, AttributeValue> {
    HashMap::from([(CONNECTION_KEY.to_owned(), AttributeValue::S(connection.to_string()))])
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str, ConnectionStoreError> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| ConnectionStoreError::corrupt(UnreadableSubscription::Missing(name.to_owned())))
}

impl ConnectionStore for DynamoConnections {
    async fn subscribe(&self, connection: &ConnectionId, counter: &CounterName) -> Result<(), ConnectionStoreError> {
        let now = Timestamp::now();
        let expires_at = now.unix_seconds() + SUBSCRIPTION_TTL.as_secs() as i64;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(CONNECTION_KEY, AttributeValue::S(connection.to_string()))
            .item(SUBSCRIBERS_INDEX_KEY, AttributeValue::S(counter.to_string()))
            .item("connectedAt", AttributeValue::N(now.unix_millis().to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn unsubscribe(&self, connection: &ConnectionId) -> Result<(), ConnectionStoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(connection_key(connection)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn subscription(&self, connection: &ConnectionId) -> Result<Option<CounterName>, ConnectionStoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(connection_key(connection)))
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = output.item() else { return Ok(None) };
        let counter = string(item, SUBSCRIBERS_INDEX_KEY)?;
        CounterName::parse(counter).map(Some).map_err(|invalid| {
            ConnectionStoreError::corrupt(UnreadableSubscription::Counter(counter.to_owned(), invalid))
        })
    }

    async fn subscribers(
        &self,
        counter: &CounterName,
        page: Option<String>,
    ) -> Result<SubscriberPage, ConnectionStoreError> {
        // The page token is the last connection id of the previous page: with the counter, the index's full key.
        let start = page.map(|last| {
            HashMap::from([
                (SUBSCRIBERS_INDEX_KEY.to_owned(), AttributeValue::S(counter.to_string())),
                (CONNECTION_KEY.to_owned(), AttributeValue::S(last)),
            ])
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SUBSCRIBERS_INDEX)
            .key_condition_expression("#counter = :counter")
            .expression_attribute_names("#counter", SUBSCRIBERS_INDEX_KEY)
            .expression_attribute_values(":counter", AttributeValue::S(counter.to_string()))
            .set_exclusive_start_key(start)
            .limit(PAGE_SIZE)
            .send()
            .await
            .map_err(unavailable)?;
        let connections = output
            .items()
            .iter()
            .map(|item| {
                let id = string(item, CONNECTION_KEY)?;
                ConnectionId::parse(id).map_err(|invalid| {
                    ConnectionStoreError::corrupt(UnreadableSubscription::Connection(id.to_owned(), invalid))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next =
            output.last_evaluated_key().and_then(|key| key.get(CONNECTION_KEY)).and_then(|id| id.as_s().ok()).cloned();
        Ok(SubscriberPage { connections, next })
    }
}

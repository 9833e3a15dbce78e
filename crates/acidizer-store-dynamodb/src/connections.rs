//! WebSocket subscriptions in the connections table: one item per connection (found from its id alone), listed
//! per counter through the `byCounter` index and counted per client (when known) through the `byClient` index —
//! Queries, never a Scan. Where the last broadcast of a counter stood
//! is kept there too, in an item of its own outside the index (`broadcast#{counter}`, no `counter`).

use crate::layout::{
    CLIENTS_INDEX, CLIENTS_INDEX_KEY, CONNECTION_KEY, SUBSCRIBERS_INDEX, SUBSCRIBERS_INDEX_KEY, TTL_ATTRIBUTE,
};
use acidizer_core::domain::ClientAddress;
use acidizer_core::live::{BroadcastProgress, ConnectionStore, ConnectionStoreError, SUBSCRIPTION_TTL, SubscriberPage};
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

    /// A query of `counter`'s subscribers through the `byCounter` index, in the order of their ids.
    fn subscribers_query(
        &self,
        counter: &CounterName,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(SUBSCRIBERS_INDEX)
            .key_condition_expression("#counter = :counter")
            .expression_attribute_names("#counter", SUBSCRIBERS_INDEX_KEY)
            .expression_attribute_values(":counter", AttributeValue::S(counter.to_string()))
    }

    /// How many subscribers `counter` has, counted up to `at_most` (a count through the `byCounter` index, which
    /// reads its keys only: at most about 75 read units for 10 000 subscribers). The index follows the table within
    /// a second or so, so two subscriptions at once may both find room for one.
    pub async fn count_subscribers(
        &self,
        counter: &CounterName,
        at_most: usize,
    ) -> Result<usize, ConnectionStoreError> {
        count(self.subscribers_query(counter), at_most).await
    }

    /// How many connections `client` has, counted up to `at_most` (through the `byClient` index, as
    /// [`Self::count_subscribers`]: one read unit for a client's few). A connection past its TTL does not count,
    /// although DynamoDB may keep it for days: its `$disconnect` never came.
    pub async fn count_connections_of(
        &self,
        client: ClientAddress,
        at_most: usize,
    ) -> Result<usize, ConnectionStoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CLIENTS_INDEX)
            .key_condition_expression("#client = :client")
            .filter_expression("#expires > :now")
            .expression_attribute_names("#client", CLIENTS_INDEX_KEY)
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":client", AttributeValue::S(client.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(Timestamp::now().unix_seconds().to_string()));
        count(query, at_most).await
    }

    /// Subscribes `connection` to `counter`, from `client` when it is known (for [`Self::count_connections_of`]).
    pub async fn subscribe_from(
        &self,
        connection: &ConnectionId,
        counter: &CounterName,
        client: Option<ClientAddress>,
    ) -> Result<(), ConnectionStoreError> {
        let now = Timestamp::now();
        let expires_at = now.unix_seconds() + SUBSCRIPTION_TTL.as_secs() as i64;
        let mut item = HashMap::from([
            (CONNECTION_KEY.to_owned(), AttributeValue::S(connection.to_string())),
            (SUBSCRIBERS_INDEX_KEY.to_owned(), AttributeValue::S(counter.to_string())),
            ("connectedAt".to_owned(), AttributeValue::N(now.unix_millis().to_string())),
            (TTL_ATTRIBUTE.to_owned(), AttributeValue::N(expires_at.to_string())),
        ]);
        if let Some(client) = client {
            item.insert(CLIENTS_INDEX_KEY.to_owned(), AttributeValue::S(client.to_string()));
        }
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(unavailable)?;
        Ok(())
    }
}

/// The items `query` finds, counted (`Select::Count`, page by page) up to `at_most`.
async fn count(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    at_most: usize,
) -> Result<usize, ConnectionStoreError> {
    let mut counted = 0;
    let mut start = None;
    loop {
        let output = query
            .clone()
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        counted += usize::try_from(output.count()).unwrap_or_default();
        start = output.last_evaluated_key().cloned();
        if counted >= at_most || start.is_none() {
            return Ok(counted);
        }
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
    #[error("a broadcast's progress without a readable {0}")]
    Progress(&'static str),
}

fn connection_key(connection: &ConnectionId) -> HashMap<String, AttributeValue> {
    HashMap::from([(CONNECTION_KEY.to_owned(), AttributeValue::S(connection.to_string()))])
}

/// The key of the item that keeps where a broadcast of `counter` stopped. `#` is in no connection id API Gateway
/// gives.
fn progress_key(counter: &CounterName) -> HashMap<String, AttributeValue> {
    HashMap::from([(CONNECTION_KEY.to_owned(), AttributeValue::S(format!("broadcast#{counter}")))])
}

/// A broadcast's progress as an item (the key aside).
fn progress_item(progress: &BroadcastProgress) -> HashMap<String, AttributeValue> {
    let expires_at = Timestamp::now().unix_seconds() + SUBSCRIPTION_TTL.as_secs() as i64;
    let id = |connection: &ConnectionId| AttributeValue::S(connection.to_string());
    let mut item = HashMap::from([
        ("seq".to_owned(), AttributeValue::N(progress.seq.to_string())),
        ("finished".to_owned(), AttributeValue::Bool(progress.finished)),
        ("wrapped".to_owned(), AttributeValue::Bool(progress.wrapped)),
        ("pending".to_owned(), AttributeValue::L(progress.pending.iter().map(id).collect())),
        ("ahead".to_owned(), AttributeValue::L(progress.ahead.iter().map(id).collect())),
        (TTL_ATTRIBUTE.to_owned(), AttributeValue::N(expires_at.to_string())),
    ]);
    if let Some(lap_start) = &progress.lap_start {
        item.insert("lapStart".to_owned(), id(lap_start));
    }
    if let Some(cursor) = &progress.cursor {
        item.insert("cursor".to_owned(), id(cursor));
    }
    item
}

/// A broadcast's progress from its item.
fn progress_from(item: &HashMap<String, AttributeValue>) -> Result<BroadcastProgress, ConnectionStoreError> {
    let connection = |value: &AttributeValue| {
        let id = value.as_s().map_err(|_| corrupt_progress("a connection id"))?;
        ConnectionId::parse(id).map_err(|invalid| {
            ConnectionStoreError::corrupt(UnreadableSubscription::Connection(id.to_owned(), invalid))
        })
    };
    let seq = item
        .get("seq")
        .and_then(|seq| seq.as_n().ok())
        .and_then(|seq| seq.parse().ok())
        .ok_or_else(|| corrupt_progress("seq"))?;
    let flag = |name: &str| item.get(name).and_then(|flag| flag.as_bool().ok()).copied().unwrap_or(false);
    let list = |name: &'static str| match item.get(name) {
        Some(listed) => listed.as_l().map_err(|_| corrupt_progress(name))?.iter().map(connection).collect(),
        None => Ok(Vec::new()),
    };
    let (pending, ahead) = (list("pending")?, list("ahead")?);
    Ok(BroadcastProgress {
        seq,
        finished: flag("finished"),
        lap_start: item.get("lapStart").map(connection).transpose()?,
        cursor: item.get("cursor").map(connection).transpose()?,
        wrapped: flag("wrapped"),
        pending,
        ahead,
    })
}

fn corrupt_progress(what: &'static str) -> ConnectionStoreError {
    ConnectionStoreError::corrupt(UnreadableSubscription::Progress(what))
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str, ConnectionStoreError> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| ConnectionStoreError::corrupt(UnreadableSubscription::Missing(name.to_owned())))
}

impl ConnectionStore for DynamoConnections {
    async fn subscribe(&self, connection: &ConnectionId, counter: &CounterName) -> Result<(), ConnectionStoreError> {
        self.subscribe_from(connection, counter, None).await
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
            .subscribers_query(counter)
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

    async fn progress(&self, counter: &CounterName) -> Result<Option<BroadcastProgress>, ConnectionStoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(progress_key(counter)))
            // The item the last invocation wrote, not an older one: a retry may follow it within milliseconds.
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item().map(progress_from).transpose()
    }

    async fn keep_progress(
        &self,
        counter: &CounterName,
        progress: &BroadcastProgress,
    ) -> Result<(), ConnectionStoreError> {
        let mut item = progress_item(progress);
        item.extend(progress_key(counter));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_reads_back_as_it_was_kept() {
        let id = |raw: &str| ConnectionId::parse(raw).unwrap();
        for progress in [
            BroadcastProgress {
                seq: 7,
                finished: true,
                lap_start: None,
                cursor: None,
                wrapped: false,
                pending: vec![],
                ahead: vec![],
            },
            BroadcastProgress {
                seq: 12,
                finished: false,
                lap_start: Some(id("Ab3=")),
                cursor: Some(id("Zz9+/=")),
                wrapped: true,
                pending: vec![id("a="), id("b=")],
                ahead: vec![id("c=")],
            },
        ] {
            assert_eq!(progress_from(&progress_item(&progress)).unwrap(), progress);
        }
        let mut broken = progress_item(&BroadcastProgress {
            seq: 1,
            finished: false,
            lap_start: None,
            cursor: None,
            wrapped: false,
            pending: vec![],
            ahead: vec![],
        });
        broken.insert("seq".to_owned(), AttributeValue::S("x".to_owned()));
        assert!(matches!(progress_from(&broken), Err(ConnectionStoreError::Corrupt(_))));
    }
}

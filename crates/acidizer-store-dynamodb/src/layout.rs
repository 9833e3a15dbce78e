//! The tables' layout as the code uses it. `infra/template.yaml` declares the same; a test holds them together.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

/// Counter table: partition key (string).
pub const PARTITION_KEY: &str = "pk";
/// Counter table: sort key (number): 0 for a counter and a remembered answer, the value for an audit record.
pub const SORT_KEY: &str = "sk";
/// The TTL attribute of both tables, in seconds since the epoch.
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// What the counter table's stream carries.
pub const STREAM_VIEW: StreamViewType = StreamViewType::NewImage;

/// Connections table: partition key (string), the API Gateway connection id.
pub const CONNECTION_KEY: &str = "connectionId";
/// Connections table: the index that lists a counter's subscribers.
pub const SUBSCRIBERS_INDEX: &str = "byCounter";
/// The subscribers index's partition key (string): the counter's name.
pub const SUBSCRIBERS_INDEX_KEY: &str = "counter";
/// Connections table: the index that lists a client's connections (those whose client is known).
pub const CLIENTS_INDEX: &str = "byClient";
/// The clients index's partition key (string): the client (an IPv4 address, an IPv6 /64).
pub const CLIENTS_INDEX_KEY: &str = "client";

/// Why tables could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create table {table}")]
pub struct CreateTablesError {
    table: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Creates the counter table, and the connections table when named, unless they exist already.
pub async fn create_missing_tables(
    client: &Client,
    counter_table: &str,
    connections_table: Option<&str>,
) -> Result<(), CreateTablesError> {
    if !exists(client, counter_table).await? {
        create_counter_table(client, counter_table).await?;
    }
    if let Some(table) = connections_table
        && !exists(client, table).await?
    {
        create_connections_table(client, table).await?;
    }
    Ok(())
}

async fn exists(client: &Client, table: &str) -> Result<bool, CreateTablesError> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(true),
        Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(false),
        Err(error) => Err(failure(table, error)),
    }
}

fn failure(table: &str, error: impl std::error::Error + Send + Sync + 'static) -> CreateTablesError {
    CreateTablesError { table: table.to_owned(), source: Box::new(error) }
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, CreateTablesError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|error| failure(name, error))
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, CreateTablesError> {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(|error| failure(name, error))
}

async fn create_counter_table(client: &Client, table: &str) -> Result<(), CreateTablesError> {
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(STREAM_VIEW)
        .build()
        .map_err(|error| failure(table, error))?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PARTITION_KEY, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(SORT_KEY, ScalarAttributeType::N)?)
        .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(SORT_KEY, KeyType::Range)?)
        .stream_specification(stream)
        .send()
        .await
        .map_err(|error| failure(table, error))?;
    enable_ttl(client, table).await
}

async fn create_connections_table(client: &Client, table: &str) -> Result<(), CreateTablesError> {
    let index = |name: &str, partition: &str, projection: Projection| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(partition, KeyType::Hash)?)
            .key_schema(key(CONNECTION_KEY, KeyType::Range)?)
            .projection(projection)
            .build()
            .map_err(|error| failure(table, error))
    };
    let keys_only = Projection::builder().projection_type(ProjectionType::KeysOnly).build();
    // A client's connections are counted unless expired: the index carries their TTL.
    let with_expiry =
        Projection::builder().projection_type(ProjectionType::Include).non_key_attributes(TTL_ATTRIBUTE).build();
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(CONNECTION_KEY, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(SUBSCRIBERS_INDEX_KEY, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(CLIENTS_INDEX_KEY, ScalarAttributeType::S)?)
        .key_schema(key(CONNECTION_KEY, KeyType::Hash)?)
        .global_secondary_indexes(index(SUBSCRIBERS_INDEX, SUBSCRIBERS_INDEX_KEY, keys_only)?)
        .global_secondary_indexes(index(CLIENTS_INDEX, CLIENTS_INDEX_KEY, with_expiry)?)
        .send()
        .await
        .map_err(|error| failure(table, error))?;
    enable_ttl(client, table).await
}

async fn enable_ttl(client: &Client, table: &str) -> Result<(), CreateTablesError> {
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL_ATTRIBUTE)
        .build()
        .map_err(|error| failure(table, error))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|error| failure(table, error))?;
    Ok(())
}

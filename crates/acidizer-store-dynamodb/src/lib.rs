//! The DynamoDB store of acidizer: the changes of a counter that wait while its transaction is in flight commit
//! together in the next one (group commit) — the counter once, conditioned on the exact state the group was
//! computed from, the group's audit records in one page, and each change's remembered answer, conditioned on its
//! absence.

mod connections;
mod group;
mod history;
mod items;
mod lanes;
mod last_seen;
pub mod layout;
pub mod stream;

use acidizer_core::{
    AuditRecord, ChangeCommand, ChangeOutcome, CounterName, CounterSnapshot, CounterStore, HistoryQuery, StoreError,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::time::Duration;

pub use aws_config;
pub use aws_sdk_dynamodb;
pub use connections::{CONNECTIONS_TABLE_ENV, DynamoConnections};
pub use layout::{CreateTablesError, create_missing_tables};

/// The environment variable naming the counter table.
pub const COUNTER_TABLE_ENV: &str = "COUNTER_TABLE";

/// The counter store in one DynamoDB table (counters, audit records and remembered answers).
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    last_seen: last_seen::LastSeen,
    lanes: lanes::Lanes,
}

/// The longest any one DynamoDB operation may take, its retries included.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(7);

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), last_seen: last_seen::LastSeen::default(), lanes: lanes::Lanes::default() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// The AWS SDK's configuration from the standard environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`, …),
/// with timeouts that keep every request inside the contract's 10 s.
pub async fn sdk_config_from_env() -> aws_config::SdkConfig {
    aws_config::from_env().timeout_config(timeouts()).retry_config(retries()).load().await
}

/// The AWS SDK's configuration inside Lambda, from what Lambda sets: `AWS_REGION` and the function role's
/// credentials in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (and `AWS_ENDPOINT_URL`,
/// for an emulator). Nothing else is looked for — no profile files, no STS, no instance metadata — so none of it is
/// compiled into the functions, whose every cold start downloads and loads them.
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    let region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).ok();
    let credentials = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    let mut config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(region.map(aws_config::Region::new))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(credentials))
        .timeout_config(timeouts())
        .retry_config(retries());
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(endpoint);
    }
    config.build()
}

fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

fn retries() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(3)
}

impl CounterStore for DynamoStore {
    async fn change(&self, command: ChangeCommand) -> Result<ChangeOutcome, StoreError> {
        self.lanes.change(self, command).await
    }

    async fn read(&self, counter: &CounterName) -> Result<CounterSnapshot, StoreError> {
        let item = group::read_counter(self, counter, None).await?;
        Ok(item.map_or_else(|| CounterSnapshot::zero(counter.clone()), items::CounterItem::into_snapshot))
    }

    async fn history(&self, counter: &CounterName, query: HistoryQuery) -> Result<Vec<AuditRecord>, StoreError> {
        history::read(self, counter, query).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.client.describe_table().table_name(&self.table).send().await.map_err(sdk_error)?;
        Ok(())
    }
}

/// Classifies an SDK failure that no retry of ours will mend.
pub(crate) fn sdk_error<E>(error: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if is_throttling(&error) {
        return StoreError::Overloaded;
    }
    match &error {
        SdkError::TimeoutError(_) => StoreError::Timeout,
        _ => StoreError::unavailable(error),
    }
}

pub(crate) fn is_throttling<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    matches!(
        error.code(),
        Some(
            "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "ThrottlingException"
                | "LimitExceededException"
        )
    )
}

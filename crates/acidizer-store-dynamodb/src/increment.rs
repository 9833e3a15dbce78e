//! One increment: read the counter, then one transaction — counter conditioned on that value, audit record,
//! remembered answer — retried on contention with capped exponential backoff and full jitter.

use crate::backoff::Backoff;
use crate::items::{self, AuditItem, CounterItem, HEAD, Item, Kind, RequestItem};
use crate::{DynamoStore, is_throttling, sdk_error};
use acidizer_core::store::IDEMPOTENCY_RETENTION;
use acidizer_core::{CounterName, Increment, IncrementCommand, IncrementOutcome, StoreError};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use std::time::Instant;

/// Where the remembered answer stands among the transaction's items.
const REQUEST_ITEM: usize = 2;

/// How one transaction attempt ended, short of committing.
enum Attempt {
    /// The request id is taken: answer from what it holds.
    Replay(Option<Item>),
    /// Another increment or transaction got there first, or the table throttled: try again.
    Retry {
        throttled: bool,
    },
    Failed(StoreError),
}

pub(crate) async fn run(store: &DynamoStore, command: IncrementCommand) -> Result<IncrementOutcome, StoreError> {
    let mut backoff = Backoff::new();
    let mut throttled = false;
    loop {
        let current = read_head(store, &command.counter).await?.map_or(0, |head| head.value);
        let attempt = match transact(store, &command, current).await {
            Ok(outcome) => return Ok(outcome),
            Err(attempt) => attempt,
        };
        match attempt {
            Attempt::Replay(item) => return replay(store, &command, item).await,
            Attempt::Failed(error) => return Err(error),
            Attempt::Retry { throttled: now } => throttled |= now,
        }
        let pause = backoff.next_delay();
        if Instant::now() + pause >= command.deadline {
            tracing::warn!(counter = %command.counter, "increment gave up on contention");
            return Err(if throttled { StoreError::Overloaded } else { StoreError::Contention });
        }
        tracing::debug!(counter = %command.counter, ?pause, "increment lost a race; retrying");
        tokio::time::sleep(pause).await;
    }
}

pub(crate) async fn read_head(store: &DynamoStore, counter: &CounterName) -> Result<Option<CounterItem>, StoreError> {
    let output = store
        .client
        .get_item()
        .table_name(&store.table)
        .set_key(Some(items::key(items::counter_partition(counter), HEAD)))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    output.item().map(CounterItem::from_item).transpose()
}

async fn transact(store: &DynamoStore, command: &IncrementCommand, current: u64) -> Result<IncrementOutcome, Attempt> {
    let value = current + 1;
    let increment = Increment {
        counter: command.counter.clone(),
        value,
        request_id: command.request_id.clone(),
        updated_at: command.at,
    };
    let body = increment.response_body();
    let items = transaction_items(store, &increment, current, &body).map_err(Attempt::Failed)?;
    // The same token for the same attempt: the SDK's own retries of it then commit at most once.
    let token = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{}#{current}", command.request_id).as_bytes());
    let result = store
        .client
        .transact_write_items()
        .set_transact_items(Some(items))
        .client_request_token(token.to_string())
        .send()
        .await;
    match result {
        Ok(_) => Ok(IncrementOutcome::Committed { value, body }),
        Err(error) => Err(classify(error)),
    }
}

fn transaction_items(
    store: &DynamoStore,
    increment: &Increment,
    current: u64,
    body: &str,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let partition = items::counter_partition(&increment.counter);
    let at = increment.updated_at.unix_millis();
    let counter = items::to_item(&CounterItem {
        pk: partition.clone(),
        sk: HEAD,
        kind: Kind::Counter,
        counter: increment.counter.clone(),
        value: increment.value,
        updated_at: at,
        request_id: increment.request_id.clone(),
    })?;
    let audit = items::to_item(&AuditItem {
        pk: partition,
        sk: increment.value,
        kind: Kind::Audit,
        counter: increment.counter.clone(),
        request_id: increment.request_id.clone(),
        at,
    })?;
    let request = items::to_item(&RequestItem {
        pk: items::request_partition(&increment.request_id),
        sk: HEAD,
        kind: Kind::Request,
        counter: increment.counter.clone(),
        response: body.to_owned(),
        expires_at: increment.updated_at.unix_seconds() + IDEMPOTENCY_RETENTION.as_secs() as i64,
    })?;

    let counter_put = Put::builder().table_name(&store.table).set_item(Some(counter));
    let counter_put = if current == 0 {
        counter_put.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", "pk")
    } else {
        counter_put
            .condition_expression("#value = :current")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":current", AttributeValue::N(current.to_string()))
    };
    let absent = |put: aws_sdk_dynamodb::types::builders::PutBuilder| {
        put.table_name(&store.table)
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk")
    };
    let puts = [
        counter_put,
        absent(Put::builder().set_item(Some(audit))),
        absent(Put::builder().set_item(Some(request)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld),
    ];
    puts.into_iter()
        .map(|put| {
            put.build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(|error| StoreError::Corrupt(format!("cannot build the transaction: {error}")))
        })
        .collect()
}

fn classify(error: SdkError<TransactWriteItemsError>) -> Attempt {
    if is_throttling(&error) {
        return Attempt::Retry { throttled: true };
    }
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let reasons = cancelled.cancellation_reasons();
            let code = |reason: &CancellationReason| reason.code().unwrap_or("None").to_owned();
            if let Some(request) = reasons.get(REQUEST_ITEM).filter(|r| code(r) == "ConditionalCheckFailed") {
                return Attempt::Replay(request.item().cloned());
            }
            let codes: Vec<String> = reasons.iter().map(code).collect();
            if codes.iter().any(|code| matches!(code.as_str(), "ConditionalCheckFailed" | "TransactionConflict")) {
                Attempt::Retry { throttled: false }
            } else if codes.iter().any(|code| code.contains("Throughput") || code.contains("Throttl")) {
                Attempt::Retry { throttled: true }
            } else {
                Attempt::Failed(StoreError::Unavailable(format!("transaction cancelled: {codes:?}")))
            }
        }
        Some(TransactWriteItemsError::TransactionInProgressException(_)) => Attempt::Retry { throttled: false },
        _ if error.code() == Some("TransactionConflictException") => Attempt::Retry { throttled: false },
        _ => Attempt::Failed(sdk_error(error)),
    }
}

/// Answers a taken request id from its remembered answer (read again if the cancellation did not carry it).
async fn replay(
    store: &DynamoStore,
    command: &IncrementCommand,
    item: Option<Item>,
) -> Result<IncrementOutcome, StoreError> {
    let item = match item {
        Some(item) => item,
        None => store
            .client
            .get_item()
            .table_name(&store.table)
            .set_key(Some(items::key(items::request_partition(&command.request_id), HEAD)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?
            .item
            .ok_or_else(|| StoreError::Unavailable("a taken request id has no remembered answer yet".to_owned()))?,
    };
    let remembered = RequestItem::from_item(&item)?;
    Ok(IncrementOutcome::Replayed { counter: remembered.counter, body: remembered.response })
}

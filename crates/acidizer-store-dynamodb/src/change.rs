//! One increment: one transaction — counter conditioned on the value last seen, audit record, remembered answer
//! — tried first from the value this process last saw, and retried on contention from the value the cancellation
//! reports, with capped exponential backoff and full jitter. Every attempt has its own `ClientRequestToken`, so
//! the SDK's own retries of an attempt commit at most once and no two attempts can be mistaken for each other.

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
use std::time::{Duration, Instant};

/// Where the counter and the remembered answer stand among the transaction's items.
const COUNTER_ITEM: usize = 0;
const REQUEST_ITEM: usize = 2;

/// How one transaction attempt ended, short of committing.
#[derive(Debug)]
enum Attempt {
    /// The request id is taken: answer from what it holds (read again when the cancellation did not carry it).
    Replay(Option<Item>),
    /// Another increment or transaction got there first, or the table throttled: try again, from the counter's
    /// value when the cancellation told it.
    Retry {
        throttled: bool,
        current: Option<u64>,
    },
    /// An SDK retry of this very attempt met the attempt itself still in progress: send it again, unchanged.
    InProgress,
    Failed(StoreError),
}

/// One attempt as sent: its token, and the answer it would have given.
struct Sent {
    token: String,
    value: u64,
    body: String,
}

pub(crate) async fn run(store: &DynamoStore, command: IncrementCommand) -> Result<IncrementOutcome, StoreError> {
    let mut backoff = Backoff::new();
    let mut throttled = false;
    let mut contended = false;
    let mut sent: Vec<Sent> = Vec::new();
    // Try first from the value last seen here (0 for a counter never seen: a new counter then costs one request).
    let mut known_current = Some(store.last_seen.get(&command.counter).unwrap_or(0));
    loop {
        let current = match known_current.take() {
            Some(current) => current,
            None => {
                check_deadline(&command, throttled, contended)?;
                read_head(store, &command.counter).await?.map_or(0, |head| head.value)
            }
        };
        check_deadline(&command, throttled, contended)?;
        let attempted = Increment {
            counter: command.counter.clone(),
            value: current + 1,
            request_id: command.request_id.clone(),
            updated_at: command.at,
        };
        let attempt =
            Sent { token: uuid::Uuid::new_v4().to_string(), value: attempted.value, body: attempted.response_body() };
        let result = transact(store, &attempted, current, &attempt, command.deadline).await;
        sent.push(attempt);
        match result {
            Ok(()) => {
                store.last_seen.set(&command.counter, attempted.value);
                let committed =
                    sent.pop().map(|sent| IncrementOutcome::Committed { value: sent.value, body: sent.body });
                return committed.ok_or_else(|| StoreError::Unavailable("no attempt was recorded".to_owned()));
            }
            Err(Attempt::Replay(remembered)) => return replay(store, &command, &sent, remembered).await,
            Err(Attempt::Failed(error)) => return Err(error),
            Err(Attempt::InProgress) => return Err(StoreError::Timeout),
            Err(Attempt::Retry { throttled: now, current }) => {
                throttled |= now;
                contended |= !now;
                if let Some(current) = current {
                    store.last_seen.set(&command.counter, current);
                }
                known_current = current;
            }
        }
        let pause = backoff.next_delay();
        if Instant::now() + pause >= command.deadline {
            tracing::warn!(counter = %command.counter, attempts = sent.len(), "increment gave up on contention");
            return Err(if throttled { StoreError::Overloaded } else { StoreError::Contention });
        }
        tracing::debug!(counter = %command.counter, ?pause, "increment lost a race; retrying");
        metrics::counter!(acidizer_core::telemetry::CONFLICT_RETRIES).increment(1);
        tokio::time::sleep(pause).await;
    }
}

/// No attempt starts after the request's deadline: the answer then says why the earlier attempts failed.
fn check_deadline(command: &IncrementCommand, throttled: bool, contended: bool) -> Result<(), StoreError> {
    if Instant::now() < command.deadline {
        return Ok(());
    }
    Err(if throttled {
        StoreError::Overloaded
    } else if contended {
        StoreError::Contention
    } else {
        StoreError::Timeout
    })
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
    let head = output.item().map(CounterItem::from_item).transpose()?;
    if let Some(head) = &head {
        store.last_seen.set(counter, head.value);
    }
    Ok(head)
}

/// Commits `increment` (with its answer) if the counter still holds `current`. The SDK's own retries of the
/// attempt carry its token; a retry that meets the attempt still in progress is sent again, until the deadline.
async fn transact(
    store: &DynamoStore,
    increment: &Increment,
    current: u64,
    attempt: &Sent,
    deadline: Instant,
) -> Result<(), Attempt> {
    let items = transaction_items(store, increment, current, attempt).map_err(Attempt::Failed)?;
    let mut backoff = Backoff::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Attempt::InProgress);
        }
        let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .operation_timeout(remaining.min(crate::OPERATION_TIMEOUT))
            .build();
        let result = store
            .client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(&attempt.token)
            .customize()
            .config_override(aws_sdk_dynamodb::config::Builder::new().timeout_config(timeouts))
            .send()
            .await;
        match result.map(|_| ()).map_err(classify) {
            Err(Attempt::InProgress) => {
                let pause = backoff.next_delay().max(Duration::from_millis(1));
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            }
            other => return other,
        }
    }
}

fn transaction_items(
    store: &DynamoStore,
    increment: &Increment,
    current: u64,
    attempt: &Sent,
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
        response: attempt.body.clone(),
        expires_at: increment.updated_at.unix_seconds() + IDEMPOTENCY_RETENTION.as_secs() as i64,
        attempt: Some(attempt.token.clone()),
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
        counter_put.return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld),
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
        return Attempt::Retry { throttled: true, current: None };
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
                // The counter's condition failed with its item: the next attempt starts from that value.
                let current = reasons
                    .get(COUNTER_ITEM)
                    .filter(|reason| code(reason) == "ConditionalCheckFailed")
                    .and_then(|reason| reason.item())
                    .and_then(|item| CounterItem::from_item(item).ok())
                    .map(|counter| counter.value);
                Attempt::Retry { throttled: false, current }
            } else if codes.iter().any(|code| code.contains("Throughput") || code.contains("Throttl")) {
                Attempt::Retry { throttled: true, current: None }
            } else {
                Attempt::Failed(StoreError::Unavailable(format!("transaction cancelled: {codes:?}")))
            }
        }
        Some(TransactWriteItemsError::TransactionInProgressException(_)) => Attempt::InProgress,
        // Tokens are never reused across attempts, so a mismatch can only mean a lost attempt: try afresh.
        Some(TransactWriteItemsError::IdempotentParameterMismatchException(_)) => {
            Attempt::Retry { throttled: false, current: None }
        }
        _ if error.code() == Some("TransactionConflictException") => Attempt::Retry { throttled: false, current: None },
        _ => Attempt::Failed(sdk_error(error)),
    }
}

/// Answers a taken request id from its remembered answer (read again if the cancellation did not carry it).
/// When the remembered answer was written by one of this request's own attempts (an SDK retry of a transaction
/// that committed while its answer was lost), that attempt committed: this is a commit, not a replay.
async fn replay(
    store: &DynamoStore,
    command: &IncrementCommand,
    sent: &[Sent],
    remembered: Option<Item>,
) -> Result<IncrementOutcome, StoreError> {
    let item = match remembered {
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
    let own = remembered.attempt.as_deref().and_then(|token| sent.iter().find(|sent| sent.token == token));
    if let Some(own) = own {
        store.last_seen.set(&command.counter, own.value);
        return Ok(IncrementOutcome::Committed { value: own.value, body: remembered.response });
    }
    Ok(IncrementOutcome::Replayed { counter: remembered.counter, body: remembered.response })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_smithy_types::body::SdkBody;

    /// A cancelled transaction with these reason codes, and the old item of one of its items.
    fn cancelled(codes: &[&str], old_item: Option<(usize, Item)>) -> SdkError<TransactWriteItemsError> {
        let reasons = codes.iter().enumerate().map(|(index, code)| {
            let reason = CancellationReason::builder().code(*code);
            match &old_item {
                Some((at, item)) if *at == index => reason.set_item(Some(item.clone())).build(),
                _ => reason.build(),
            }
        });
        let exception =
            TransactionCanceledException::builder().set_cancellation_reasons(Some(reasons.collect())).build();
        let raw = HttpResponse::new(400u16.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(TransactWriteItemsError::TransactionCanceledException(exception), raw)
    }

    #[test]
    fn a_taken_request_id_is_a_replay_whatever_else_failed() {
        let item = items::key("request#k".to_owned(), HEAD);
        for codes in
            [["None", "None", "ConditionalCheckFailed"], ["ConditionalCheckFailed", "None", "ConditionalCheckFailed"]]
        {
            match classify(cancelled(&codes, Some((REQUEST_ITEM, item.clone())))) {
                Attempt::Replay(Some(found)) => assert_eq!(found, item),
                _ => panic!("{codes:?} is a replay"),
            }
        }
        assert!(matches!(
            classify(cancelled(&["None", "None", "ConditionalCheckFailed"], None)),
            Attempt::Replay(None)
        ));
    }

    #[test]
    fn a_lost_race_is_retried() {
        for codes in [
            ["ConditionalCheckFailed", "None", "None"],
            ["None", "ConditionalCheckFailed", "None"],
            ["TransactionConflict", "None", "None"],
        ] {
            let retry = classify(cancelled(&codes, None));
            assert!(matches!(retry, Attempt::Retry { throttled: false, current: None }), "{codes:?}");
        }
        let counter = items::to_item(&CounterItem {
            pk: "counter#global".to_owned(),
            sk: HEAD,
            kind: Kind::Counter,
            counter: CounterName::global(),
            value: 41,
            updated_at: 0,
            request_id: acidizer_core::RequestId::parse("winner").unwrap(),
        })
        .unwrap();
        let told = classify(cancelled(&["ConditionalCheckFailed", "None", "None"], Some((COUNTER_ITEM, counter))));
        assert!(matches!(told, Attempt::Retry { throttled: false, current: Some(41) }), "retry from the told value");
        let throttled = cancelled(&["ThrottlingError", "None", "None"], None);
        assert!(matches!(classify(throttled), Attempt::Retry { throttled: true, .. }));
    }

    #[test]
    fn other_cancellations_fail() {
        let failed = classify(cancelled(&["ValidationError", "None", "None"], None));
        assert!(matches!(failed, Attempt::Failed(StoreError::Unavailable(_))));
    }
}

//! One change (+1 or -1): one transaction — the counter conditioned on the exact state the change was computed
//! from, the audit record, the remembered answer — tried first from the state this process last saw, and retried
//! on contention from the state the cancellation reports, with capped exponential backoff and full jitter. The
//! bounds are checked on that state, so the check and the change commit together or not at all. Every attempt has
//! its own `ClientRequestToken`, so the SDK's own retries of an attempt commit at most once and no two attempts can
//! be mistaken for each other.

use crate::items::{self, AuditItem, CounterItem, HEAD, Item, Kind, RequestItem};
use crate::last_seen::Head;
use crate::{DynamoStore, is_throttling, sdk_error};
use acidizer_core::backoff::Backoff;
use acidizer_core::store::IDEMPOTENCY_RETENTION;
use acidizer_core::{Change, ChangeCommand, ChangeOutcome, CounterName, StoreError};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use std::time::{Duration, Instant};

/// The pauses between attempts: from under 5 ms, doubling, to at most 400 ms.
const RETRY_BASE: Duration = Duration::from_millis(5);
const RETRY_CAP: Duration = Duration::from_millis(400);

/// Where the counter and the remembered answer stand among the transaction's items.
const COUNTER_ITEM: usize = 0;
const REQUEST_ITEM: usize = 2;

/// How one transaction attempt ended, short of committing.
#[derive(Debug)]
enum Attempt {
    /// The request id is taken: answer from what it holds (read again when the cancellation did not carry it).
    Replay(Option<Item>),
    /// Another change or transaction got there first, or the table throttled: try again, from the counter's
    /// state when the cancellation told it.
    Retry {
        throttled: bool,
        current: Option<Head>,
    },
    /// An SDK retry of this very attempt met the attempt itself still in progress: send it again, unchanged.
    InProgress,
    Failed(StoreError),
}

/// What is known of the counter's state before an attempt.
enum Known {
    /// What this process last saw: good enough to try a transaction, not to refuse a change.
    Hint(Head),
    /// What DynamoDB said just now (a strongly consistent read, or a cancellation's current item).
    Fact(Head),
}

/// What DynamoDB answered that no retry here mends.
#[derive(Debug, thiserror::Error)]
enum Inconsistent {
    #[error("the transaction was cancelled for {0:?}")]
    Cancelled(Vec<String>),
    #[error("a taken request id has no remembered answer yet")]
    NoRememberedAnswer,
    #[error("a transaction committed, but no attempt of it was recorded")]
    NoAttemptRecorded,
}

/// One attempt as sent: its token, and the answer it would have given.
struct Sent {
    token: String,
    value: u64,
    seq: u64,
    body: String,
}

pub(crate) async fn run(store: &DynamoStore, command: ChangeCommand) -> Result<ChangeOutcome, StoreError> {
    let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
    let mut throttled = false;
    let mut contended = false;
    let mut sent: Vec<Sent> = Vec::new();
    // Try first from the state last seen here (zero for a counter never seen: a new counter then costs one request).
    let mut known = Some(Known::Hint(store.last_seen.get(&command.counter).unwrap_or_default()));
    loop {
        let (head, fact) = match known.take() {
            Some(Known::Fact(head)) => (head, true),
            Some(Known::Hint(head)) => (head, false),
            None => {
                check_deadline(&command, throttled, contended)?;
                (read_head(store, &command.counter, command.deadline).await?, true)
            }
        };
        check_deadline(&command, throttled, contended)?;
        let value = match command.delta.apply(head.value, command.max) {
            Ok(value) => value,
            // Refused on DynamoDB's word only, and only when the request id was not used already.
            Err(bound) if fact => return refuse_unless_known(store, &command, &sent, bound).await,
            Err(_) => continue,
        };
        let change = Change {
            counter: command.counter.clone(),
            value,
            seq: head.seq + 1,
            delta: command.delta,
            request_id: command.request_id.clone(),
            updated_at: command.at,
        };
        let attempt = Sent {
            token: uuid::Uuid::new_v4().to_string(),
            value: change.value,
            seq: change.seq,
            body: change.response_body()?,
        };
        let result = transact(store, &change, head, &attempt, command.deadline).await;
        sent.push(attempt);
        match result {
            Ok(()) => {
                store.last_seen.set(&command.counter, Head { value: change.value, seq: change.seq });
                let committed = sent.pop().map(|sent| ChangeOutcome::Committed {
                    value: sent.value,
                    seq: sent.seq,
                    body: sent.body,
                });
                return committed.ok_or_else(|| StoreError::unavailable(Inconsistent::NoAttemptRecorded));
            }
            Err(Attempt::Replay(remembered)) => return replay(store, &command, &sent, remembered).await,
            Err(Attempt::Failed(error)) => return Err(error),
            Err(Attempt::InProgress) => return Err(StoreError::Timeout),
            Err(Attempt::Retry { throttled: now, current }) => {
                throttled |= now;
                if let Some(current) = current {
                    store.last_seen.set(&command.counter, current);
                }
                known = current.map(Known::Fact);
                if !fact && current.is_some() {
                    // The state last seen here was out of date, and the cancellation told the current one: that
                    // is no lost race, so the next attempt goes at once.
                    continue;
                }
                contended |= !now;
            }
        }
        let pause = backoff.next_delay();
        if Instant::now() + pause >= command.deadline {
            // Logged where it is answered (a 503), with its cause; here only how many attempts it took.
            tracing::debug!(counter = %command.counter, attempts = sent.len(), "change gave up on contention");
            return Err(if throttled { StoreError::Overloaded } else { StoreError::Contention });
        }
        tracing::debug!(counter = %command.counter, ?pause, "change lost a race; retrying");
        metrics::counter!(acidizer_core::telemetry::CONFLICT_RETRIES).increment(1);
        tokio::time::sleep(pause).await;
    }
}

/// No attempt starts after the request's deadline: the answer then says why the earlier attempts failed.
fn check_deadline(command: &ChangeCommand, throttled: bool, contended: bool) -> Result<(), StoreError> {
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

/// The counter's state, strongly consistent (zero for a counter never changed).
async fn read_head(store: &DynamoStore, counter: &CounterName, deadline: Instant) -> Result<Head, StoreError> {
    let head = read_counter(store, counter, Some(deadline)).await?.map_or_else(Head::default, |item| Head::of(&item));
    store.last_seen.set(counter, head);
    Ok(head)
}

/// The counter's item, strongly consistent; by `deadline` when there is one.
pub(crate) async fn read_counter(
    store: &DynamoStore,
    counter: &CounterName,
    deadline: Option<Instant>,
) -> Result<Option<CounterItem>, StoreError> {
    let request = store
        .client
        .get_item()
        .table_name(&store.table)
        .set_key(Some(items::key(items::counter_partition(counter), HEAD)))
        .consistent_read(true);
    let output = match deadline {
        Some(deadline) => request.customize().config_override(within(deadline)?).send().await,
        None => request.send().await,
    }
    .map_err(sdk_error)?;
    output.item().map(CounterItem::from_item).transpose()
}

/// The SDK's timeouts cut to what is left before `deadline`: its own retries and their pauses end by then too.
fn within(deadline: Instant) -> Result<aws_sdk_dynamodb::config::Builder, StoreError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(StoreError::Timeout);
    }
    let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .operation_timeout(remaining.min(crate::OPERATION_TIMEOUT))
        .build();
    Ok(aws_sdk_dynamodb::config::Builder::new().timeout_config(timeouts))
}

/// A change past a bound commits nothing and is not remembered — unless its request id was used already, when
/// the answer is that request's (a replay, or this request's own attempt that committed after all).
async fn refuse_unless_known(
    store: &DynamoStore,
    command: &ChangeCommand,
    sent: &[Sent],
    bound: acidizer_core::Bound,
) -> Result<ChangeOutcome, StoreError> {
    match remembered_answer(store, command).await? {
        Some(item) => replay(store, command, sent, Some(item)).await,
        None => Ok(ChangeOutcome::Refused(bound)),
    }
}

async fn remembered_answer(store: &DynamoStore, command: &ChangeCommand) -> Result<Option<Item>, StoreError> {
    let output = store
        .client
        .get_item()
        .table_name(&store.table)
        .set_key(Some(items::key(items::request_partition(&command.request_id), HEAD)))
        .consistent_read(true)
        .customize()
        .config_override(within(command.deadline)?)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(output.item)
}

/// Commits `change` (with its answer) if the counter still holds `current`. The SDK's own retries of the attempt
/// carry its token; a retry that meets the attempt still in progress is sent again, until the deadline.
async fn transact(
    store: &DynamoStore,
    change: &Change,
    current: Head,
    attempt: &Sent,
    deadline: Instant,
) -> Result<(), Attempt> {
    let items = transaction_items(store, change, current, attempt).map_err(Attempt::Failed)?;
    let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
    loop {
        let Ok(within) = within(deadline) else {
            return Err(Attempt::InProgress);
        };
        let result = store
            .client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(&attempt.token)
            .customize()
            .config_override(within)
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
    change: &Change,
    current: Head,
    attempt: &Sent,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let partition = items::counter_partition(&change.counter);
    let at = change.updated_at.unix_millis();
    let counter = items::to_item(&CounterItem {
        pk: partition.clone(),
        sk: HEAD,
        kind: Kind::Counter,
        counter: change.counter.clone(),
        value: change.value,
        seq: Some(change.seq),
        updated_at: at,
        request_id: change.request_id.clone(),
    })?;
    let audit = items::to_item(&AuditItem {
        pk: partition,
        sk: change.seq,
        kind: Kind::Audit,
        counter: change.counter.clone(),
        request_id: change.request_id.clone(),
        at,
        delta: Some(change.delta.as_i64()),
        value: Some(change.value),
    })?;
    let request = items::to_item(&RequestItem {
        pk: items::request_partition(&change.request_id),
        sk: HEAD,
        kind: Kind::Request,
        counter: change.counter.clone(),
        response: attempt.body.clone(),
        expires_at: change.updated_at.unix_seconds() + IDEMPOTENCY_RETENTION.as_secs() as i64,
        attempt: Some(attempt.token.clone()),
        delta: Some(change.delta.as_i64()),
    })?;

    let counter_put = Put::builder().table_name(&store.table).set_item(Some(counter));
    let counter_put = if current.seq == 0 {
        counter_put.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", "pk")
    } else {
        // Exactly the state the change was computed from (items from before decrements have no `seq`: it was
        // their value).
        counter_put
            .condition_expression("#value = :value AND (#seq = :seq OR (attribute_not_exists(#seq) AND #value = :seq))")
            .expression_attribute_names("#value", "value")
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_values(":value", AttributeValue::N(current.value.to_string()))
            .expression_attribute_values(":seq", AttributeValue::N(current.seq.to_string()))
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
        .map(|put| put.build().map(|put| TransactWriteItem::builder().put(put).build()).map_err(StoreError::corrupt))
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
                // The counter's condition failed with its item: the next attempt starts from that state.
                let current = reasons
                    .get(COUNTER_ITEM)
                    .filter(|reason| code(reason) == "ConditionalCheckFailed")
                    .and_then(|reason| reason.item())
                    .and_then(|item| CounterItem::from_item(item).ok())
                    .map(|counter| Head::of(&counter));
                Attempt::Retry { throttled: false, current }
            } else if codes.iter().any(|code| code.contains("Throughput") || code.contains("Throttl")) {
                Attempt::Retry { throttled: true, current: None }
            } else {
                Attempt::Failed(StoreError::unavailable(Inconsistent::Cancelled(codes)))
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
    command: &ChangeCommand,
    sent: &[Sent],
    remembered: Option<Item>,
) -> Result<ChangeOutcome, StoreError> {
    let item = match remembered {
        Some(item) => item,
        None => remembered_answer(store, command)
            .await?
            .ok_or_else(|| StoreError::unavailable(Inconsistent::NoRememberedAnswer))?,
    };
    let remembered = RequestItem::from_item(&item)?;
    let own = remembered.attempt.as_deref().and_then(|token| sent.iter().find(|sent| sent.token == token));
    if let Some(own) = own {
        store.last_seen.set(&command.counter, Head { value: own.value, seq: own.seq });
        return Ok(ChangeOutcome::Committed { value: own.value, seq: own.seq, body: remembered.response });
    }
    let delta = items::delta_of(remembered.delta)?;
    Ok(ChangeOutcome::Replayed { counter: remembered.counter, delta, body: remembered.response })
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
            seq: Some(43),
            updated_at: 0,
            request_id: acidizer_core::RequestId::parse("winner").unwrap(),
        })
        .unwrap();
        let told = classify(cancelled(&["ConditionalCheckFailed", "None", "None"], Some((COUNTER_ITEM, counter))));
        assert!(
            matches!(told, Attempt::Retry { throttled: false, current: Some(Head { value: 41, seq: 43 }) }),
            "retry from the told state"
        );
        let throttled = cancelled(&["ThrottlingError", "None", "None"], None);
        assert!(matches!(classify(throttled), Attempt::Retry { throttled: true, .. }));
    }

    #[test]
    fn other_cancellations_fail() {
        let failed = classify(cancelled(&["ValidationError", "None", "None"], None));
        assert!(matches!(failed, Attempt::Failed(StoreError::Unavailable(_))));
    }
}

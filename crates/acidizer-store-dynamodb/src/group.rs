//! Group commit: the changes of one counter that wait together commit in one transaction — the counter once,
//! conditioned on the exact state the group was computed from; the group's audit records in one page (two where
//! the group's `seq`s cross a page's thousand); each change's remembered answer, conditioned on its absence. Each
//! change's bound is checked in order on the state before it, so the checks and the changes commit together or
//! not at all, and a change refused on a state is answered 409 only once DynamoDB has confirmed that state.
//!
//! A group is tried first from the state this process last saw, and retried on contention from the state the
//! cancellation reports, with capped exponential backoff and full jitter. A taken request id found by the
//! cancellation is answered from what it holds, and the rest of the group retried without it. Every attempt has its
//! own `ClientRequestToken`, so the SDK's own retries of an attempt commit at most once and no two attempts can be
//! mistaken for each other.

use crate::items::{self, AuditPageItem, CounterItem, HEAD, Item, Kind, RequestItem};
use crate::last_seen::Head;
use crate::{DynamoStore, is_throttling, sdk_error};
use acidizer_core::backoff::Backoff;
use acidizer_core::store::IDEMPOTENCY_RETENTION;
use acidizer_core::{
    Bound, Change, ChangeCommand, ChangeOutcome, CounterName, Delta, RequestId, StoreError, Timestamp,
};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The pauses between attempts: from under 5 ms, doubling, to at most 400 ms after a throttle, and 40 ms after a
/// lost race — a few transactions' time: a host that waited longer would find the counter taken again by the hosts
/// that did not, lose again, and starve while they go on.
const RETRY_BASE: Duration = Duration::from_millis(5);
const RETRY_CAP: Duration = Duration::from_millis(400);
const CONTENDED_CAP: Duration = Duration::from_millis(40);

/// The most changes one group carries: a transaction holds at most 100 items, and the counter and up to two audit
/// pages go with the changes' answers.
pub(crate) const MAX_GROUP: usize = 97;

/// A change waiting for its group's commit, and where its answer goes.
pub(crate) struct Pending {
    pub(crate) command: ChangeCommand,
    pub(crate) reply: oneshot::Sender<Result<ChangeOutcome, StoreError>>,
    /// The attempts that carried this change: one of them may have committed while its answer was lost.
    sent: Vec<Sent>,
}

impl Pending {
    pub(crate) fn new(command: ChangeCommand, reply: oneshot::Sender<Result<ChangeOutcome, StoreError>>) -> Self {
        Self { command, reply, sent: Vec::new() }
    }

    fn answer(self, outcome: Result<ChangeOutcome, StoreError>) {
        // The caller may have stopped waiting (its request was cancelled): the outcome stands all the same.
        let _ = self.reply.send(outcome);
    }
}

/// One attempt that carried a change: its token, and the answer it would have given.
struct Sent {
    token: String,
    value: u64,
    seq: u64,
    body: String,
}

/// How one transaction attempt ended, short of committing.
#[derive(Debug)]
enum Attempt {
    /// These changes' request ids are taken (by index among the attempt's changes, with what the cancellation
    /// carried of each): each is answered from what its id holds; `current` is the counter's state when the
    /// cancellation told it.
    Taken {
        taken: Vec<(usize, Option<Item>)>,
        current: Option<Head>,
    },
    /// Another change or transaction got there first, or the table throttled: try again, from the counter's
    /// state when the cancellation told it.
    Retry {
        throttled: bool,
        current: Option<Head>,
    },
    /// An SDK retry of this very attempt met the attempt itself still in progress until the deadline: its outcome
    /// is unknown.
    InProgress,
    Failed(StoreError),
}

/// What is known of the counter's state before an attempt.
#[derive(Clone, Copy)]
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
    #[error("a change committed without an attempt recorded")]
    NotSent,
    #[error("a transaction of no change")]
    Empty,
}

/// One change of a group, as planned on the state before it.
enum Planned {
    /// Committed by the attempt, with this `seq` and value.
    Change { index: usize, change: Change },
    /// Refused on the state before it.
    Refused { bound: Bound },
}

/// Commits `group` (changes of `counter`, in the order they arrived, no request id twice) and answers each.
pub(crate) async fn commit(store: &DynamoStore, counter: &CounterName, mut group: Vec<Pending>) {
    let (mut after_throttle, mut after_race) =
        (Backoff::new(RETRY_BASE, RETRY_CAP), Backoff::new(RETRY_BASE, CONTENDED_CAP));
    let mut last_throttled: bool;
    let (mut throttled, mut contended) = (false, false);
    // Try first from the state last seen here (zero for a counter never seen: a new counter then costs one request).
    let mut known = Some(Known::Hint(store.last_seen.get(counter).unwrap_or_default()));
    loop {
        group = answer_late(group, throttled, contended);
        // An attempt may run until the last member's deadline: a member whose own deadline passes meanwhile has been
        // answered by then (the use case gives up on it), and the others keep their chance.
        let Some(deadline) = group.iter().map(|pending| pending.command.deadline).max() else { return };
        let (head, fact) = match known.take() {
            Some(Known::Fact(head)) => (head, true),
            Some(Known::Hint(head)) => (head, false),
            None => match read_head(store, counter, deadline).await {
                Ok(head) => (head, true),
                Err(error) => return answer_all(group, &error),
            },
        };
        let at = Timestamp::now();
        let planned = plan(&group, head, at);
        let changes: Vec<&Change> = planned
            .iter()
            .filter_map(|planned| match planned {
                Planned::Change { change, .. } => Some(change),
                Planned::Refused { .. } => None,
            })
            .collect();
        if changes.is_empty() {
            if !fact {
                // Refused on what this process last saw: ask DynamoDB first.
                known = None;
                continue;
            }
            return answer_planned(store, group, planned).await;
        }
        let token = uuid::Uuid::new_v4().to_string();
        let items = match transaction_items(store, counter, head, &changes, &token, at) {
            Ok(items) => items,
            Err(error) => return answer_all(group, &error),
        };
        for planned in &planned {
            if let Planned::Change { index, change } = planned {
                let body = match change.response_body() {
                    Ok(body) => body,
                    Err(error) => return answer_all(group, &StoreError::corrupt(error)),
                };
                group[*index].sent.push(Sent { token: token.clone(), value: change.value, seq: change.seq, body });
            }
        }
        let committed_head = changes.last().map(|change| Head { value: change.value, seq: change.seq });
        let indexes: Vec<usize> = planned
            .iter()
            .filter_map(|planned| match planned {
                Planned::Change { index, .. } => Some(*index),
                Planned::Refused { .. } => None,
            })
            .collect();
        match transact(store, items, &token, deadline, 1 + pages(&changes)).await {
            Ok(()) => {
                if let Some(head) = committed_head {
                    store.last_seen.set(counter, head);
                }
                return answer_planned(store, group, planned).await;
            }
            Err(Attempt::Taken { taken, current }) => {
                // Answer the changes whose ids are taken, and retry the rest at once.
                let mut taken: Vec<(usize, Option<Item>)> =
                    taken.into_iter().filter_map(|(at, item)| indexes.get(at).map(|index| (*index, item))).collect();
                taken.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
                for (index, item) in taken {
                    let pending = group.remove(index);
                    let outcome = replay(store, &pending.command, &pending.sent, item).await;
                    pending.answer(outcome);
                }
                if let Some(current) = current {
                    store.last_seen.set(counter, current);
                }
                known = Some(current.map_or(if fact { Known::Fact(head) } else { Known::Hint(head) }, Known::Fact));
                continue;
            }
            Err(Attempt::Failed(error)) => return answer_all(group, &error),
            Err(Attempt::InProgress) => return answer_all(group, &StoreError::Timeout),
            Err(Attempt::Retry { throttled: now, current }) => {
                throttled |= now;
                last_throttled = now;
                if let Some(current) = current {
                    store.last_seen.set(counter, current);
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
        let pause = if last_throttled { after_throttle.next_delay() } else { after_race.next_delay() };
        if Instant::now() + pause >= deadline {
            // Logged where it is answered (a 503), with its cause; here only how many attempts it took.
            tracing::debug!(%counter, changes = group.len(), "a group gave up on contention");
            let error = if throttled { StoreError::Overloaded } else { StoreError::Contention };
            return answer_all(group, &error);
        }
        tracing::debug!(%counter, ?pause, "a group lost a race; retrying");
        metrics::counter!(acidizer_core::telemetry::CONFLICT_RETRIES).increment(1);
        tokio::time::sleep(pause).await;
    }
}

/// Each change of `group` on the state before it, from `head`.
fn plan(group: &[Pending], head: Head, at: Timestamp) -> Vec<Planned> {
    let mut state = head;
    group
        .iter()
        .enumerate()
        .map(|(index, pending)| {
            let command = &pending.command;
            match command.delta.apply(state.value, command.max) {
                Ok(value) => {
                    state = Head { value, seq: state.seq + 1 };
                    let change = Change {
                        counter: command.counter.clone(),
                        value,
                        seq: state.seq,
                        delta: command.delta,
                        request_id: command.request_id.clone(),
                        updated_at: at,
                    };
                    Planned::Change { index, change }
                }
                Err(bound) => Planned::Refused { bound },
            }
        })
        .collect()
}

/// Answers the changes past their deadline — why the attempts before failed, or that time ran out — and keeps the
/// rest: no attempt starts after a change's deadline.
fn answer_late(group: Vec<Pending>, throttled: bool, contended: bool) -> Vec<Pending> {
    let now = Instant::now();
    let (late, on_time): (Vec<Pending>, Vec<Pending>) =
        group.into_iter().partition(|pending| pending.command.deadline <= now);
    let error = if throttled {
        StoreError::Overloaded
    } else if contended {
        StoreError::Contention
    } else {
        StoreError::Timeout
    };
    answer_all(late, &error);
    on_time
}

fn answer_all(group: Vec<Pending>, error: &StoreError) {
    for pending in group {
        pending.answer(Err(error.clone()));
    }
}

/// Answers each change of a group as planned, once DynamoDB confirmed the states it was planned on (the group's
/// transaction committed, or every change was refused on a state read just now): a change with its commit, a
/// refusal with 409 — unless its request id was taken already.
async fn answer_planned(store: &DynamoStore, group: Vec<Pending>, planned: Vec<Planned>) {
    for (pending, planned) in group.into_iter().zip(planned) {
        let answer = match (planned, pending.sent.last()) {
            (Planned::Change { change, .. }, Some(sent)) => {
                Ok(ChangeOutcome::Committed { value: change.value, seq: change.seq, body: sent.body.clone() })
            }
            (Planned::Change { .. }, None) => Err(StoreError::unavailable(Inconsistent::NotSent)),
            (Planned::Refused { bound, .. }, _) => {
                refuse_unless_known(store, &pending.command, &pending.sent, bound).await
            }
        };
        pending.answer(answer);
    }
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
    bound: Bound,
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

/// How many audit pages the changes take: one, or two where their `seq`s cross a page's thousand.
fn pages(changes: &[&Change]) -> usize {
    match (changes.first(), changes.last()) {
        (Some(first), Some(last)) if first.seq / items::AUDIT_BUCKET != last.seq / items::AUDIT_BUCKET => 2,
        _ => 1,
    }
}

/// Commits the transaction `items` (whose changes' answers start at `first_request`) by attempt `token`. The
/// SDK's own retries of the attempt carry its token; a retry that meets the attempt still in progress is sent
/// again, until the deadline.
async fn transact(
    store: &DynamoStore,
    items: Vec<TransactWriteItem>,
    token: &str,
    deadline: Instant,
    first_request: usize,
) -> Result<(), Attempt> {
    let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
    loop {
        let Ok(within) = within(deadline) else {
            return Err(Attempt::InProgress);
        };
        let result = store
            .client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(token)
            .customize()
            .config_override(within)
            .send()
            .await;
        match result.map(|_| ()).map_err(|error| classify(error, first_request)) {
            Err(Attempt::InProgress) => {
                let pause = backoff.next_delay().max(Duration::from_millis(1));
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            }
            other => return other,
        }
    }
}

/// The transaction of `changes` (at least one): the counter conditioned on `current`, the audit page(s), and each
/// change's answer, conditioned on its request id being free.
fn transaction_items(
    store: &DynamoStore,
    counter: &CounterName,
    current: Head,
    changes: &[&Change],
    token: &str,
    at: Timestamp,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let last = changes.last().ok_or_else(|| StoreError::unavailable(Inconsistent::Empty))?;
    let counter_item = items::to_item(&CounterItem {
        pk: items::counter_partition(counter),
        sk: HEAD,
        kind: Kind::Counter,
        counter: counter.clone(),
        value: last.value,
        seq: Some(last.seq),
        updated_at: at.unix_millis(),
        request_id: last.request_id.clone(),
    })?;
    let counter_put = Put::builder().table_name(&store.table).set_item(Some(counter_item));
    let counter_put = if current.seq == 0 {
        counter_put.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", "pk")
    } else {
        // Exactly the state the group was computed from (items from before decrements have no `seq`: it was
        // their value).
        counter_put
            .condition_expression("#value = :value AND (#seq = :seq OR (attribute_not_exists(#seq) AND #value = :seq))")
            .expression_attribute_names("#value", "value")
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_values(":value", AttributeValue::N(current.value.to_string()))
            .expression_attribute_values(":seq", AttributeValue::N(current.seq.to_string()))
    };
    let absent = |item: Item| {
        Put::builder()
            .table_name(&store.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk")
    };
    let mut puts =
        vec![counter_put.return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)];
    let mut value_before = current.value;
    for page in changes.chunk_by(|a, b| a.seq / items::AUDIT_BUCKET == b.seq / items::AUDIT_BUCKET) {
        let records: Vec<(u64, Delta, RequestId)> =
            page.iter().map(|change| (change.seq, change.delta, change.request_id.clone())).collect();
        puts.push(absent(items::to_item(&AuditPageItem::new(counter, value_before, at.unix_millis(), &records))?));
        value_before = page.last().map_or(value_before, |change| change.value);
    }
    for change in changes {
        let request = items::to_item(&RequestItem {
            pk: items::request_partition(&change.request_id),
            sk: HEAD,
            kind: Kind::Request,
            counter: counter.clone(),
            response: change.response_body()?,
            expires_at: at.unix_seconds() + IDEMPOTENCY_RETENTION.as_secs() as i64,
            attempt: Some(token.to_owned()),
            delta: Some(change.delta.as_i64()),
        })?;
        puts.push(
            absent(request).return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld),
        );
    }
    puts.into_iter()
        .map(|put| put.build().map(|put| TransactWriteItem::builder().put(put).build()).map_err(StoreError::corrupt))
        .collect()
}

/// How an attempt failed, from DynamoDB's answer; `first_request` is where the changes' answers start among the
/// transaction's items (the counter is the first).
fn classify(error: SdkError<TransactWriteItemsError>, first_request: usize) -> Attempt {
    if is_throttling(&error) {
        return Attempt::Retry { throttled: true, current: None };
    }
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let reasons = cancelled.cancellation_reasons();
            let code = |reason: &CancellationReason| reason.code().unwrap_or("None").to_owned();
            // The counter's condition failed with its item: the next attempt starts from that state.
            let current = reasons
                .first()
                .filter(|reason| code(reason) == "ConditionalCheckFailed")
                .and_then(|reason| reason.item())
                .and_then(|item| CounterItem::from_item(item).ok())
                .map(|counter| Head::of(&counter));
            let taken: Vec<(usize, Option<Item>)> = reasons
                .iter()
                .enumerate()
                .skip(first_request)
                .filter(|(_, reason)| code(reason) == "ConditionalCheckFailed")
                .map(|(at, reason)| (at - first_request, reason.item().cloned()))
                .collect();
            if !taken.is_empty() {
                return Attempt::Taken { taken, current };
            }
            let codes: Vec<String> = reasons.iter().map(code).collect();
            if codes.iter().any(|code| matches!(code.as_str(), "ConditionalCheckFailed" | "TransactionConflict")) {
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
/// When the remembered answer was written by one of this change's own attempts (an attempt that committed while
/// its answer was lost), that attempt committed: this is a commit, not a replay.
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

    fn counter_item(value: u64, seq: u64) -> Item {
        items::to_item(&CounterItem {
            pk: "counter#global".to_owned(),
            sk: HEAD,
            kind: Kind::Counter,
            counter: CounterName::global(),
            value,
            seq: Some(seq),
            updated_at: 0,
            request_id: RequestId::parse("winner").unwrap(),
        })
        .unwrap()
    }

    #[test]
    fn taken_request_ids_are_named_by_their_change_whatever_else_failed() {
        let item = items::key("request#k".to_owned(), HEAD);
        let codes = ["None", "None", "None", "ConditionalCheckFailed", "None"];
        match classify(cancelled(&codes, Some((3, item.clone()))), 2) {
            Attempt::Taken { taken, current: None } => assert_eq!(taken, [(1, Some(item.clone()))]),
            other => panic!("{codes:?}: the second change's id is taken, not {other:?}"),
        }
        let codes = ["ConditionalCheckFailed", "None", "ConditionalCheckFailed", "ConditionalCheckFailed"];
        match classify(cancelled(&codes, Some((0, counter_item(4, 6)))), 2) {
            Attempt::Taken { taken, current } => {
                assert_eq!(taken.iter().map(|(at, _)| *at).collect::<Vec<_>>(), [0, 1]);
                assert_eq!(current, Some(Head { value: 4, seq: 6 }), "and the counter's state is told");
            }
            other => panic!("{codes:?}: both ids taken, not {other:?}"),
        }
    }

    #[test]
    fn a_lost_race_is_retried() {
        for codes in [
            ["ConditionalCheckFailed", "None", "None"],
            ["None", "ConditionalCheckFailed", "None"],
            ["TransactionConflict", "None", "None"],
        ] {
            let retry = classify(cancelled(&codes, None), 2);
            assert!(matches!(retry, Attempt::Retry { throttled: false, current: None }), "{codes:?}");
        }
        let told = classify(cancelled(&["ConditionalCheckFailed", "None", "None"], Some((0, counter_item(41, 43)))), 2);
        assert!(
            matches!(told, Attempt::Retry { throttled: false, current: Some(Head { value: 41, seq: 43 }) }),
            "retry from the told state"
        );
        let throttled = cancelled(&["ThrottlingError", "None", "None"], None);
        assert!(matches!(classify(throttled, 2), Attempt::Retry { throttled: true, .. }));
    }

    #[test]
    fn other_cancellations_fail() {
        let failed = classify(cancelled(&["ValidationError", "None", "None"], None), 2);
        assert!(matches!(failed, Attempt::Failed(StoreError::Unavailable(_))));
    }

    fn command(delta: Delta, max: u64, id: &str) -> Pending {
        let command = ChangeCommand {
            counter: CounterName::global(),
            delta,
            request_id: RequestId::parse(id).unwrap(),
            max: acidizer_core::CounterMax::parse(&max.to_string()).unwrap(),
            at: Timestamp::now(),
            deadline: Instant::now() + Duration::from_secs(10),
        };
        Pending::new(command, oneshot::channel().0)
    }

    /// Each change is checked on the state the ones before it leave: a refused change takes no `seq`.
    #[test]
    fn a_group_is_planned_change_by_change() {
        let group = [
            command(Delta::Decrement, 2, "a"),
            command(Delta::Increment, 2, "b"),
            command(Delta::Increment, 2, "c"),
            command(Delta::Decrement, 2, "d"),
        ];
        let planned: Vec<String> = plan(&group, Head { value: 0, seq: 5 }, Timestamp::now())
            .into_iter()
            .map(|planned| match planned {
                Planned::Change { change, .. } => format!("{}={}@{}", change.request_id, change.value, change.seq),
                Planned::Refused { bound, .. } => format!("{bound:?}"),
            })
            .collect();
        assert_eq!(planned, ["Floor", "b=1@6", "c=2@7", "d=1@8"]);
        let full = [command(Delta::Increment, 2, "e"), command(Delta::Increment, 2, "f")];
        let planned = plan(&full, Head { value: 1, seq: 9 }, Timestamp::now());
        assert!(
            matches!(planned[1], Planned::Refused { bound: Bound::Ceiling(_), .. }),
            "the second meets the ceiling"
        );
    }
}

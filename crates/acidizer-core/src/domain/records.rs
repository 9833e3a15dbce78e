use super::{CounterName, Delta, RequestId, Timestamp};
use serde::{Serialize, Serializer};

/// A counter's value: the sum of its changes' deltas, between 0 and its ceiling.
pub type CounterValue = u64;

/// A change's place in its counter's history: 1, 2, … with no gap (a counter's `seq` counts its changes).
pub type Seq = u64;

/// What `GET /counters/{name}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterSnapshot {
    pub counter: CounterName,
    pub value: CounterValue,
    pub seq: Seq,
    pub updated_at: Option<Timestamp>,
}

impl CounterSnapshot {
    /// A counter that was never changed.
    pub fn zero(counter: CounterName) -> Self {
        Self { counter, value: 0, seq: 0, updated_at: None }
    }
}

/// One committed change: what `POST /counters/{name}/increment` (or `/decrement`) answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub counter: CounterName,
    pub value: CounterValue,
    pub seq: Seq,
    pub delta: Delta,
    pub request_id: RequestId,
    pub updated_at: Timestamp,
}

impl Change {
    /// The answer's body, exactly as first sent and as replayed for the same request id; an error only for a change
    /// whose time no timestamp can show (a corrupt record).
    pub fn response_body(&self) -> Result<String, UnrenderableChange> {
        let body = ChangeBody {
            counter: self.counter.as_str(),
            value: self.value,
            seq: self.seq,
            delta: self.delta.as_i64(),
            request_id: self.request_id.as_str(),
            updated_at: self.updated_at,
        };
        serde_json::to_string(&body)
            .map_err(|cause| UnrenderableChange { request_id: self.request_id.as_str().to_owned(), cause })
    }
}

/// A change whose answer cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("the answer to the change {request_id} cannot be written: {cause}")]
pub struct UnrenderableChange {
    request_id: String,
    cause: serde_json::Error,
}

/// The fields of a change's answer, in the answer's order, borrowed: serialised straight into the body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeBody<'a> {
    counter: &'a str,
    value: CounterValue,
    seq: Seq,
    delta: i64,
    request_id: &'a str,
    updated_at: Timestamp,
}

/// One audit record of a counter's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub seq: Seq,
    #[serde(serialize_with = "delta_as_number")]
    pub delta: Delta,
    pub value: CounterValue,
    pub request_id: RequestId,
    pub at: Timestamp,
}

fn delta_as_number<S: Serializer>(delta: &Delta, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_i64(delta.as_i64())
}

/// A committed change of a counter, as subscribers learn of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterChange {
    pub counter: CounterName,
    pub value: CounterValue,
    pub seq: Seq,
    pub updated_at: Timestamp,
}

impl From<&Change> for CounterChange {
    fn from(change: &Change) -> Self {
        Self { counter: change.counter.clone(), value: change.value, seq: change.seq, updated_at: change.updated_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_records_have_the_contract_shapes() {
        let change = Change {
            counter: CounterName::global(),
            value: 2,
            seq: 4,
            delta: Delta::Decrement,
            request_id: RequestId::parse("k-1").unwrap(),
            updated_at: Timestamp::from_unix_millis(1_795_428_000_000),
        };
        assert_eq!(
            change.response_body().unwrap(),
            r#"{"counter":"global","value":2,"seq":4,"delta":-1,"requestId":"k-1","updatedAt":"2026-11-23T10:00:00.000Z"}"#
        );
        let record = AuditRecord {
            seq: 4,
            delta: Delta::Decrement,
            value: 2,
            request_id: RequestId::parse("k-1").unwrap(),
            at: Timestamp::from_unix_millis(1_795_428_000_000),
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"seq":4,"delta":-1,"value":2,"requestId":"k-1","at":"2026-11-23T10:00:00.000Z"}"#
        );
        let zero = serde_json::to_string(&CounterSnapshot::zero(CounterName::global())).unwrap();
        assert_eq!(zero, r#"{"counter":"global","value":0,"seq":0,"updatedAt":null}"#);
    }

    #[test]
    fn a_change_whose_time_no_timestamp_can_show_has_no_answer() {
        let change = Change {
            counter: CounterName::global(),
            value: 1,
            seq: 1,
            delta: Delta::Increment,
            request_id: RequestId::parse("k-2").unwrap(),
            updated_at: Timestamp::from_unix_millis(i64::MAX),
        };
        let error = change.response_body().unwrap_err();
        assert!(error.to_string().starts_with("the answer to the change k-2 cannot be written"), "{error}");
    }
}

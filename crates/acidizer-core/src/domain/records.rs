use super::{CounterName, RequestId, Timestamp};
use serde::Serialize;

/// A counter's value: the number of increments it has committed.
pub type CounterValue = u64;

/// What `GET /counters/{name}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterSnapshot {
    pub counter: CounterName,
    pub value: CounterValue,
    pub updated_at: Option<Timestamp>,
}

impl CounterSnapshot {
    /// A counter that was never incremented.
    pub fn zero(counter: CounterName) -> Self {
        Self { counter, value: 0, updated_at: None }
    }
}

/// One committed increment: what `POST /counters/{name}/increment` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Increment {
    pub counter: CounterName,
    pub value: CounterValue,
    pub request_id: RequestId,
    pub updated_at: Timestamp,
}

impl Increment {
    /// The answer's body, exactly as first sent and as replayed for the same request id.
    pub fn response_body(&self) -> String {
        serde_json::json!({
            "counter": self.counter.as_str(),
            "value": self.value,
            "requestId": self.request_id.as_str(),
            "updatedAt": self.updated_at.to_string(),
        })
        .to_string()
    }
}

/// One audit record of a counter's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub value: CounterValue,
    pub request_id: RequestId,
    pub at: Timestamp,
}

/// A committed change of a counter, as subscribers learn of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterChange {
    pub counter: CounterName,
    pub value: CounterValue,
    pub updated_at: Timestamp,
}

impl From<&Increment> for CounterChange {
    fn from(increment: &Increment) -> Self {
        Self { counter: increment.counter.clone(), value: increment.value, updated_at: increment.updated_at }
    }
}

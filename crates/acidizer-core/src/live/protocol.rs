//! The WebSocket protocol: what clients may send, and every message the server sends.

use crate::domain::{CounterChange, CounterSnapshot};

/// The largest message a client may send; larger ones are refused with an error message.
pub const MAX_CLIENT_FRAME_BYTES: usize = 4096;

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAction {
    /// `{"action":"sync"}`: answer the counter's current value.
    Sync,
    /// `{"action":"ping"}`: answer `{"type":"pong"}`.
    Ping,
}

/// Why a client message was refused; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("messages are at most {MAX_CLIENT_FRAME_BYTES} bytes")]
    TooLarge,
    #[error("messages are JSON objects such as {{\"action\":\"sync\"}}")]
    NotJson,
    #[error("unknown action; send {{\"action\":\"sync\"}} or {{\"action\":\"ping\"}}")]
    UnknownAction,
    #[error("binary messages are not understood; send JSON text")]
    Binary,
}

pub fn parse_client_message(text: &str) -> Result<ClientAction, ProtocolError> {
    if text.len() > MAX_CLIENT_FRAME_BYTES {
        return Err(ProtocolError::TooLarge);
    }
    let message: serde_json::Value = serde_json::from_str(text).map_err(|_| ProtocolError::NotJson)?;
    let action = message.as_object().ok_or(ProtocolError::NotJson)?.get("action");
    match action.and_then(serde_json::Value::as_str) {
        Some("sync") => Ok(ClientAction::Sync),
        Some("ping") => Ok(ClientAction::Ping),
        _ => Err(ProtocolError::UnknownAction),
    }
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// `{"type":"value",…}`: a counter's value, after a change or on `sync`.
    Value(CounterSnapshot),
    /// `{"type":"pong"}`.
    Pong,
    /// `{"type":"error","detail":…}`.
    Error(String),
}

impl Outbound {
    pub fn change(change: &CounterChange) -> Self {
        Self::Value(CounterSnapshot {
            counter: change.counter.clone(),
            value: change.value,
            seq: change.seq,
            updated_at: Some(change.updated_at),
        })
    }

    /// The `seq` of the counter state this message carries, if any: a subscriber's messages only move it forward.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Value(snapshot) => Some(snapshot.seq),
            _ => None,
        }
    }

    pub fn to_json(&self) -> String {
        match self {
            Self::Value(snapshot) => {
                let message = ValueMessage {
                    kind: "value",
                    counter: snapshot.counter.as_str(),
                    value: snapshot.value,
                    seq: snapshot.seq,
                    updated_at: snapshot.updated_at,
                };
                serde_json::to_string(&message).unwrap_or_else(|error| {
                    // Only a corrupt record's time cannot be shown.
                    tracing::error!(%error, counter = %snapshot.counter, "cannot write a counter's value");
                    Self::Error("the counter's value cannot be shown".to_owned()).to_json()
                })
            }
            Self::Pong => serde_json::json!({ "type": "pong" }).to_string(),
            Self::Error(detail) => serde_json::json!({ "type": "error", "detail": detail }).to_string(),
        }
    }
}

/// A value message's fields, in its order, borrowed.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ValueMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    counter: &'a str,
    value: u64,
    seq: u64,
    updated_at: Option<crate::domain::Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CounterName, Timestamp};

    #[test]
    fn parses_the_two_actions() {
        assert_eq!(parse_client_message(r#"{"action":"sync"}"#), Ok(ClientAction::Sync));
        assert_eq!(parse_client_message(r#"{"action":"ping","extra":1}"#), Ok(ClientAction::Ping));
        assert_eq!(parse_client_message(r#"{"action":"dance"}"#), Err(ProtocolError::UnknownAction));
        assert_eq!(parse_client_message(r#"{"action":1}"#), Err(ProtocolError::UnknownAction));
        assert_eq!(parse_client_message(r#"["sync"]"#), Err(ProtocolError::NotJson));
        assert_eq!(parse_client_message("sync"), Err(ProtocolError::NotJson));
        let big = format!(r#"{{"action":"ping","pad":"{}"}}"#, "x".repeat(MAX_CLIENT_FRAME_BYTES));
        assert_eq!(parse_client_message(&big), Err(ProtocolError::TooLarge));
    }

    #[test]
    fn renders_the_contract_shapes() {
        let change = CounterChange {
            counter: CounterName::global(),
            value: 43,
            seq: 45,
            updated_at: Timestamp::from_unix_millis(1_795_428_000_000),
        };
        assert_eq!(
            Outbound::change(&change).to_json(),
            r#"{"type":"value","counter":"global","value":43,"seq":45,"updatedAt":"2026-11-23T10:00:00.000Z"}"#
        );
        let zero = Outbound::Value(CounterSnapshot::zero(CounterName::global()));
        assert_eq!(zero.to_json(), r#"{"type":"value","counter":"global","value":0,"seq":0,"updatedAt":null}"#);
        assert_eq!(Outbound::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(Outbound::Error("no".into()).to_json(), r#"{"type":"error","detail":"no"}"#);
    }

    #[test]
    fn a_value_whose_time_cannot_be_shown_is_an_error_message() {
        let change = CounterChange {
            counter: CounterName::global(),
            value: 1,
            seq: 1,
            updated_at: Timestamp::from_unix_millis(i64::MAX),
        };
        assert_eq!(
            Outbound::change(&change).to_json(),
            r#"{"type":"error","detail":"the counter's value cannot be shown"}"#
        );
    }
}

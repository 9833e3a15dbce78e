use std::fmt;
use std::sync::Arc;

/// A WebSocket connection's id. API Gateway's ids hold `=` and other characters: it is opaque, only checked to
/// be 1–256 visible ASCII characters. Shared, not copied, when cloned: a broadcast lists every subscriber's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a connection id is 1 to 256 visible ASCII characters")]
pub struct InvalidConnectionId;

impl ConnectionId {
    pub fn parse(raw: &str) -> Result<Self, InvalidConnectionId> {
        let ok = !raw.is_empty() && raw.len() <= 256 && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok { Ok(Self(raw.into())) } else { Err(InvalidConnectionId) }
    }

    /// A fresh id, for connections the local server accepts itself.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string().into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gateway_ids_are_kept_as_they_are() {
        for id in ["L0SM9cOFvHcCIhw=", "a+b/c==", "x"] {
            assert_eq!(ConnectionId::parse(id).unwrap().as_str(), id);
        }
        for bad in ["", "a b", "tab\t", &"x".repeat(257)] {
            assert!(ConnectionId::parse(bad).is_err(), "{bad:?}");
        }
    }
}

use std::fmt;

/// The `Idempotency-Key` a client sent: 1–128 characters of `[A-Za-z0-9._:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an Idempotency-Key is 1 to 128 characters of letters, digits, '.', '_', ':' and '-'")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, InvalidIdempotencyKey> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok { Ok(Self(raw.to_owned())) } else { Err(InvalidIdempotencyKey) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of one increment: the client's idempotency key, or a UUID the server made. It is also the key under
/// which the increment's answer is remembered, so a later request that sends it as `Idempotency-Key` replays.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(IdempotencyKey);

impl RequestId {
    pub fn generate() -> Self {
        Self(IdempotencyKey(uuid::Uuid::new_v4().to_string()))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Restores a request id that a store holds; stored ids were valid keys when written.
    pub fn parse(raw: &str) -> Result<Self, InvalidIdempotencyKey> {
        IdempotencyKey::parse(raw).map(Self)
    }
}

impl From<IdempotencyKey> for RequestId {
    fn from(key: IdempotencyKey) -> Self {
        Self(key)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_keys() {
        let long = "k".repeat(128);
        for key in ["a", "A-b_c.d:e", "0", long.as_str(), "3f2b6c1e-7d8a-4f5e-9b0c-1a2b3c4d5e6f"] {
            assert_eq!(IdempotencyKey::parse(key).unwrap().as_str(), key);
        }
    }

    #[test]
    fn rejects_invalid_keys() {
        let long = "k".repeat(129);
        for key in ["", " ", "a b", "a/b", "a=b", "ключ", long.as_str(), "a\tb"] {
            assert_eq!(IdempotencyKey::parse(key), Err(InvalidIdempotencyKey), "{key:?}");
        }
    }

    #[test]
    fn generated_ids_are_valid_keys() {
        let id = RequestId::generate();
        assert!(IdempotencyKey::parse(id.as_str()).is_ok());
        assert_ne!(id, RequestId::generate());
    }
}

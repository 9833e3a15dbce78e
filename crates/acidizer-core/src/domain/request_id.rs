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

/// The id of one change: the client's idempotency key, or a UUID the server made. It is also the key under
/// which the change's answer is remembered, so a later request that sends it as `Idempotency-Key` replays.
#[derive(Debug, Clone)]
pub struct RequestId {
    key: IdempotencyKey,
    /// Made here for this request: no answer can be remembered under it yet.
    fresh: bool,
}

impl RequestId {
    /// A new id: a time-ordered UUID (version 7), so that the ids a store indexes arrive in order — random ones
    /// would land all over its index and cost it far more to write.
    pub fn generate() -> Self {
        let mut text = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
        Self { key: IdempotencyKey(id.to_owned()), fresh: true }
    }

    pub fn as_str(&self) -> &str {
        self.key.as_str()
    }

    /// Whether the server made this id for the request at hand (a new random UUID, which no client has seen): a
    /// store need not look for an answer remembered under it.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Restores a request id that a store holds; stored ids were valid keys when written.
    pub fn parse(raw: &str) -> Result<Self, InvalidIdempotencyKey> {
        IdempotencyKey::parse(raw).map(Self::from)
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for RequestId {}

impl std::hash::Hash for RequestId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl From<IdempotencyKey> for RequestId {
    fn from(key: IdempotencyKey) -> Self {
        Self { key, fresh: false }
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
        assert!(id.is_fresh());
        let sent_back = RequestId::parse(id.as_str()).unwrap();
        assert!(!sent_back.is_fresh(), "the same id sent by a client may name a remembered answer");
        assert_eq!(sent_back, id);
        assert!(IdempotencyKey::parse(id.as_str()).is_ok());
        assert_ne!(id, RequestId::generate());
    }
}

use std::fmt;

/// A counter's name: `^[a-z0-9][a-z0-9_-]{0,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a counter name is 1 to 64 characters of lowercase letters, digits, '_' and '-', starting with a letter or digit"
)]
pub struct InvalidCounterName;

impl CounterName {
    pub const MAX_LEN: usize = 64;

    /// The counter of the original Number Acidizer routes.
    pub fn global() -> Self {
        Self("global".to_owned())
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidCounterName> {
        let bytes = raw.as_bytes();
        let first_ok = bytes.first().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if first_ok && rest_ok && bytes.len() <= Self::MAX_LEN {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidCounterName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CounterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for CounterName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for CounterName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for name in ["global", "a", "0", "a-b_c", "x".repeat(64).as_str(), "9lives"] {
            assert_eq!(CounterName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn rejects_invalid_names() {
        let long = "x".repeat(65);
        for name in ["", "-a", "_a", "A", "a b", "a/b", "é", long.as_str(), "a.b", "global\n"] {
            assert_eq!(CounterName::parse(name), Err(InvalidCounterName), "{name:?}");
        }
    }
}

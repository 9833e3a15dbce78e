//! Which counters exist on a stage: any valid name, or `global` and the names a stage lists (`COUNTER_NAMES`) —
//! the original Number Acidizer has one counter, and a stage that serves a few does not grow others.

use super::{CounterName, InvalidCounterName};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The environment variable that lists the counters of the Lambda functions (comma-separated; empty or unset: any).
pub const COUNTER_NAMES_ENV: &str = "COUNTER_NAMES";

/// The counters that exist: every valid name, or `global` and those listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownCounters(Option<Arc<BTreeSet<CounterName>>>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{COUNTER_NAMES_ENV} lists {0:?}, which is not a counter name")]
pub struct InvalidCounterNames(String, #[source] InvalidCounterName);

impl KnownCounters {
    /// Every valid name.
    pub fn any() -> Self {
        Self(None)
    }

    /// `global` and the names `listed` (comma-separated); every valid name when it lists none.
    pub fn parse(listed: &str) -> Result<Self, InvalidCounterNames> {
        let names = listed
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| CounterName::parse(name).map_err(|invalid| InvalidCounterNames(name.to_owned(), invalid)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if names.is_empty() {
            return Ok(Self::any());
        }
        Ok(Self(Some(Arc::new(names))))
    }

    /// The counters `COUNTER_NAMES` lists, or any when it is unset.
    pub fn from_env() -> Result<Self, InvalidCounterNames> {
        Self::parse(&std::env::var(COUNTER_NAMES_ENV).unwrap_or_default())
    }

    /// Whether `counter` exists.
    pub fn admits(&self, counter: &CounterName) -> bool {
        match &self.0 {
            None => true,
            Some(listed) => *counter == CounterName::global() || listed.contains(counter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> CounterName {
        CounterName::parse(raw).unwrap()
    }

    #[test]
    fn a_list_admits_global_and_its_names_only() {
        let known = KnownCounters::parse(" clicks, smoke ,").unwrap();
        for admitted in ["global", "clicks", "smoke"] {
            assert!(known.admits(&name(admitted)), "{admitted}");
        }
        assert!(!known.admits(&name("other")));
    }

    #[test]
    fn no_list_admits_every_valid_name() {
        for listed in ["", " , "] {
            assert_eq!(KnownCounters::parse(listed).unwrap(), KnownCounters::any());
        }
        assert!(KnownCounters::any().admits(&name("anything-at-all")));
    }

    #[test]
    fn an_invalid_name_in_the_list_is_refused() {
        let invalid = KnownCounters::parse("clicks,Not Valid").unwrap_err();
        assert!(invalid.to_string().contains("\"Not Valid\""), "{invalid}");
    }
}

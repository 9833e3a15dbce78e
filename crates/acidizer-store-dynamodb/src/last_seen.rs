//! The state this process last saw of each counter: where the next change's transaction starts, so that a warm
//! process commits an uncontended change in one request. Only a hint — the transaction's condition decides, and
//! no change is refused on a hint.

use crate::items::CounterItem;
use acidizer_core::CounterName;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How many counters are remembered before the memory starts over.
const CAPACITY: usize = 4096;

/// A counter's value and `seq` (both 0 for a counter never changed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Head {
    pub value: u64,
    pub seq: u64,
}

impl Head {
    pub(crate) fn of(item: &CounterItem) -> Self {
        Self { value: item.value, seq: item.seq() }
    }
}

#[derive(Clone, Default)]
pub(crate) struct LastSeen {
    values: Arc<Mutex<HashMap<CounterName, Head>>>,
}

impl LastSeen {
    pub(crate) fn get(&self, counter: &CounterName) -> Option<Head> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner).get(counter).copied()
    }

    pub(crate) fn set(&self, counter: &CounterName, value: Head) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        if values.len() >= CAPACITY && !values.contains_key(counter) {
            values.clear();
        }
        values.insert(counter.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_value_and_stays_bounded() {
        let seen = LastSeen::default();
        let global = CounterName::global();
        assert_eq!(seen.get(&global), None);
        seen.set(&global, Head { value: 5, seq: 5 });
        seen.set(&global, Head { value: 4, seq: 6 });
        assert_eq!(seen.get(&global), Some(Head { value: 4, seq: 6 }));
        for i in 0..CAPACITY + 10 {
            seen.set(&CounterName::parse(&format!("c{i}")).unwrap(), Head::default());
        }
        assert!(seen.values.lock().unwrap().len() <= CAPACITY);
    }
}

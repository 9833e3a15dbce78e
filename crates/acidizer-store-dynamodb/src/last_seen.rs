//! The value this process last saw of each counter: where the next increment's transaction starts, so that a warm
//! process commits an uncontended increment in one request. Only a hint — the transaction's condition decides.

use acidizer_core::CounterName;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How many counters are remembered before the memory starts over.
const CAPACITY: usize = 4096;

#[derive(Clone, Default)]
pub(crate) struct LastSeen {
    values: Arc<Mutex<HashMap<CounterName, u64>>>,
}

impl LastSeen {
    pub(crate) fn get(&self, counter: &CounterName) -> Option<u64> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner).get(counter).copied()
    }

    pub(crate) fn set(&self, counter: &CounterName, value: u64) {
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
        seen.set(&global, 5);
        seen.set(&global, 3);
        assert_eq!(seen.get(&global), Some(3));
        for i in 0..CAPACITY + 10 {
            seen.set(&CounterName::parse(&format!("c{i}")).unwrap(), 1);
        }
        assert!(seen.values.lock().unwrap().len() <= CAPACITY);
    }
}

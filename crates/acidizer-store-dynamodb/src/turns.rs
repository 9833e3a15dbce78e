//! One change of a counter at a time in this process: changes of the same counter from one process take turns
//! instead of racing each other's transactions (each turn starts from the state the previous one committed, so an
//! uncontended turn is one request). Races remain only between processes, where the transaction's condition
//! settles them.

use acidizer_core::CounterName;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Mutex as Turn, OwnedMutexGuard};

#[derive(Clone, Default)]
pub(crate) struct Turns {
    counters: Arc<Mutex<HashMap<CounterName, Arc<Turn<()>>>>>,
}

/// A counter's turn: the next change of it starts when this is dropped.
pub(crate) struct Held {
    counter: CounterName,
    turns: Turns,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Turns {
    /// Waits for `counter`'s turn.
    pub(crate) async fn take(&self, counter: &CounterName) -> Held {
        let turn = {
            let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(counters.entry(counter.clone()).or_default())
        };
        let guard = turn.lock_owned().await;
        Held { counter: counter.clone(), turns: self.clone(), guard: Some(guard) }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Forget a counter no one else waits for, so the map holds only counters being changed.
        let mut counters = self.turns.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if counters.get(&self.counter).is_some_and(|turn| Arc::strong_count(turn) == 1) {
            counters.remove(&self.counter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn changes_of_one_counter_take_turns_and_are_forgotten_after() {
        let turns = Turns::default();
        let (a, b) = (CounterName::parse("a").unwrap(), CounterName::parse("b").unwrap());
        let first = turns.take(&a).await;
        let other = tokio::time::timeout(Duration::from_millis(50), turns.take(&b)).await;
        assert!(other.is_ok(), "another counter does not wait");
        drop(other);
        assert!(tokio::time::timeout(Duration::from_millis(50), turns.take(&a)).await.is_err(), "the same one waits");
        drop(first);
        drop(turns.take(&a).await);
        assert!(turns.counters.lock().unwrap().is_empty(), "nothing is kept once no one waits");
    }
}

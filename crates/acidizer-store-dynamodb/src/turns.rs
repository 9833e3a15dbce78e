//! One change of a counter at a time in this process: changes of the same counter from one process take turns
//! instead of racing each other's transactions (each turn starts from the state the previous one committed, so an
//! uncontended turn is one request). Races remain only between processes, where the transaction's condition
//! settles them.

use acidizer_core::CounterName;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Mutex as Turn, OwnedMutexGuard};

type Counters = Arc<Mutex<HashMap<CounterName, Arc<Turn<()>>>>>;

#[derive(Clone, Default)]
pub(crate) struct Turns {
    counters: Counters,
}

/// A counter's turn: the next change of it starts when this is dropped.
pub(crate) struct Held {
    // Fields drop in this order: the turn is handed on, then the entry is forgotten if no one waits for it.
    _guard: OwnedMutexGuard<()>,
    _entry: Entry,
}

/// A claim on a counter's entry, held while waiting for its turn and during it. The last claim to go forgets the
/// entry — also when a wait is given up (its future dropped) — so the map holds only counters being changed.
struct Entry {
    counter: CounterName,
    counters: Counters,
    turn: Arc<Turn<()>>,
}

impl Turns {
    /// Waits for `counter`'s turn.
    pub(crate) async fn take(&self, counter: &CounterName) -> Held {
        let turn = {
            let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(counters.entry(counter.clone()).or_default())
        };
        let entry = Entry { counter: counter.clone(), counters: Arc::clone(&self.counters), turn };
        let guard = Arc::clone(&entry.turn).lock_owned().await;
        Held { _guard: guard, _entry: entry }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map and this claim hold it: no one else waits for or holds the counter's turn.
        if Arc::strong_count(&self.turn) == 2 && counters.get(&self.counter).is_some_and(|t| Arc::ptr_eq(t, &self.turn))
        {
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

    #[tokio::test]
    async fn a_wait_given_up_leaves_nothing_behind() {
        let turns = Turns::default();
        let a = CounterName::parse("a").unwrap();
        let held = turns.take(&a).await;
        let waiting = tokio::spawn({
            let turns = turns.clone();
            let a = a.clone();
            async move { drop(turns.take(&a).await) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The turn is handed to the waiter, which is cancelled before it ever runs again.
        drop(held);
        waiting.abort();
        let _ = waiting.await;
        assert!(turns.counters.lock().unwrap().is_empty(), "the given-up wait forgot the entry");
        drop(turns.take(&a).await);
    }
}

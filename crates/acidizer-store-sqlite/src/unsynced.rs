//! What readers must not see yet. The writer commits a group without waiting for the WAL's fsync (the syncer,
//! syncer.rs, makes it durable while the writer goes on with the next group), so a reading connection may see a
//! commit that a power cut would still take. For each counter with such a commit this keeps the last `seq` that
//! is durable; readers show the counter as of that `seq`.

use acidizer_core::CounterName;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A counter's last durable `seq`, and its last committed one (above it).
#[derive(Debug, Clone, Copy)]
struct Pending {
    durable: u64,
    committed: u64,
}

/// The counters with commits not yet durable.
#[derive(Debug, Default)]
pub(crate) struct Unsynced {
    counters: Mutex<HashMap<CounterName, Pending>>,
}

impl Unsynced {
    /// Before the writer commits `counter` from `durable` (its `seq` before the group, durable unless an earlier
    /// group's commit is still pending) to `committed`.
    pub(crate) fn committing(&self, counter: &CounterName, durable: u64, committed: u64) {
        let mut counters = self.lock();
        match counters.get_mut(counter) {
            // Set, not raised: after a COMMIT that failed, the next group commits the same `seq` again.
            Some(pending) => pending.committed = committed,
            None => {
                counters.insert(counter.clone(), Pending { durable, committed });
            }
        }
    }

    /// After the WAL's fsync: `counter`'s commits up to `seq` are durable.
    pub(crate) fn synced(&self, counter: &CounterName, seq: u64) {
        let mut counters = self.lock();
        if let Some(pending) = counters.get_mut(counter) {
            pending.durable = pending.durable.max(seq);
            if pending.durable >= pending.committed {
                counters.remove(counter);
            }
        }
    }

    /// The last durable `seq` of `counter` when a later one is committed but not yet durable. Asked by a reader
    /// once it has read the counter's row: a commit that row holds was registered before it was made, and stays
    /// here until it is durable.
    pub(crate) fn durable_seq(&self, counter: &CounterName) -> Option<u64> {
        self.lock().get(counter).map(|pending| pending.durable)
    }

    /// Every change under the lock is one insert, update or removal: a panic elsewhere leaves the map whole.
    fn lock(&self) -> MutexGuard<'_, HashMap<CounterName, Pending>> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::Unsynced;
    use acidizer_core::CounterName;

    #[test]
    fn a_counter_is_shown_at_its_durable_seq_until_its_last_commit_is_synced() {
        let unsynced = Unsynced::default();
        let counter = CounterName::parse("c").unwrap();
        assert_eq!(unsynced.durable_seq(&counter), None);
        unsynced.committing(&counter, 4, 6);
        unsynced.committing(&counter, 6, 9);
        assert_eq!(unsynced.durable_seq(&counter), Some(4));
        unsynced.synced(&counter, 6);
        assert_eq!(unsynced.durable_seq(&counter), Some(6));
        unsynced.synced(&counter, 9);
        assert_eq!(unsynced.durable_seq(&counter), None);
    }
}

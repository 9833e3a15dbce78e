//! One lane a counter in this process: a task that takes the counter's changes as they come and commits every
//! change that waited while a transaction was in flight in the next one (group.rs). Changes of one counter from
//! one process never race each other's transactions; races remain only between processes, where the
//! transaction's condition settles them. A lane ends when its counter has been quiet for a while.

use crate::DynamoStore;
use crate::group::{self, MAX_GROUP, Pending};
use acidizer_core::{ChangeCommand, ChangeOutcome, CounterName, StoreError};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a lane waits for a change before it ends.
const IDLE: Duration = Duration::from_secs(30);

type Senders = Arc<Mutex<HashMap<CounterName, mpsc::UnboundedSender<Pending>>>>;

/// The lanes of this process's counters.
#[derive(Clone, Default)]
pub(crate) struct Lanes {
    senders: Senders,
}

/// Why a change got no answer from its lane.
#[derive(Debug, thiserror::Error)]
#[error("the counter's lane stopped before it answered")]
struct LaneStopped;

impl Lanes {
    /// Sends `command` down its counter's lane (starting one if need be), and waits for its answer.
    pub(crate) async fn change(
        &self,
        store: &DynamoStore,
        command: ChangeCommand,
    ) -> Result<ChangeOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let counter = command.counter.clone();
        let pending = Pending::new(command, reply);
        self.send(store, counter, pending);
        answer.await.map_err(|_| StoreError::unavailable(LaneStopped))?
    }

    /// Sent under the lock a quiet lane ends under: no change is sent to a lane that has ended.
    fn send(&self, store: &DynamoStore, counter: CounterName, pending: Pending) {
        let mut senders = lock(&self.senders);
        let pending = match senders.get(&counter) {
            None => pending,
            Some(sender) => match sender.send(pending) {
                Ok(()) => return,
                Err(mpsc::error::SendError(unsent)) => unsent,
            },
        };
        let sender = spawn(store.clone(), counter.clone(), Arc::clone(&self.senders));
        // A new channel's receiver is alive: this send cannot fail.
        let _ = sender.send(pending);
        senders.insert(counter, sender);
    }
}

fn lock(senders: &Senders) -> MutexGuard<'_, HashMap<CounterName, mpsc::UnboundedSender<Pending>>> {
    // Every change under the lock is one insert or removal: a panic elsewhere leaves the map whole.
    senders.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts `counter`'s lane; its sender.
fn spawn(store: DynamoStore, counter: CounterName, senders: Senders) -> mpsc::UnboundedSender<Pending> {
    let (sender, mut changes) = mpsc::unbounded_channel();
    let own = sender.clone();
    tokio::spawn(async move {
        let mut held: VecDeque<Pending> = VecDeque::new();
        loop {
            if held.is_empty() {
                match tokio::time::timeout(IDLE, changes.recv()).await {
                    Ok(Some(first)) => held.push_back(first),
                    Ok(None) => return,
                    Err(_) => {
                        let mut senders = lock(&senders);
                        if changes.is_empty() {
                            if senders.get(&counter).is_some_and(|sender| sender.same_channel(&own)) {
                                senders.remove(&counter);
                            }
                            return;
                        }
                        continue;
                    }
                }
            }
            while let Ok(next) = changes.try_recv() {
                held.push_back(next);
            }
            let group = take_group(&mut held);
            group::commit(&store, &counter, group).await;
        }
    });
    sender
}

/// The next group, from the changes waiting in the order they came: up to [`MAX_GROUP`], no request id twice (a
/// transaction writes an item once: the repeat waits for the next group, where it is a replay).
fn take_group(waiting: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut group = Vec::new();
    let mut ids = HashSet::new();
    let mut repeats = VecDeque::new();
    while group.len() < MAX_GROUP {
        let Some(pending) = waiting.pop_front() else { break };
        if ids.insert(pending.command.request_id.as_str().to_owned()) {
            group.push(pending);
        } else {
            repeats.push_back(pending);
        }
    }
    repeats.append(waiting);
    *waiting = repeats;
    group
}

#[cfg(test)]
mod tests {
    use super::*;
    use acidizer_core::{CounterMax, Delta, RequestId, Timestamp};
    use std::time::Instant;

    fn pending(id: &str) -> Pending {
        let command = ChangeCommand {
            counter: CounterName::global(),
            delta: Delta::Increment,
            request_id: RequestId::parse(id).unwrap(),
            max: CounterMax::DEFAULT,
            at: Timestamp::now(),
            deadline: Instant::now() + Duration::from_secs(10),
        };
        Pending::new(command, oneshot::channel().0)
    }

    fn ids(changes: &[Pending]) -> Vec<&str> {
        changes.iter().map(|pending| pending.command.request_id.as_str()).collect()
    }

    #[test]
    fn a_group_takes_each_request_id_once_and_at_most_its_size() {
        let mut waiting: VecDeque<Pending> = ["a", "b", "a", "c", "a"].into_iter().map(pending).collect();
        assert_eq!(ids(&take_group(&mut waiting)), ["a", "b", "c"]);
        assert_eq!(ids(waiting.make_contiguous()), ["a", "a"], "the repeats wait, first in line");
        assert_eq!(ids(&take_group(&mut waiting)), ["a"]);
        assert_eq!(ids(&take_group(&mut waiting)), ["a"]);

        let mut many: VecDeque<Pending> = (0..MAX_GROUP + 3).map(|n| pending(&format!("k{n}"))).collect();
        assert_eq!(take_group(&mut many).len(), MAX_GROUP);
        assert_eq!(many.len(), 3);
    }
}

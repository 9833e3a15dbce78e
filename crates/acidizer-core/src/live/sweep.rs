//! Where a broadcast of one counter stands: the state it sends, and how far through the counter's subscribers (in
//! the order of their ids) it has gone. A broadcast sends each subscriber the state once, in one lap of the list.
//! When a newer state arrives mid-lap, the subscribers not yet reached get the newer one instead, and a new lap
//! begins where the old one stood: it goes on to the last subscriber, comes round to the first, and ends where it
//! began. So each subscriber gets each state at most once, always newer than the one before, and the newest last.

use super::BroadcastProgress;
use crate::domain::{ConnectionId, CounterChange};

/// Where a sweep stood before the page it is handing out.
#[derive(Debug, Clone)]
struct PageStart {
    listed: Option<ConnectionId>,
    wrapped: bool,
    /// Whether any of the page has been reached.
    reached: bool,
}

/// One counter's broadcast, lap by lap.
#[derive(Debug, Clone)]
pub struct Sweep {
    state: CounterChange,
    /// The lap began after this subscriber (`None`: at the first).
    lap_start: Option<ConnectionId>,
    /// The last subscriber reached.
    cursor: Option<ConnectionId>,
    /// The last subscriber listed: the next page starts after it (`None`: at the first).
    listed: Option<ConnectionId>,
    wrapped: bool,
    done: bool,
    /// While a page taken is not all reached: where the sweep stood before it.
    page_start: Option<PageStart>,
    /// The last subscriber of the page taken.
    page_last: Option<ConnectionId>,
}

impl Sweep {
    /// A lap of `state` over every subscriber, from the first.
    pub fn new(state: CounterChange) -> Self {
        Self {
            state,
            lap_start: None,
            cursor: None,
            listed: None,
            wrapped: false,
            done: false,
            page_start: None,
            page_last: None,
        }
    }

    /// A lap of `state` that goes on from where an earlier broadcast stopped: the same lap if that one was
    /// sending `state` too, else a new lap from where it stood. `None` if this one has nothing to add: the earlier
    /// one was of a newer state, or of this one and reached everyone.
    pub fn resume(state: CounterChange, progress: &BroadcastProgress) -> Option<Self> {
        if progress.seq > state.seq || (progress.seq == state.seq && progress.finished) {
            return None;
        }
        let mut sweep = Self {
            state: state.clone(),
            lap_start: progress.lap_start.clone(),
            cursor: progress.cursor.clone(),
            listed: progress.cursor.clone(),
            wrapped: progress.wrapped,
            done: false,
            page_start: None,
            page_last: None,
        };
        if state.seq > progress.seq {
            sweep.begin_lap();
        }
        Some(sweep)
    }

    /// The state being sent.
    pub fn state(&self) -> &CounterChange {
        &self.state
    }

    /// Whether every subscriber has been reached with the current state.
    pub fn is_done(&self) -> bool {
        self.done && self.page_start.is_none()
    }

    /// Takes `state` if it is newer than the one being sent: the subscribers after the last one reached get it,
    /// in a new lap that begins there (the rest of a page taken is listed again). Returns whether it was newer.
    pub fn offer(&mut self, state: CounterChange) -> bool {
        if state.seq <= self.state.seq {
            return false;
        }
        self.state = state;
        self.begin_lap();
        true
    }

    fn begin_lap(&mut self) {
        self.lap_start = self.cursor.clone();
        self.listed = self.cursor.clone();
        self.wrapped = false;
        self.done = false;
        self.page_start = None;
    }

    /// Where to list the next page from: after the last subscriber listed (`None`: from the first).
    pub fn listing_from(&self) -> Option<String> {
        self.listed.as_ref().map(ConnectionId::to_string)
    }

    /// The subscribers of a listed page (the page after [`Sweep::listing_from`]; `last` when the listing ends
    /// with it) that this lap still has to reach, in order. A page may hold subscribers at or before where the
    /// listing starts (a store that lists them all at once): those are skipped.
    pub fn take(&mut self, mut page: Vec<ConnectionId>, last: bool) -> Vec<ConnectionId> {
        if self.done {
            return Vec::new();
        }
        page.sort_unstable();
        if let Some(listed) = &self.listed {
            page.retain(|id| id > listed);
        }
        let start = PageStart { listed: self.listed.clone(), wrapped: self.wrapped, reached: false };
        if self.wrapped {
            // Round again from the first: up to where the lap began.
            let start = self.lap_start.as_ref();
            if let Some(end) = page.iter().position(|id| start.is_some_and(|start| id > start)) {
                page.truncate(end);
                self.done = true;
            }
        }
        if let Some(listed) = page.last() {
            self.listed = Some(listed.clone());
        }
        if last && !self.done {
            if self.lap_start.is_some() && !self.wrapped {
                self.wrapped = true;
                self.listed = None;
            } else {
                self.done = true;
            }
        }
        self.page_last = page.last().cloned();
        self.page_start = self.page_last.is_some().then_some(start);
        page
    }

    /// `connection`, of a page taken, has been handed the state.
    pub fn reached(&mut self, connection: &ConnectionId) {
        self.cursor = Some(connection.clone());
        if self.page_last.as_ref() == Some(connection) {
            self.page_start = None;
        } else if let Some(start) = &mut self.page_start {
            start.reached = true;
        }
    }

    /// What to keep so that a later broadcast goes on from here, with `pending`: the subscribers reached this lap
    /// that did not get the state; `finished` when every subscriber has it. A page left part-way is listed again
    /// from the last subscriber reached.
    pub fn progress(&self, pending: Vec<ConnectionId>, ahead: Vec<ConnectionId>, finished: bool) -> BroadcastProgress {
        let (cursor, wrapped) = match &self.page_start {
            None => (self.listed.clone(), self.wrapped),
            Some(start) => {
                let cursor = if start.reached { self.cursor.clone() } else { start.listed.clone() };
                (cursor, start.wrapped)
            }
        };
        BroadcastProgress {
            seq: self.state.seq,
            finished,
            lap_start: self.lap_start.clone(),
            cursor,
            wrapped,
            pending,
            ahead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CounterName, Timestamp};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn state(seq: u64) -> CounterChange {
        CounterChange { counter: CounterName::global(), value: seq, seq, updated_at: Timestamp::from_unix_millis(0) }
    }

    fn id(n: usize) -> ConnectionId {
        ConnectionId::parse(&format!("c{n:05}")).unwrap()
    }

    /// Runs `sweep` over `subscribers` in pages of `page_size`, offering `newer[k]` once the k-th subscriber has
    /// been reached (the rest of its page is then listed again, as a broadcast does); returns what each subscriber
    /// got, in order, and the last state.
    fn run(
        sweep: Sweep,
        subscribers: usize,
        page_size: usize,
        newer: &BTreeMap<usize, u64>,
    ) -> (BTreeMap<ConnectionId, Vec<u64>>, u64) {
        run_stopping(sweep, subscribers, page_size, newer, &std::collections::BTreeSet::new())
    }

    /// As [`run`], and after the k-th subscriber reached for each k of `stops`, the broadcast stops there and a
    /// new one goes on from its progress (as the next invocation does).
    fn run_stopping(
        mut sweep: Sweep,
        subscribers: usize,
        page_size: usize,
        newer: &BTreeMap<usize, u64>,
        stops: &std::collections::BTreeSet<usize>,
    ) -> (BTreeMap<ConnectionId, Vec<u64>>, u64) {
        let all: Vec<ConnectionId> = (0..subscribers).map(id).collect();
        let mut got: BTreeMap<ConnectionId, Vec<u64>> = BTreeMap::new();
        let mut reached = 0;
        let mut pages = 0;
        while !sweep.is_done() {
            pages += 1;
            assert!(pages < 10_000, "a sweep ends");
            let from = sweep.listing_from();
            let after: Vec<ConnectionId> =
                all.iter().filter(|c| from.as_deref().is_none_or(|f| c.as_str() > f)).cloned().collect();
            let last = after.len() <= page_size;
            let page: Vec<ConnectionId> = after.into_iter().take(page_size).collect();
            for connection in sweep.take(page, last) {
                got.entry(connection.clone()).or_default().push(sweep.state().seq);
                sweep.reached(&connection);
                reached += 1;
                if let Some(seq) = newer.get(&reached)
                    && sweep.offer(state(*seq))
                {
                    break;
                }
                if stops.contains(&reached) {
                    let progress = sweep.progress(Vec::new(), Vec::new(), false);
                    sweep = Sweep::resume(sweep.state().clone(), &progress).expect("the same state goes on");
                    break;
                }
            }
        }
        (got, sweep.state().seq)
    }

    #[test]
    fn one_state_reaches_every_subscriber_once() {
        let (got, _) = run(Sweep::new(state(7)), 10, 3, &BTreeMap::new());
        assert_eq!(got.len(), 10);
        assert!(got.values().all(|seqs| seqs == &[7]));
    }

    #[test]
    fn a_newer_state_mid_lap_reaches_the_rest_first_then_comes_round() {
        // 10 subscribers in pages of 3; state 9 arrives once the fourth (mid-page) has been reached.
        let (got, _) = run(Sweep::new(state(7)), 10, 3, &BTreeMap::from([(4, 9)]));
        for n in 0..4 {
            assert_eq!(got[&id(n)], [7, 9], "reached before the newer state: it follows");
        }
        for n in 4..10 {
            assert_eq!(got[&id(n)], [9], "not reached yet: the newer state instead");
        }
    }

    #[test]
    fn a_resumed_broadcast_goes_on_where_the_last_one_stopped() {
        let mut first = Sweep::new(state(5));
        let page: Vec<ConnectionId> = (0..4).map(id).collect();
        assert_eq!(first.take(page, false), (0..4).map(id).collect::<Vec<_>>());
        first.reached(&id(3));
        let progress = first.progress(vec![id(1)], Vec::new(), false);
        assert_eq!(progress.cursor, Some(id(3)));

        // The same state: the same lap, from the fifth on.
        let same = Sweep::resume(state(5), &progress).unwrap();
        let (got, _) = run(same, 10, 3, &BTreeMap::new());
        assert_eq!(got.keys().cloned().collect::<Vec<_>>(), (4..10).map(id).collect::<Vec<_>>());

        // A newer state: a new lap from the fifth, round to the fourth.
        let newer = Sweep::resume(state(6), &progress).unwrap();
        let (got, _) = run(newer, 10, 3, &BTreeMap::new());
        assert_eq!(got.len(), 10);
        assert!(got.values().all(|seqs| seqs == &[6]));

        // An older one has nothing to add, nor the same one once everyone has it.
        assert!(Sweep::resume(state(4), &progress).is_none());
        assert!(Sweep::resume(state(5), &BroadcastProgress { finished: true, ..progress.clone() }).is_none());
        assert!(Sweep::resume(state(6), &BroadcastProgress { finished: true, ..progress }).is_some());
    }

    #[test]
    fn a_broadcast_stopped_mid_page_goes_on_after_the_last_subscriber_reached() {
        // Pages of 4 of 6 subscribers; the second page (the last, so the listing has ended) is left after one.
        let mut first = Sweep::new(state(5));
        for connection in first.take((0..4).map(id).collect(), false) {
            first.reached(&connection);
        }
        let rest = first.take((4..6).map(id).collect(), true);
        first.reached(&rest[0]);
        assert!(!first.is_done(), "not done while a page is left part-way");
        let progress = first.progress(Vec::new(), Vec::new(), false);
        assert_eq!((progress.cursor.clone(), progress.wrapped), (Some(id(4)), false));
        let (got, _) = run(Sweep::resume(state(5), &progress).unwrap(), 6, 4, &BTreeMap::new());
        assert_eq!(got.keys().cloned().collect::<Vec<_>>(), [id(5)], "the one left, only");

        // A lap that had wrapped: the page after the wrap left before any was reached.
        let mut wrapped = Sweep::new(state(5));
        for connection in wrapped.take((0..3).map(id).collect(), false) {
            wrapped.reached(&connection);
        }
        wrapped.offer(state(6));
        for connection in wrapped.take((3..6).map(id).collect(), true) {
            wrapped.reached(&connection);
        }
        let _untouched = wrapped.take((0..6).map(id).collect(), true);
        let progress = wrapped.progress(Vec::new(), Vec::new(), false);
        assert_eq!((progress.cursor.clone(), progress.wrapped), (None, true));
        let (got, _) = run(Sweep::resume(state(6), &progress).unwrap(), 6, 4, &BTreeMap::new());
        assert_eq!(got.keys().cloned().collect::<Vec<_>>(), (0..3).map(id).collect::<Vec<_>>());
    }

    #[test]
    fn a_store_that_lists_everyone_at_once_is_swept_in_id_order() {
        let mut sweep = Sweep::new(state(1));
        let everyone: Vec<ConnectionId> = [3, 1, 2, 0].map(id).to_vec();
        let taken = sweep.take(everyone.clone(), true);
        assert_eq!(taken, (0..4).map(id).collect::<Vec<_>>());
        for connection in &taken {
            sweep.reached(connection);
        }
        assert!(sweep.is_done());
        assert!(sweep.take(everyone, true).is_empty());
    }

    proptest! {
        /// Whatever the pages, however many newer states arrive when, and wherever a broadcast stops and the next
        /// goes on from its progress: each subscriber gets strictly increasing states, and every one ends on the
        /// newest.
        #[test]
        fn every_subscriber_ends_on_the_newest_state_and_never_goes_back(
            subscribers in 1usize..60,
            page_size in 1usize..20,
            arrivals in proptest::collection::btree_map(1usize..200, 1u64..5, 0..8),
            stops in proptest::collection::btree_set(1usize..200, 0..6),
        ) {
            // Increasing seqs, in the order they arrive.
            let mut seq = 10;
            let newer: BTreeMap<usize, u64> = arrivals.into_iter().map(|(at, step)| { seq += step; (at, seq) }).collect();
            let (got, newest) = run_stopping(Sweep::new(state(10)), subscribers, page_size, &newer, &stops);
            prop_assert_eq!(got.len(), subscribers);
            for seqs in got.values() {
                prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{:?}", seqs);
                prop_assert_eq!(*seqs.last().unwrap(), newest);
            }
        }
    }
}

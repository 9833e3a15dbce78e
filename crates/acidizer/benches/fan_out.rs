//! One change broadcast to the subscribers of its counter in `acidizer serve`'s hub: the broadcast use case lists
//! them and hands each session the new value. The hub serialises the message once and shares the bytes with every
//! session; beside it, what serialising the same message once per subscriber alone costs (the hub's former way).

use acidizer::{Hub, LocalBroadcaster};
use acidizer_core::live::Outbound;
use acidizer_core::{CounterChange, CounterName, Timestamp};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The allocator `acidizer serve` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn change(counter: &CounterName, seq: u64) -> CounterChange {
    CounterChange { counter: counter.clone(), value: seq, seq, updated_at: Timestamp::now() }
}

fn fan_out(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let counter = CounterName::global();
    let mut group = c.benchmark_group("one_change_to_every_subscriber");
    group.sample_size(20);
    for subscribers in [1_000_u64, 10_000] {
        let hub = Arc::new(Hub::default());
        // The sessions' ends: each holds the latest message for its session (which would send it).
        let sessions: Vec<_> = (0..subscribers).map(|_| hub.register(&counter).1).collect();
        let broadcaster = LocalBroadcaster::new(Arc::clone(&hub), hub);
        let seq = AtomicU64::new(0);
        group.throughput(Throughput::Elements(subscribers));
        group.bench_with_input(BenchmarkId::new("hub broadcast", subscribers), &subscribers, |b, &n| {
            b.iter(|| {
                let next = change(&counter, seq.fetch_add(1, Ordering::Relaxed) + 1);
                let report = runtime.block_on(broadcaster.broadcast([next]));
                assert_eq!(report.reached as u64, n, "every subscriber reached");
            });
        });
        group.bench_with_input(BenchmarkId::new("serialising per subscriber", subscribers), &subscribers, |b, &n| {
            let message = Outbound::change(&change(&counter, 1));
            b.iter(|| (0..n).map(|_| message.to_json().len()).sum::<usize>());
        });
        drop(sessions);
    }
    group.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);

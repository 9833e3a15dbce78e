//! Increments per second on the embedded store as clients are added: with group commit, concurrent increments
//! share fsyncs, so throughput grows with the number of clients while every increment stays durable. Each client
//! sends its own idempotency keys (the writer looks each up), or none (the server makes ids nothing can have used).

use acidizer_core::{ChangeCommand, CounterMax, CounterName, CounterStore, Delta, RequestId, Timestamp};
use acidizer_store_sqlite::SqliteStore;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const INCREMENTS_PER_ITERATION: u64 = 256;

static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

async fn burst(store: Arc<SqliteStore>, clients: u64, keyed: bool) {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for _ in 0..INCREMENTS_PER_ITERATION / clients {
                    let request_id = if keyed {
                        let key = format!("bench-{}", NEXT_KEY.fetch_add(1, Ordering::Relaxed));
                        RequestId::parse(&key).expect("a valid key")
                    } else {
                        RequestId::generate()
                    };
                    let command = ChangeCommand {
                        counter: CounterName::global(),
                        delta: Delta::Increment,
                        request_id,
                        max: CounterMax::DEFAULT,
                        at: Timestamp::now(),
                        deadline: Instant::now() + Duration::from_secs(30),
                    };
                    store.change(command).await.expect("the increment commits");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a client task");
    }
}

fn increments(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("the store opens"));
    let mut group = c.benchmark_group("sqlite_increments");
    group.sample_size(10);
    group.throughput(Throughput::Elements(INCREMENTS_PER_ITERATION));
    for keyed in [true, false] {
        let keys = if keyed { "client keys" } else { "server ids" };
        for clients in [1, 8, 64] {
            group.bench_with_input(BenchmarkId::new(keys, clients), &clients, |b, &clients| {
                b.to_async(&runtime).iter(|| burst(Arc::clone(&store), clients, keyed));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, increments);
criterion_main!(benches);

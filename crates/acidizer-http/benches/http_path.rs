//! What one request costs the server on its way through the router — request id, the request's context and the
//! access log, CORS, the handler, the use case and the answer's JSON — apart from the store: the store here is a map
//! in memory. The same increment is measured with no subscriber (logs off), with the access log written (at INFO,
//! into a sink: the request's span and a line), and with warnings only (no line, and no span: it is made only for
//! a line), which is what the logs cost a request when the access log is off.

use acidizer_core::AllowedOrigins;
use acidizer_core::{
    AuditRecord, Change, ChangeCommand, ChangeOutcome, CounterName, CounterSnapshot, CounterStore, Counters,
    HistoryQuery, StoreError,
};
use acidizer_http::router;
use axum::body::Body;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use http::Request;
use std::collections::HashMap;
use std::sync::Mutex;
use tower::ServiceExt;

/// The allocator `acidizer serve` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Counters in a map: the least a store can do, so the figures are the router's.
#[derive(Default)]
struct MemoryStore(Mutex<HashMap<CounterName, (u64, u64)>>);

impl CounterStore for MemoryStore {
    async fn change(&self, command: ChangeCommand) -> Result<ChangeOutcome, StoreError> {
        let mut counters = self.0.lock().map_err(|_| StoreError::unavailable(std::io::Error::other("poisoned")))?;
        let (value, seq) = counters.entry(command.counter.clone()).or_default();
        *value = match command.delta.apply(*value, command.max) {
            Ok(next) => next,
            Err(bound) => return Ok(ChangeOutcome::Refused(bound)),
        };
        *seq += 1;
        let change = Change {
            counter: command.counter,
            value: *value,
            seq: *seq,
            delta: command.delta,
            request_id: command.request_id,
            updated_at: command.at,
        };
        Ok(ChangeOutcome::Committed { value: *value, seq: *seq, body: change.response_body()? })
    }

    async fn read(&self, counter: &CounterName) -> Result<CounterSnapshot, StoreError> {
        Ok(CounterSnapshot::zero(counter.clone()))
    }

    async fn history(&self, _: &CounterName, _: HistoryQuery) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn increment() -> Request<Body> {
    Request::post("/counters/bench/increment").body(Body::empty()).unwrap_or_default()
}

fn http_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let origins = AllowedOrigins::parse("*").expect("origins");
    let logs = [("logs off", None), ("access log at INFO", Some("info")), ("warnings only", Some("warn"))];
    let mut group = c.benchmark_group("increment_through_the_router");
    group.throughput(Throughput::Elements(1));
    for (name, level) in logs {
        let dispatch = match level {
            Some(level) => tracing::Dispatch::new(
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new(level))
                    .with_writer(std::io::sink)
                    .with_ansi(false)
                    .finish(),
            ),
            None => tracing::Dispatch::none(),
        };
        // The router is built under the logs it runs with: they decide whether it holds the access log.
        let app =
            tracing::dispatcher::with_default(&dispatch, || router(Counters::new(MemoryStore::default()), &origins));
        group.bench_function(name, |b| {
            b.iter_batched(
                increment,
                |request| {
                    tracing::dispatcher::with_default(&dispatch, || {
                        runtime.block_on(async {
                            let response = app.clone().oneshot(request).await.expect("an answer");
                            assert!(response.status().is_success());
                            axum::body::to_bytes(response.into_body(), 1024).await.expect("a body")
                        })
                    })
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, http_path);
criterion_main!(benches);

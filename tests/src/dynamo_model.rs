//! What DynamoDB Local lacks of DynamoDB under a hot item, modelled in the proxy in front of it
//! (fault_proxy.rs): the latency of a call, a transaction's hold on its items, and a partition's write budget.
//!
//! The model and its numbers ([`DynamoModel::AWS`], from AWS's documentation of DynamoDB):
//! - **Latency.** Every call waits before it reaches DynamoDB Local: 10 ms a `TransactWriteItems` (a transaction
//!   is a two-phase commit across its items' partitions), 3 ms any other call (a single-item read or write is a
//!   few milliseconds within a Region).
//! - **Conflicts.** A transaction holds its items from the moment it arrives until it is answered. Another
//!   transaction that touches one of them meanwhile is cancelled (`TransactionCanceledException`, reason
//!   `TransactionConflict` for that item), and a single-item write of one of them fails
//!   (`TransactionConflictException`): DynamoDB does not make either wait.
//! - **A partition's budget.** Every partition key is a partition of its own (the most adaptive capacity can do
//!   for a hot key: isolate it), and takes at most 1 000 write units a second: a write costs 1 unit per KB of its
//!   item (rounded up), 2 in a transaction. A write past the budget is throttled: a transaction is cancelled with
//!   `ThrottlingError` for the items past it, a single-item write answered `ThrottlingException`. The budget is a
//!   bucket of one second's units, refilled continuously; units are spent when a write is let through.
//!
//! Item keys are the attributes `pk` and `sk` (the counter table) or `connectionId` (the connections table); the
//! partition is `pk`, or `connectionId`. Reads are not budgeted (3 000 read units a second a partition is not what
//! limits a counter). Sizes follow DynamoDB's rules closely enough to count units: names and values in UTF-8
//! bytes, a number about one byte for two digits, lists and maps 3 bytes and 1 a member.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// DynamoDB Local behind the model ([`DynamoModel::AWS`]), started once per test binary: the endpoint the
/// contract and exactness suites run the DynamoDB store on.
pub fn shared_endpoint() -> &'static str {
    static ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let upstream = crate::dynamodb_local::shared().endpoint.clone();
        let (sender, receiver) = std::sync::mpsc::channel();
        // The proxy outlives every test's runtime: it has a thread and a runtime of its own, which never end.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the model's proxy");
            runtime.block_on(async move {
                let proxy = crate::fault_proxy::FaultProxy::start_modelled(&upstream, DynamoModel::AWS).await;
                let _ = sender.send(proxy.endpoint.clone());
                std::future::pending::<()>().await;
                drop(proxy);
            });
        });
        receiver.recv().expect("the model's proxy starts")
    })
}

/// The attributes that name an item, and the first of them present names its partition.
const KEY_ATTRIBUTES: [&str; 3] = ["pk", "sk", "connectionId"];
const PARTITION_ATTRIBUTES: [&str; 2] = ["pk", "connectionId"];

/// What DynamoDB does to calls that DynamoDB Local does not.
#[derive(Debug, Clone, Copy)]
pub struct DynamoModel {
    pub transaction_latency: Duration,
    pub call_latency: Duration,
    pub partition_write_units_per_second: f64,
}

impl DynamoModel {
    /// DynamoDB's figures (see the module's documentation).
    pub const AWS: DynamoModel = DynamoModel {
        transaction_latency: Duration::from_millis(10),
        call_latency: Duration::from_millis(3),
        partition_write_units_per_second: 1000.0,
    };
}

/// An item: its table and key attributes (as DynamoDB JSON text).
type ItemKey = (String, String);

/// A partition's write budget.
struct Bucket {
    units: f64,
    at: Instant,
}

/// What the model has counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelCounts {
    /// Write units spent by the writes let through.
    pub write_units: u64,
    /// Transactions cancelled, and single writes failed, for a transaction holding an item.
    pub conflicts: u64,
    /// Writes throttled past a partition's budget.
    pub throttled: u64,
}

/// The model's state, shared by the proxy's requests.
pub(crate) struct ModelState {
    model: DynamoModel,
    in_flight: Mutex<HashMap<ItemKey, usize>>,
    partitions: Mutex<HashMap<(String, String), Bucket>>,
    write_units: AtomicU64,
    conflicts: AtomicU64,
    throttled: AtomicU64,
}

/// A write the model lets through: the transaction's items, held until this is dropped.
pub(crate) struct Held {
    state: Arc<ModelState>,
    items: Vec<ItemKey>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut in_flight = self.state.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        for item in &self.items {
            if let Some(count) = in_flight.get_mut(item) {
                *count -= 1;
                if *count == 0 {
                    in_flight.remove(item);
                }
            }
        }
    }
}

/// One write of a call: its item's key, partition and write units.
struct Write {
    key: ItemKey,
    partition: (String, String),
    units: f64,
}

impl ModelState {
    pub(crate) fn new(model: DynamoModel) -> Arc<Self> {
        Arc::new(Self {
            model,
            in_flight: Mutex::default(),
            partitions: Mutex::default(),
            write_units: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        })
    }

    pub(crate) fn counts(&self) -> ModelCounts {
        ModelCounts {
            write_units: self.write_units.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }

    /// How long `operation` takes.
    pub(crate) fn latency(&self, operation: &str) -> Duration {
        if operation == "TransactWriteItems" { self.model.transaction_latency } else { self.model.call_latency }
    }

    /// Lets `operation` (its JSON `body`) through, holding its items, or answers it as DynamoDB would: cancelled
    /// or failed for a conflict, or throttled.
    pub(crate) fn admit(self: &Arc<Self>, operation: &str, body: &[u8]) -> Result<Held, Box<Response>> {
        self.admit_at(operation, body, Instant::now())
    }

    /// [`ModelState::admit`] at the instant `now`.
    fn admit_at(self: &Arc<Self>, operation: &str, body: &[u8], now: Instant) -> Result<Held, Box<Response>> {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let (writes, transaction) = match operation {
            "TransactWriteItems" => (transaction_writes(&request), true),
            "PutItem" | "UpdateItem" | "DeleteItem" => (single_write(&request).into_iter().collect(), false),
            _ => (Vec::new(), false),
        };
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let conflicting: Vec<bool> = writes.iter().map(|write| in_flight.contains_key(&write.key)).collect();
        if conflicting.iter().any(|conflict| *conflict) {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
            return Err(Box::new(if transaction {
                cancelled(&conflicting, "TransactionConflict", "Transaction is ongoing for the item")
            } else {
                error(
                    "TransactionConflictException",
                    "Operation was rejected because there is an ongoing transaction for the item",
                )
            }));
        }
        let over = self.spend(&writes, if transaction { 2.0 } else { 1.0 }, now);
        if over.iter().any(|over| *over) {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(Box::new(if transaction {
                cancelled(
                    &over,
                    "ThrottlingError",
                    "Throughput exceeds the current capacity for one or more partitions",
                )
            } else {
                error("ThrottlingException", "Throughput exceeds the current capacity for one or more partitions")
            }));
        }
        let items: Vec<ItemKey> = writes.into_iter().map(|write| write.key).collect();
        for item in &items {
            *in_flight.entry(item.clone()).or_default() += 1;
        }
        Ok(Held { state: Arc::clone(self), items })
    }

    /// Spends the writes' units (each times `factor`) from their partitions' budgets, all or none; tells which
    /// writes found their partition's budget spent.
    fn spend(&self, writes: &[Write], factor: f64, now: Instant) -> Vec<bool> {
        let per_second = self.model.partition_write_units_per_second;
        let mut partitions = self.partitions.lock().unwrap_or_else(PoisonError::into_inner);
        let mut wanted: HashMap<&(String, String), f64> = HashMap::new();
        for write in writes {
            *wanted.entry(&write.partition).or_default() += write.units * factor;
        }
        let mut short = Vec::new();
        for (partition, units) in &wanted {
            let bucket =
                partitions.entry((*partition).clone()).or_insert_with(|| Bucket { units: per_second, at: now });
            bucket.units = (bucket.units + now.duration_since(bucket.at).as_secs_f64() * per_second).min(per_second);
            bucket.at = now;
            if bucket.units < *units {
                short.push((*partition).clone());
            }
        }
        if !short.is_empty() {
            return writes.iter().map(|write| short.contains(&write.partition)).collect();
        }
        for (partition, units) in wanted {
            if let Some(bucket) = partitions.get_mut(partition) {
                bucket.units -= units;
            }
            self.write_units.fetch_add(units.ceil() as u64, Ordering::Relaxed);
        }
        vec![false; writes.len()]
    }
}

/// The writes of a `TransactWriteItems`, in order (a condition check holds its item, and costs a unit).
fn transaction_writes(request: &Value) -> Vec<Write> {
    let items = request["TransactItems"].as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            let (kind, action) = item.as_object()?.iter().next()?;
            let table = action["TableName"].as_str()?;
            let attributes = if kind == "Put" { &action["Item"] } else { &action["Key"] };
            write(table, attributes)
        })
        .collect()
}

fn single_write(request: &Value) -> Option<Write> {
    let table = request["TableName"].as_str()?;
    let attributes = if request.get("Item").is_some() { &request["Item"] } else { &request["Key"] };
    write(table, attributes)
}

fn write(table: &str, attributes: &Value) -> Option<Write> {
    let attributes = attributes.as_object()?;
    let key: Vec<String> =
        KEY_ATTRIBUTES.iter().filter_map(|name| attributes.get(*name).map(|value| format!("{name}={value}"))).collect();
    let partition = PARTITION_ATTRIBUTES.iter().find_map(|name| attributes.get(*name))?.to_string();
    let bytes: usize = attributes.iter().map(|(name, value)| name.len() + size(value)).sum();
    Some(Write {
        key: (table.to_owned(), key.join(",")),
        partition: (table.to_owned(), partition),
        units: (bytes.max(1) as f64 / 1024.0).ceil(),
    })
}

/// An attribute value's size in bytes, by DynamoDB's rules.
fn size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|object| object.iter().next()) else { return 0 };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(0, |n| n.trim_start_matches('-').len().div_ceil(2) + 1),
        "B" => inner.as_str().map_or(0, |b| b.len() * 3 / 4),
        "BOOL" | "NULL" => 1,
        "L" => 3 + inner.as_array().map_or(0, |list| list.iter().map(|member| 1 + size(member)).sum()),
        "M" => {
            3 + inner.as_object().map_or(0, |map| map.iter().map(|(name, member)| 1 + name.len() + size(member)).sum())
        }
        "SS" | "NS" | "BS" => {
            inner.as_array().map_or(0, |set| set.iter().map(|member| size(&json!({"S": member}))).sum())
        }
        _ => 0,
    }
}

/// A transaction cancelled with `code` for the items marked, `None` for the others.
fn cancelled(marked: &[bool], code: &str, message: &str) -> Response {
    let reasons: Vec<Value> = marked
        .iter()
        .map(|marked| if *marked { json!({"Code": code, "Message": message}) } else { json!({"Code": "None"}) })
        .collect();
    let codes: Vec<&str> = marked.iter().map(|marked| if *marked { code } else { "None" }).collect();
    let body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
        "CancellationReasons": reasons,
    });
    (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.0")], body.to_string()).into_response()
}

fn error(kind: &str, message: &str) -> Response {
    let body = json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message});
    (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.0")], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(pk: &str, sk: u64, bytes: usize) -> Value {
        json!({"Put": {"TableName": "t", "Item": {"pk": {"S": pk}, "sk": {"N": sk.to_string()}, "blob": {"S": "x".repeat(bytes)}}}})
    }

    fn transaction(items: &[Value]) -> Vec<u8> {
        serde_json::to_vec(&json!({"TransactItems": items})).unwrap()
    }

    #[test]
    fn a_transaction_holds_its_items_until_it_is_answered() {
        let state = ModelState::new(DynamoModel::AWS);
        let held = state.admit("TransactWriteItems", &transaction(&[put("a", 0, 10), put("b", 0, 10)])).unwrap();
        let conflict = state.admit("TransactWriteItems", &transaction(&[put("c", 0, 10), put("b", 0, 10)]));
        assert_eq!(conflict.err().map(|response| response.status()), Some(StatusCode::BAD_REQUEST));
        let single =
            serde_json::to_vec(&json!({"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"N": "0"}}})).unwrap();
        assert!(state.admit("DeleteItem", &single).is_err(), "a single write of a held item fails too");
        assert!(state.admit("TransactWriteItems", &transaction(&[put("b", 1, 10)])).is_ok(), "another item is free");
        drop(held);
        assert!(state.admit("TransactWriteItems", &transaction(&[put("b", 0, 10)])).is_ok(), "released");
        assert_eq!(state.counts().conflicts, 2);
    }

    #[test]
    fn a_partition_takes_a_thousand_write_units_a_second() {
        let state = ModelState::new(DynamoModel::AWS);
        let now = Instant::now();
        let admit = |pk: &str, sk: u64, at: Instant| {
            state.admit_at("TransactWriteItems", &transaction(&[put(pk, sk, 2000)]), at).map(drop).is_ok()
        };
        // 2 KB items, 2 units a KB in a transaction: 4 units each, 250 of them a second.
        let admitted = (0..300).take_while(|sk| admit("hot", *sk, now)).count();
        assert_eq!(admitted, 250);
        assert_eq!(state.counts().write_units, 1000);
        assert!(admit("cold", 0, now), "another partition has its own budget");
        assert!(!admit("hot", 999, now + Duration::from_millis(3)), "3 ms refill 3 units: not 4");
        assert!(admit("hot", 999, now + Duration::from_millis(4)), "4 ms refill 4");
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        assert_eq!(size(&json!({"S": "abc"})), 3);
        assert_eq!(size(&json!({"N": "12345"})), 4);
        assert_eq!(size(&json!({"L": [{"S": "ab"}, {"S": "c"}]})), 3 + 3 + 2);
    }
}

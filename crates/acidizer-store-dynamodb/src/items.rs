//! The items of the counter table. One table holds four kinds, told apart by key and by `kind`:
//!
//! | kind      | pk                          | sk         | holds                                          |
//! |-----------|-----------------------------|------------|------------------------------------------------|
//! | `counter` | `counter#{name}`            | 0          | the value and `seq`, when and by which request |
//! | `audits`  | `audits#{name}#{seq / 1000}` | first seq | the audit records of one group commit: each change's `delta` and request, the value before them |
//! | `request` | `request#{id}`              | 0          | the answer given (and `delta`), until `expiresAt` |
//! | `audit`   | `counter#{name}`            | seq        | one change's audit record, as written before group commit |
//!
//! A group commit writes the counter once, one page of audit records (two where its `seq`s cross a thousand) and
//! each change's answer, conditioned on the counter's exact state before the group: a counter's history is
//! gap-free 1..N by construction. Pages live in partitions of their own, a new one every thousand changes, so
//! that a hot counter's partition takes one small write a group. Items written before decrements existed have no
//! `seq`, `delta` or audit `value`: then every change was +1, so `seq` is the value and the audit record's value is
//! its sort key.

use acidizer_core::{AuditRecord, CounterName, CounterSnapshot, Delta, RequestId, StoreError, Timestamp};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The sort key of a counter's own item and of a remembered answer.
pub(crate) const HEAD: u64 = 0;

pub(crate) fn counter_partition(counter: &CounterName) -> String {
    format!("counter#{counter}")
}

/// How many `seq`s the audit pages of one partition cover.
pub(crate) const AUDIT_BUCKET: u64 = 1000;

/// The partition of the audit page that holds `seq`.
pub(crate) fn audits_partition(counter: &CounterName, seq: u64) -> String {
    format!("audits#{counter}#{}", seq / AUDIT_BUCKET)
}

pub(crate) fn request_partition(request_id: &RequestId) -> String {
    format!("request#{request_id}")
}

pub(crate) fn key(partition: String, sort: u64) -> Item {
    HashMap::from([
        (crate::layout::PARTITION_KEY.to_owned(), AttributeValue::S(partition)),
        (crate::layout::SORT_KEY.to_owned(), AttributeValue::N(sort.to_string())),
    ])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Counter,
    Audit,
    Audits,
    Request,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CounterItem {
    pub pk: String,
    pub sk: u64,
    pub kind: Kind,
    pub counter: CounterName,
    pub value: u64,
    /// Absent on items written before decrements existed: then it equals `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub updated_at: i64,
    pub request_id: RequestId,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditItem {
    pub pk: String,
    /// The change's `seq`.
    pub sk: u64,
    pub kind: Kind,
    pub counter: CounterName,
    pub request_id: RequestId,
    pub at: i64,
    /// +1 or -1; absent on items written before decrements existed (+1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
    /// The value after the change; absent on items written before decrements existed (the `seq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
}

/// The audit records of one group commit's changes within one partition's thousand `seq`s.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditPageItem {
    pub pk: String,
    /// The first change's `seq`; the others follow it.
    pub sk: u64,
    pub kind: Kind,
    pub counter: CounterName,
    pub at: i64,
    /// The counter's value before the first change.
    pub value_before: u64,
    /// Each change's delta, in order: `+` or `-`.
    pub deltas: String,
    /// Each change's request id, in order.
    pub request_ids: Vec<RequestId>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestItem {
    pub pk: String,
    pub sk: u64,
    pub kind: Kind,
    pub counter: CounterName,
    pub response: String,
    /// Seconds since the epoch: the table's TTL attribute.
    pub expires_at: i64,
    /// The `ClientRequestToken` of the attempt that wrote it (absent on answers remembered before tokens were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
    /// The change's +1 or -1; absent on answers remembered before decrements existed (+1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
}

/// An item that cannot be written or read.
#[derive(Debug, thiserror::Error)]
enum ItemError {
    #[error("cannot encode an item")]
    Encode(#[source] serde_dynamo::Error),
    #[error("unreadable item")]
    Decode(#[source] serde_dynamo::Error),
    #[error("unreadable item")]
    Delta(#[source] acidizer_core::domain::InvalidDelta),
    #[error("an audit page of {0} whose deltas and request ids differ in number, or go below zero")]
    Page(CounterName),
}

pub(crate) fn to_item(value: &impl Serialize) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|error| StoreError::corrupt(ItemError::Encode(error)))
}

fn from_item<T: for<'de> Deserialize<'de>>(item: &Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item.clone()).map_err(|error| StoreError::corrupt(ItemError::Decode(error)))
}

impl CounterItem {
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        from_item(item)
    }

    /// The counter's `seq` (its value, on items written before decrements existed).
    pub(crate) fn seq(&self) -> u64 {
        self.seq.unwrap_or(self.value)
    }

    pub(crate) fn into_snapshot(self) -> CounterSnapshot {
        CounterSnapshot {
            seq: self.seq(),
            counter: self.counter,
            value: self.value,
            updated_at: Some(Timestamp::from_unix_millis(self.updated_at)),
        }
    }
}

/// The change an item's optional `delta` names (+1 when absent).
pub(crate) fn delta_of(delta: Option<i64>) -> Result<Delta, StoreError> {
    Delta::from_i64(delta.unwrap_or(1)).map_err(|error| StoreError::corrupt(ItemError::Delta(error)))
}

impl AuditItem {
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        from_item(item)
    }

    pub(crate) fn into_record(self) -> Result<AuditRecord, StoreError> {
        Ok(AuditRecord {
            seq: self.sk,
            delta: delta_of(self.delta)?,
            value: self.value.unwrap_or(self.sk),
            request_id: self.request_id,
            at: Timestamp::from_unix_millis(self.at),
        })
    }
}

impl RequestItem {
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        from_item(item)
    }
}

impl AuditPageItem {
    /// The page of the changes `records` (each its `seq`, delta, value after it and request id, in order), which
    /// all fall in one page's partition.
    pub(crate) fn new(counter: &CounterName, value_before: u64, at: i64, records: &[(u64, Delta, RequestId)]) -> Self {
        let first = records.first().map_or(0, |(seq, _, _)| *seq);
        Self {
            pk: audits_partition(counter, first),
            sk: first,
            kind: Kind::Audits,
            counter: counter.clone(),
            at,
            value_before,
            deltas: records.iter().map(|(_, delta, _)| if *delta == Delta::Increment { '+' } else { '-' }).collect(),
            request_ids: records.iter().map(|(_, _, request_id)| request_id.clone()).collect(),
        }
    }

    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        from_item(item)
    }

    /// The page's audit records, oldest first.
    pub(crate) fn into_records(self) -> Result<Vec<AuditRecord>, StoreError> {
        let unreadable = || StoreError::corrupt(ItemError::Page(self.counter.clone()));
        if self.deltas.len() != self.request_ids.len() || self.request_ids.is_empty() {
            return Err(unreadable());
        }
        let mut value = self.value_before;
        let at = Timestamp::from_unix_millis(self.at);
        let mut records = Vec::with_capacity(self.request_ids.len());
        for ((seq, delta), request_id) in (self.sk..).zip(self.deltas.bytes()).zip(self.request_ids.iter()) {
            let delta = match delta {
                b'+' => Delta::Increment,
                b'-' => Delta::Decrement,
                _ => return Err(unreadable()),
            };
            value = match delta {
                Delta::Increment => value.checked_add(1),
                Delta::Decrement => value.checked_sub(1),
            }
            .ok_or_else(unreadable)?;
            records.push(AuditRecord { seq, delta, value, request_id: request_id.clone(), at });
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_items_round_trip() {
        let item = CounterItem {
            pk: counter_partition(&CounterName::global()),
            sk: HEAD,
            kind: Kind::Counter,
            counter: CounterName::global(),
            value: 42,
            seq: Some(44),
            updated_at: 1_795_428_000_000,
            request_id: RequestId::parse("k-1").unwrap(),
        };
        let encoded = to_item(&item).unwrap();
        assert_eq!(encoded["pk"], AttributeValue::S("counter#global".to_owned()));
        assert_eq!(encoded["sk"], AttributeValue::N("0".to_owned()));
        assert_eq!(encoded["kind"], AttributeValue::S("counter".to_owned()));
        assert_eq!(encoded["value"], AttributeValue::N("42".to_owned()));
        assert_eq!(encoded["seq"], AttributeValue::N("44".to_owned()));
        let snapshot = CounterItem::from_item(&encoded).unwrap().into_snapshot();
        assert_eq!((snapshot.value, snapshot.seq), (42, 44));
        assert_eq!(snapshot.updated_at.unwrap().to_string(), "2026-11-23T10:00:00.000Z");
    }

    #[test]
    fn items_written_before_decrements_read_as_increments() {
        let mut counter = to_item(&CounterItem {
            pk: counter_partition(&CounterName::global()),
            sk: HEAD,
            kind: Kind::Counter,
            counter: CounterName::global(),
            value: 7,
            seq: None,
            updated_at: 0,
            request_id: RequestId::parse("k-7").unwrap(),
        })
        .unwrap();
        assert!(!counter.contains_key("seq"));
        let snapshot = CounterItem::from_item(&counter).unwrap().into_snapshot();
        assert_eq!((snapshot.value, snapshot.seq), (7, 7), "seq is the value");
        counter.insert("seq".to_owned(), AttributeValue::N("9".to_owned()));
        assert_eq!(CounterItem::from_item(&counter).unwrap().seq(), 9);

        let old_audit = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("counter#global".to_owned())),
            ("sk".to_owned(), AttributeValue::N("7".to_owned())),
            ("kind".to_owned(), AttributeValue::S("audit".to_owned())),
            ("counter".to_owned(), AttributeValue::S("global".to_owned())),
            ("requestId".to_owned(), AttributeValue::S("k-7".to_owned())),
            ("at".to_owned(), AttributeValue::N("0".to_owned())),
        ]);
        let record = AuditItem::from_item(&old_audit).unwrap().into_record().unwrap();
        assert_eq!((record.seq, record.delta, record.value), (7, Delta::Increment, 7));
    }

    #[test]
    fn an_audit_page_holds_its_changes_records() {
        let counter = CounterName::parse("page").unwrap();
        let id = |n: &str| RequestId::parse(n).unwrap();
        let records = [(1999, Delta::Increment, id("a")), (2000, Delta::Decrement, id("b"))];
        let page = AuditPageItem::new(&counter, 7, 1_795_428_000_000, &records);
        assert_eq!((page.pk.as_str(), page.sk, page.deltas.as_str()), ("audits#page#1", 1999, "+-"));
        let read = AuditPageItem::from_item(&to_item(&page).unwrap()).unwrap();
        let records: Vec<_> =
            read.into_records().unwrap().into_iter().map(|r| (r.seq, r.delta, r.value, r.request_id)).collect();
        assert_eq!(records, [(1999, Delta::Increment, 8, id("a")), (2000, Delta::Decrement, 7, id("b"))]);
        let broken = AuditPageItem { deltas: "+".to_owned(), ..AuditPageItem::new(&counter, 0, 0, &records_of(2)) };
        assert!(matches!(broken.into_records(), Err(StoreError::Corrupt(_))), "one delta for two ids");
        let below_zero = AuditPageItem::new(&counter, 0, 0, &[(1, Delta::Decrement, id("c"))]);
        assert!(matches!(below_zero.into_records(), Err(StoreError::Corrupt(_))));
    }

    fn records_of(n: u64) -> Vec<(u64, Delta, RequestId)> {
        (1..=n).map(|seq| (seq, Delta::Increment, RequestId::parse(&format!("r{seq}")).unwrap())).collect()
    }

    #[test]
    fn items_with_invalid_names_are_corrupt() {
        let mut encoded = to_item(&RequestItem {
            pk: "request#k".to_owned(),
            sk: HEAD,
            kind: Kind::Request,
            counter: CounterName::global(),
            response: "{}".to_owned(),
            expires_at: 0,
            attempt: None,
            delta: None,
        })
        .unwrap();
        encoded.insert("counter".to_owned(), AttributeValue::S("Not A Name".to_owned()));
        assert!(matches!(RequestItem::from_item(&encoded), Err(StoreError::Corrupt(_))));
    }
}

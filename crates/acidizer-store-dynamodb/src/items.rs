//! The items of the counter table. One table holds three kinds, told apart by key and by `kind`:
//!
//! | kind      | pk                  | sk    | holds                                   |
//! |-----------|---------------------|-------|-----------------------------------------|
//! | `counter` | `counter#{name}`    | 0     | the value, when and by which request    |
//! | `audit`   | `counter#{name}`    | value | the request that produced that value    |
//! | `request` | `request#{id}`      | 0     | the answer given, until `expiresAt`     |
//!
//! Audit records share the counter's partition with the value as sort key, so a counter's history is one
//! Query and, since the counter is conditioned on the value it was read at, gap-free 1..N by construction.

use acidizer_core::{AuditRecord, CounterName, CounterSnapshot, RequestId, StoreError, Timestamp};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The sort key of a counter's own item and of a remembered answer.
pub(crate) const HEAD: u64 = 0;

pub(crate) fn counter_partition(counter: &CounterName) -> String {
    format!("counter#{counter}")
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
    pub updated_at: i64,
    pub request_id: RequestId,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditItem {
    pub pk: String,
    pub sk: u64,
    pub kind: Kind,
    pub counter: CounterName,
    pub request_id: RequestId,
    pub at: i64,
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
}

pub(crate) fn to_item(value: &impl Serialize) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|error| StoreError::Corrupt(format!("cannot encode an item: {error}")))
}

fn from_item<T: for<'de> Deserialize<'de>>(item: &Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item.clone()).map_err(|error| StoreError::Corrupt(format!("unreadable item: {error}")))
}

impl CounterItem {
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        from_item(item)
    }

    pub(crate) fn into_snapshot(self) -> CounterSnapshot {
        CounterSnapshot {
            counter: self.counter,
            value: self.value,
            updated_at: Some(Timestamp::from_unix_millis(self.updated_at)),
        }
    }
}

impl AuditItem {
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        from_item(item)
    }

    pub(crate) fn into_record(self) -> AuditRecord {
        AuditRecord { value: self.sk, request_id: self.request_id, at: Timestamp::from_unix_millis(self.at) }
    }
}

impl RequestItem {
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        from_item(item)
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
            updated_at: 1_795_428_000_000,
            request_id: RequestId::parse("k-1").unwrap(),
        };
        let encoded = to_item(&item).unwrap();
        assert_eq!(encoded["pk"], AttributeValue::S("counter#global".to_owned()));
        assert_eq!(encoded["sk"], AttributeValue::N("0".to_owned()));
        assert_eq!(encoded["kind"], AttributeValue::S("counter".to_owned()));
        assert_eq!(encoded["value"], AttributeValue::N("42".to_owned()));
        let snapshot = CounterItem::from_item(&encoded).unwrap().into_snapshot();
        assert_eq!(snapshot.value, 42);
        assert_eq!(snapshot.updated_at.unwrap().to_string(), "2026-11-23T10:00:00.000Z");
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
        })
        .unwrap();
        encoded.insert("counter".to_owned(), AttributeValue::S("Not A Name".to_owned()));
        assert!(matches!(RequestItem::from_item(&encoded), Err(StoreError::Corrupt(_))));
    }
}

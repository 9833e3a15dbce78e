//! A counter's history, newest first: from the audit pages of group commits (a partition of pages every thousand
//! `seq`s) and from the one-record audit items that hosts from before group commit write in the counter's own
//! partition — below the first page, or between pages while both kinds of host run (a deployment's canary). `seq`s
//! are gap-free, so the record wanted next is always known: each round reads the pages and the one-record items at
//! and below it, and takes the records from it down for as long as they follow one another.

use crate::items::{self, AuditItem, AuditPageItem};
use crate::{DynamoStore, group, layout, sdk_error};
use acidizer_core::{AuditRecord, CounterName, HistoryQuery, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::BTreeMap;

/// A history without the record that `seq`s 1..N promise.
#[derive(Debug, thiserror::Error)]
#[error("the history of {counter} has no record {missing}")]
struct Gap {
    counter: CounterName,
    missing: u64,
}

pub(crate) async fn read(
    store: &DynamoStore,
    counter: &CounterName,
    query: HistoryQuery,
) -> Result<Vec<AuditRecord>, StoreError> {
    let limit = usize::from(query.limit.get());
    let newest =
        || async { Ok::<_, StoreError>(group::read_counter(store, counter, None).await?.map_or(0, |item| item.seq())) };
    // The newest `seq` wanted, and whether it is known to exist (`before` may lie past the counter's last change).
    let (mut next, mut exists) = match query.before {
        Some(before) => (before.saturating_sub(1), false),
        None => (newest().await?, true),
    };
    let mut records: Vec<AuditRecord> = Vec::with_capacity(limit);
    while records.len() < limit && next >= 1 {
        let wanted = limit - records.len();
        let mut found: BTreeMap<u64, AuditRecord> = BTreeMap::new();
        for page in pages(store, counter, next, wanted).await? {
            found.extend(page.into_records()?.into_iter().filter(|record| record.seq <= next).map(|r| (r.seq, r)));
        }
        found.extend(single_records(store, counter, next, wanted).await?.into_iter().map(|r| (r.seq, r)));
        if !found.contains_key(&next) {
            if !exists {
                // `next` may lie past the counter's last change: start from that change.
                exists = true;
                let last = newest().await?;
                if last < next {
                    next = last;
                    continue;
                }
            }
            return Err(StoreError::corrupt(Gap { counter: counter.clone(), missing: next }));
        }
        exists = true;
        // From `next` down, for as long as the records follow one another (the next round reads further down).
        while records.len() < limit
            && let Some(record) = found.remove(&next)
        {
            records.push(record);
            next -= 1;
        }
    }
    Ok(records)
}

/// Up to `limit` audit pages of `counter` in the partition of `seq`, from the one holding `seq` down.
async fn pages(
    store: &DynamoStore,
    counter: &CounterName,
    seq: u64,
    limit: usize,
) -> Result<Vec<AuditPageItem>, StoreError> {
    let items = newest_first(store, items::audits_partition(counter, seq), seq, limit).await?;
    items.iter().map(AuditPageItem::from_item).collect()
}

/// Up to `limit` one-record audit items of `counter` (written before group commit), from `seq` down.
async fn single_records(
    store: &DynamoStore,
    counter: &CounterName,
    seq: u64,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let items = newest_first(store, items::counter_partition(counter), seq, limit).await?;
    items.iter().map(|item| AuditItem::from_item(item)?.into_record()).collect()
}

/// Up to `limit` items of `partition` with sort keys from `seq` down to 1 (the counter's own item, at 0, is not
/// one of them), strongly consistent.
async fn newest_first(
    store: &DynamoStore,
    partition: String,
    seq: u64,
    limit: usize,
) -> Result<Vec<items::Item>, StoreError> {
    let output = store
        .client
        .query()
        .table_name(&store.table)
        .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
        .expression_attribute_names("#pk", layout::PARTITION_KEY)
        .expression_attribute_names("#sk", layout::SORT_KEY)
        .expression_attribute_values(":pk", AttributeValue::S(partition))
        .expression_attribute_values(":first", AttributeValue::N("1".to_owned()))
        .expression_attribute_values(":last", AttributeValue::N(seq.to_string()))
        .scan_index_forward(false)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(output.items.unwrap_or_default())
}

//! A counter's history, newest first: from the audit pages of group commits (a partition of pages every thousand
//! `seq`s) and, below the first page, from the one-record audit items written before group commit, in the
//! counter's own partition. `seq`s are gap-free, so the record wanted next is always known: the page that ends with
//! it, or, when there is none, the older items.

use crate::items::{self, AuditItem, AuditPageItem};
use crate::{DynamoStore, group, layout, sdk_error};
use acidizer_core::{AuditRecord, CounterName, HistoryQuery, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;

/// A page of audit records that leaves a gap below the record wanted.
#[derive(Debug, thiserror::Error)]
#[error("the audit pages of {counter} skip from {wanted} to {found}")]
struct Gap {
    counter: CounterName,
    wanted: u64,
    found: u64,
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
        let pages = pages(store, counter, next, limit - records.len()).await?;
        if pages.is_empty() {
            if !exists {
                exists = true;
                let last = newest().await?;
                if last < next {
                    next = last;
                    continue;
                }
            }
            // No page holds `next`: it is older than group commit.
            records.extend(single_records(store, counter, next, limit - records.len()).await?);
            break;
        }
        for page in pages {
            if page.last_seq() < next {
                if exists || !records.is_empty() {
                    let gap = Gap { counter: counter.clone(), wanted: next, found: page.last_seq() };
                    return Err(StoreError::corrupt(gap));
                }
                // `seq`s are gap-free: the newest page at or below `next` ends with the counter's last change.
                next = page.last_seq();
            }
            exists = true;
            let first = page.sk;
            let newest_first = page.into_records()?.into_iter().rev().filter(|record| record.seq <= next);
            records.extend(newest_first.take(limit - records.len()));
            next = first.saturating_sub(1);
            if records.len() == limit {
                break;
            }
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
    let output = store
        .client
        .query()
        .table_name(&store.table)
        .key_condition_expression("#pk = :pk AND #sk <= :seq")
        .expression_attribute_names("#pk", layout::PARTITION_KEY)
        .expression_attribute_names("#sk", layout::SORT_KEY)
        .expression_attribute_values(":pk", AttributeValue::S(items::audits_partition(counter, seq)))
        .expression_attribute_values(":seq", AttributeValue::N(seq.to_string()))
        .scan_index_forward(false)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    output.items().iter().map(AuditPageItem::from_item).collect()
}

/// Up to `limit` one-record audit items of `counter` (written before group commit), from `seq` down.
async fn single_records(
    store: &DynamoStore,
    counter: &CounterName,
    seq: u64,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let output = store
        .client
        .query()
        .table_name(&store.table)
        .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
        .expression_attribute_names("#pk", layout::PARTITION_KEY)
        .expression_attribute_names("#sk", layout::SORT_KEY)
        .expression_attribute_values(":pk", AttributeValue::S(items::counter_partition(counter)))
        .expression_attribute_values(":first", AttributeValue::N("1".to_owned()))
        .expression_attribute_values(":last", AttributeValue::N(seq.to_string()))
        .scan_index_forward(false)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    output.items().iter().map(|item| AuditItem::from_item(item)?.into_record()).collect()
}

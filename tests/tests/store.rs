//! The one `CounterStore` suite (`acidizer_tests::store_contract`) on every store: SQLite, and DynamoDB on
//! DynamoDB Local.

use acidizer_store_dynamodb::{DynamoStore, create_missing_tables};
use acidizer_store_sqlite::SqliteStore;
use acidizer_tests::{dynamodb_local, store_contract};
use std::sync::Arc;

/// A SQLite store in its own directory (kept alive beside it).
fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteStore::open(dir.path()).unwrap(), dir)
}

/// A DynamoDB store on a fresh table of DynamoDB Local.
async fn dynamodb() -> DynamoStore {
    let client = dynamodb_local::client(&dynamodb_local::shared().endpoint);
    let table = format!("store-{}", uuid::Uuid::new_v4().simple());
    create_missing_tables(&client, &table, None).await.unwrap();
    DynamoStore::new(client, table)
}

macro_rules! store_suite {
    ($name:ident, $make:expr, load: $tasks:expr, $per_task:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn increments_commit_values_one_by_one() {
                let store = $make;
                store_contract::increments_commit_values_one_by_one(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_known_request_id_replays_whatever_the_counter() {
                let store = $make;
                store_contract::a_known_request_id_replays_whatever_the_counter(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nothing_commits_after_the_deadline() {
                let store = $make;
                store_contract::nothing_commits_after_the_deadline(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn one_request_id_sent_at_once_commits_once() {
                let store = $make;
                store_contract::one_request_id_sent_at_once_commits_once(Arc::new(store.0)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn changes_stay_within_the_floor_and_the_ceiling() {
                let store = $make;
                store_contract::changes_stay_within_the_floor_and_the_ceiling(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_committed_decrement_replays_even_at_the_floor() {
                let store = $make;
                store_contract::a_committed_decrement_replays_even_at_the_floor(&store.0).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_mixed_changes_are_exact() {
                let store = $make;
                store_contract::concurrent_mixed_changes_are_exact(Arc::new(store.0), $tasks, $per_task).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_increments_are_exact() {
                let store = $make;
                store_contract::concurrent_increments_are_exact(Arc::new(store.0), $tasks, $per_task).await;
            }
        }
    };
}

store_suite!(on_sqlite, sqlite(), load: 32, 50);
store_suite!(on_dynamodb, (dynamodb().await, ()), load: 16, 10);

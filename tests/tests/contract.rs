//! The contract suite: the same test functions against `acidizer serve` on SQLite, `acidizer serve` on DynamoDB
//! (DynamoDB Local), and the `acidizer-api` Lambda binary on DynamoDB (DynamoDB Local) behind a local Runtime API.

use acidizer_tests::{App, Target, contract, load};

macro_rules! contract_suite {
    ($target:ident: $kind:expr, load: $tasks:expr, $per_task:expr, races_retried: $races:expr) => {
        mod $target {
            use super::*;

            contract_suite!(@cases $kind;
                unknown_counter_reads_zero,
                increments_count_by_one_with_request_ids,
                original_routes_serve_the_global_counter,
                a_repeated_key_replays_the_first_answer_byte_for_byte,
                one_key_sent_by_many_at_once_commits_once,
                a_key_used_for_another_counter_is_refused,
                decrements_stop_at_zero,
                history_pages_newest_first,
                bad_input_is_a_problem_and_changes_nothing,
                a_change_answers_its_first_problem,
                cors_allows_the_configured_origins,
                the_routes_are_those_of_the_openapi_document,
            );

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_increments_and_decrements_are_exact() {
                let app = App::spawn($kind).await;
                let report = load::run_mixed(&app, "mixed", 16, $per_task).await;
                load::assert_exact_mixed(&app, "mixed", &report).await;
                assert!(!report.replays.is_empty());
                let decrements = report.first.values().filter(|change| change.delta == -1).count();
                assert!(decrements > 0 && report.refused > 0, "the load went down and met the floor");
                eprintln!("{} changes ({decrements} down), {} refused at 0", report.first.len(), report.refused);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_increments_with_repeated_keys_are_exact() {
                let app = App::spawn($kind).await;
                let report = load::run(&app, "load", $tasks, $per_task).await;
                load::assert_exact(&app, "load", &report).await;
                assert!(!report.replays.is_empty());
                if $races {
                    // Proved by the function's own metric: the losers of a race on the counter tried again.
                    let totals = acidizer_tests::emf::totals(&app.logs());
                    let retries = totals.get("ConflictRetries").copied().unwrap_or_default();
                    assert!(retries >= 1.0, "the load made increments race, and the losers retried: {totals:?}");
                    eprintln!("{retries} races lost and retried; {} 503s retried by clients", report.retried_503);
                }
            }
        }
    };
    (@cases $kind:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let app = App::spawn($kind).await;
                contract::$case(&app).await;
            }
        )*
    };
}

contract_suite!(serve_sqlite: Target::ServeSqlite, load: 64, 300, races_retried: false);
// One server takes its changes of a counter in turns: races on DynamoDB are between processes (the Lambda's).
contract_suite!(serve_dynamodb: Target::ServeDynamodb, load: 16, 15, races_retried: false);
// Races are proved by the `ConflictRetries` metric, which only the Lambda functions emit.
contract_suite!(lambda_dynamodb: Target::Lambda, load: 16, 10, races_retried: true);

/// The original Number Acidizer's clients fire bursts with no idempotency key and no retry: on `acidizer serve`,
/// whose changes of a counter take turns, every click of a burst counts. (Lambda instances race each other on
/// DynamoDB instead, and a burst there may meet 503s, which the contract allows and a retrying client rides out:
/// the mixed-load test above.)
mod original_clients {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_serve_sqlite() {
        contract::the_original_clients_see_their_counter_come_back(&App::spawn(Target::ServeSqlite).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_serve_dynamodb() {
        contract::the_original_clients_see_their_counter_come_back(&App::spawn(Target::ServeDynamodb).await).await;
    }
}

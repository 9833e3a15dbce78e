//! The "durable" promise on `acidizer serve`, on the embedded store and on DynamoDB (DynamoDB Local): a `kill -9`
//! in the middle of a load loses no acknowledged increment, and SIGTERM finishes the increments in flight before
//! a clean exit.

use acidizer_tests::app::Server;
use acidizer_tests::{App, Target, dynamodb_local, load};

const COUNTER: &str = "durable";
const CLIENTS: usize = 16;

/// Starts a server, loads it until `acks` increments are acknowledged, stops it with `stop` in the middle of the
/// load, restarts it on the same data and checks that every acknowledged increment is there.
async fn stop_mid_load_and_restart<F, Fut>(target: Target, acks: usize, stop: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (args, env) = match target {
        Target::ServeDynamodb => {
            let mut env = dynamodb_local::aws_env(&dynamodb_local::shared().endpoint);
            let suffix = uuid::Uuid::new_v4().simple();
            env.push(("COUNTER_TABLE", format!("durable-{suffix}")));
            env.push(("CONNECTIONS_TABLE", format!("durable-ws-{suffix}")));
            (vec!["--store", "dynamodb", "--create-tables"], env)
        }
        _ => (Vec::new(), Vec::new()),
    };
    let server = Server::start(&data, &args, &env, dir.path()).await;
    let (acked, clients) = load::until_stopped(&server.base, COUNTER, CLIENTS);
    load::wait_for_acks(&acked, acks).await;
    stop(server).await;
    load::stopped(clients).await;
    let acked = acked.lock().unwrap().clone();

    let restarted = Server::start(&data, &args, &env, dir.path()).await;
    let app = App::detached(restarted.base.clone(), target, load::client());
    load::assert_all_acknowledged_survive(&app, COUNTER, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_in_the_middle_of_a_load_loses_no_acknowledged_increment() {
    stop_mid_load_and_restart(Target::ServeSqlite, 500, Server::kill_hard).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_in_the_middle_of_a_load_on_dynamodb_loses_no_acknowledged_increment() {
    stop_mid_load_and_restart(Target::ServeDynamodb, 100, Server::kill_hard).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_the_increments_in_flight_and_exits_cleanly() {
    stop_mid_load_and_restart(Target::ServeSqlite, 300, |server| async {
        let status = server.terminate().await;
        assert!(status.success(), "a clean exit on SIGTERM, not {status}");
    })
    .await;
}

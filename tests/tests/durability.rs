//! The "durable" promise on `acidizer serve`, on the embedded store and on DynamoDB (DynamoDB Local): a `kill -9`
//! in the middle of a load loses no acknowledged increment, and SIGTERM finishes the increments in flight before
//! a clean exit.

use acidizer_tests::app::Server;
use acidizer_tests::{App, Target, dynamodb_local, load};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const COUNTER: &str = "durable";
const CLIENTS: usize = 16;

type Acked = Arc<Mutex<Vec<(String, u64)>>>;

/// `CLIENTS` clients increment with fresh keys until the server stops answering; every 200 is recorded.
fn start_load(base: &str) -> (Acked, Vec<tokio::task::JoinHandle<()>>) {
    let acked: Acked = Arc::default();
    let http = reqwest::Client::new();
    let handles = (0..CLIENTS)
        .map(|client| {
            let (acked, http, url) = (Arc::clone(&acked), http.clone(), format!("{base}/counters/{COUNTER}/increment"));
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("c{client}-{i}");
                    let Ok(response) = http.post(&url).header("Idempotency-Key", &key).send().await else { return };
                    if response.status() != 200 {
                        return;
                    }
                    let Ok(body) = response.json::<Value>().await else { return };
                    let value = body["value"].as_u64().expect("an acknowledged increment has a value");
                    acked.lock().unwrap().push((key, value));
                }
            })
        })
        .collect();
    (acked, handles)
}

async fn wait_for_acks(acked: &Acked, at_least: usize) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while acked.lock().unwrap().len() < at_least {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the load gets going");
}

/// Every acknowledged increment is in the history under its value and key, and the history is exactly 1..N.
async fn assert_all_acknowledged_survive(app: &App, acked: &[(String, u64)]) {
    let history = load::full_history(app, COUNTER).await;
    let n = history.len() as u64;
    assert_eq!(app.get_json(&format!("/counters/{COUNTER}")).await["value"], n);
    let by_value: BTreeMap<u64, String> = history
        .iter()
        .map(|item| (item["value"].as_u64().unwrap(), item["requestId"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(by_value.keys().copied().collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>(), "gap-free 1..N");
    for (key, value) in acked {
        assert_eq!(by_value.get(value), Some(key), "acknowledged increment {value} ({key}) survived");
    }
    // And a retry of an acknowledged key still replays the same value.
    let (key, value) = &acked[acked.len() / 2];
    let replay = app.increment(Some(COUNTER), Some(key)).await;
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.json::<Value>().await.unwrap()["value"], *value);
}

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
    let (acked, clients) = start_load(&server.base);
    wait_for_acks(&acked, acks).await;
    stop(server).await;
    for client in clients {
        client.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let restarted = Server::start(&data, &args, &env, dir.path()).await;
    let app = App::detached(restarted.base.clone(), target, reqwest::Client::new());
    assert_all_acknowledged_survive(&app, &acked).await;
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

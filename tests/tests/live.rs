//! The "live" promise on `acidizer serve`, on both stores: every subscriber sees strictly increasing values that
//! end at the counter's final value, and only its own counter's; the protocol's sync, ping and errors.

use acidizer_tests::ws::{Received, WsClient};
use acidizer_tests::{App, Target};
use futures::future::join_all;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

async fn subscribers(app: &App, counter: &str, count: usize) -> Vec<WsClient> {
    let clients = join_all((0..count).map(|_| WsClient::connect(&app.base, Some(counter)))).await;
    // A sync round trip proves each session is subscribed before any increment.
    join_all(clients.into_iter().map(|mut client| async move {
        let reply = client.sync().await;
        assert_eq!(reply["value"], 0);
        client
    }))
    .await
}

async fn every_subscriber_sees_every_change_in_order(target: Target) {
    let app = App::spawn(target).await;
    let mut many = subscribers(&app, "many", 300).await;
    let few = subscribers(&app, "few", 30).await;
    // One subscriber reads nothing until the end: it must hold up no one, and then catch up.
    let mut stuck = many.pop().expect("subscribers");

    let increments = (0..4).map(|task| {
        let app = App::detached(app.base.clone(), app.target, app.http.clone());
        async move {
            for i in 0..10 {
                let counter = if (task * 10 + i) % 4 == 0 { "few" } else { "many" };
                let response = app.increment(Some(counter), Some(&format!("live-{task}-{i}"))).await;
                assert_eq!(response.status(), 200);
            }
        }
    });
    join_all(increments).await;
    let (many_final, few_final) = (30, 10);
    assert_eq!(app.get_json("/counters/many").await["value"], many_final);
    assert_eq!(app.get_json("/counters/few").await["value"], few_final);

    let watch = |clients: Vec<WsClient>, counter: &'static str, last: u64| {
        join_all(clients.into_iter().map(move |mut client| async move {
            let seen = client.seqs_until(last, WAIT).await;
            assert!(seen.iter().all(|(c, _)| c == counter), "only {counter}'s values: {seen:?}");
            let values: Vec<u64> = seen.iter().map(|(_, v)| *v).collect();
            assert!(values.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {values:?}");
            assert_eq!(values.last(), Some(&last));
            values.len()
        }))
    };
    let (many_seen, few_seen) = tokio::join!(watch(many, "many", many_final), watch(few, "few", few_final));
    let caught_up: Vec<u64> = stuck.seqs_until(many_final, WAIT).await.into_iter().map(|(_, v)| v).collect();
    assert!(caught_up.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {caught_up:?}");
    let messages: usize = many_seen.iter().chain(&few_seen).sum();
    eprintln!("{messages} messages to 330 subscribers for 40 increments");
}

async fn the_protocol_answers_sync_ping_and_bad_messages(target: Target) {
    let app = App::spawn(target).await;
    let mut client = WsClient::connect(&app.base, None).await;
    assert_eq!(
        client.sync().await,
        serde_json::json!({"type": "value", "counter": "global", "value": 0, "seq": 0, "updatedAt": null})
    );
    let committed: serde_json::Value = app.increment(None, Some("proto-1")).await.json().await.unwrap();
    let pushed = client.next_json(WAIT).await;
    let at = &committed["updatedAt"];
    assert_eq!(
        pushed,
        serde_json::json!({"type": "value", "counter": "global", "value": 1, "seq": 1, "updatedAt": at})
    );
    let down: serde_json::Value = app.change(None, "decrement", Some("proto-2")).await.json().await.unwrap();
    let pushed = client.next_json(WAIT).await;
    let at = &down["updatedAt"];
    assert_eq!(
        pushed,
        serde_json::json!({"type": "value", "counter": "global", "value": 0, "seq": 2, "updatedAt": at}),
        "a decrement is pushed too: the value goes down, the seq up"
    );
    let synced = client.sync().await;
    assert_eq!((&synced["value"], &synced["seq"]), (&serde_json::json!(0), &serde_json::json!(2)));

    client.send_text(r#"{"action":"ping"}"#).await;
    assert_eq!(client.next_json(WAIT).await, serde_json::json!({"type": "pong"}));
    let too_big = format!(r#"{{"action":"ping","pad":"{}"}}"#, "x".repeat(5000));
    for bad in [r#"{"action":"dance"}"#, "not json", "[1]", r#"{"nope":1}"#, too_big.as_str()] {
        client.send_text(bad).await;
        let reply = client.next_json(WAIT).await;
        assert_eq!(reply["type"], "error", "{bad}: {reply}");
        assert!(reply["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    client.send_binary(vec![1, 2, 3]).await;
    assert_eq!(client.next_json(WAIT).await["type"], "error");
    client.send_text(r#"{"action":"ping"}"#).await;
    assert_eq!(client.next_json(WAIT).await["type"], "pong", "the connection stays open after errors");

    let mut named = WsClient::connect(&app.base, Some("named-1")).await;
    assert_eq!(named.sync().await["counter"], "named-1");
    for bad in ["Bad", "-x", "a%20b"] {
        assert!(WsClient::try_connect(&app.base, Some(bad)).await.is_err(), "counter {bad:?} is refused");
    }
    let plain = app.get("/ws").await;
    assert_eq!(plain.status(), 400, "/ws without an upgrade is a 400");
}

mod serve_sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_subscriber_sees_every_change_in_order() {
        super::every_subscriber_sees_every_change_in_order(Target::ServeSqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_protocol_answers_sync_ping_and_bad_messages() {
        super::the_protocol_answers_sync_ping_and_bad_messages(Target::ServeSqlite).await;
    }
}

mod serve_dynamodb {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_subscriber_sees_every_change_in_order() {
        super::every_subscriber_sees_every_change_in_order(Target::ServeDynamodb).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_protocol_answers_sync_ping_and_bad_messages() {
        super::the_protocol_answers_sync_ping_and_bad_messages(Target::ServeDynamodb).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_websocket_with_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let server = acidizer_tests::app::Server::start(&dir.path().join("data"), &[], &[], dir.path()).await;
    let mut clients = join_all((0..5).map(|_| WsClient::connect(&server.base, None))).await;
    for client in &mut clients {
        client.sync().await;
    }
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
    for client in &mut clients {
        match client.next(WAIT).await {
            Received::Closed(Some(code)) => assert_eq!(u16::from(code), 1001),
            other => panic!("closed with 1001 (going away), not {other:?}"),
        }
    }
}

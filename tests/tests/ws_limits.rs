//! The bounds on `acidizer serve`'s WebSocket sessions: pages of other origins are refused at the upgrade, the
//! server and each client get at most so many sessions (closed with 1013 and 1008, with a reason), and a session's
//! messages over its rate are answered with errors, the session staying open — while every other subscriber keeps
//! getting values.

use acidizer_tests::app::{ALLOWED_ORIGIN, Server};
use acidizer_tests::ws::WsClient;
use acidizer_tests::{App, Target};
use std::net::IpAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WITHIN: Duration = Duration::from_secs(10);

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

async fn serve(args: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), args, &[], dir.path()).await;
    (server, dir)
}

/// Connects, and returns the code and reason the server closes the new session with.
async fn refused_with(base: &str, from: IpAddr) -> (CloseCode, String) {
    let mut client = WsClient::connect_from(base, "limits", from, None).await.expect("the upgrade is taken");
    let frame = client.close_frame(WITHIN).await.expect("a close frame with a reason");
    (frame.code, frame.reason.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_is_refused_at_the_upgrade() {
    let (server, _dir) = serve(&[]).await;
    let own = server.base.clone();
    for origin in [None, Some(ALLOWED_ORIGIN), Some(own.as_str())] {
        let mut client = WsClient::connect_from(&server.base, "origins", loopback(1), origin)
            .await
            .unwrap_or_else(|error| panic!("a page of {origin:?} may connect: {error}"));
        assert_eq!(client.sync().await["counter"], "origins");
    }
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        match WsClient::connect_from(&server.base, "origins", loopback(1), Some(origin)).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin}");
                let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
                assert!(body.contains("urn:acidizer:problem:origin-not-allowed"), "{origin}: {body}");
            }
            Ok(_) => panic!("a page of {origin} opened a WebSocket"),
            Err(other) => panic!("a page of {origin}: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_capped_in_all_and_per_client() {
    let (server, _dir) = serve(&["--ws-max-sessions", "3", "--ws-max-per-client", "2"]).await;
    let app = App::detached(server.base.clone(), Target::ServeSqlite, reqwest::Client::new());
    let mut first = WsClient::connect_from(&server.base, "limits", loopback(1), None).await.unwrap();
    let mut second = WsClient::connect_from(&server.base, "limits", loopback(1), None).await.unwrap();
    first.sync().await;
    second.sync().await;
    let (code, reason) = refused_with(&server.base, loopback(1)).await;
    assert_eq!((u16::from(code), reason.is_empty()), (1008, false), "a third from one client: {reason}");

    let mut other = WsClient::connect_from(&server.base, "limits", loopback(2), None).await.unwrap();
    other.sync().await;
    let (code, reason) = refused_with(&server.base, loopback(3)).await;
    assert_eq!((u16::from(code), reason.is_empty()), (1013, false), "a fourth in all: {reason}");

    // The admitted sessions keep getting values; a closed one gives its place back.
    assert_eq!(app.increment(Some("limits"), None).await.status(), 200);
    for client in [&mut first, &mut second, &mut other] {
        assert_eq!(client.seqs_until(1, WITHIN).await.last().map(|(_, seq)| *seq), Some(1));
    }
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        let mut client = WsClient::connect_from(&server.base, "limits", loopback(1), None).await.unwrap();
        client.send_text(r#"{"action":"sync"}"#).await;
        match client.next(WITHIN).await {
            acidizer_tests::ws::Received::Json(value) if value["type"] == "value" => {
                again = Some(client);
                break;
            }
            // The closed session's place comes back once the server has seen it close.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(again.is_some(), "a session closed by its client gives its place back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_a_sessions_rate_get_errors_and_others_keep_getting_values() {
    let (server, _dir) = serve(&["--ws-messages-per-second", "5"]).await;
    let app = App::detached(server.base.clone(), Target::ServeSqlite, reqwest::Client::new());
    let mut calm = WsClient::connect_from(&server.base, "flood", loopback(1), None).await.unwrap();
    calm.sync().await;
    let mut flooding = WsClient::connect_from(&server.base, "flood", loopback(2), None).await.unwrap();
    let started = std::time::Instant::now();
    for _ in 0..50 {
        flooding.send_text(r#"{"action":"sync"}"#).await;
    }
    let (mut values, mut refused) = (0, 0);
    for _ in 0..50 {
        let reply = flooding.next_json(WITHIN).await;
        match reply["type"].as_str() {
            Some("value") => values += 1,
            Some("error") => {
                assert!(reply["detail"].as_str().unwrap().contains("5 messages a second"), "{reply}");
                refused += 1;
            }
            _ => panic!("{reply}"),
        }
    }
    // A second's worth at once, and one more for every fifth of a second the flood took to be read (the budget's
    // refill is tested on a clock of its own in `live::limits`).
    let refilled = (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(values >= 5 && values <= 5 + refilled, "{values} answered in {:?}", started.elapsed());
    assert!(refused > 0 && values + refused == 50, "{values} answered, {refused} refused");

    // The session stays open, and is answered again once its rate allows.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(flooding.sync().await["counter"], "flood");
    for _ in 0..4 {
        calm.send_text(r#"{"action":"ping"}"#).await;
        assert_eq!(calm.next_json(WITHIN).await["type"], "pong");
    }
    assert_eq!(app.increment(Some("flood"), None).await.status(), 200);
    assert_eq!(calm.seqs_until(1, WITHIN).await.last().map(|(_, seq)| *seq), Some(1));
    assert_eq!(flooding.seqs_until(1, WITHIN).await.last().map(|(_, seq)| *seq), Some(1));
}

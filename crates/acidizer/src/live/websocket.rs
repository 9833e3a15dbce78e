//! `GET /ws?counter=NAME`: one WebSocket session per subscriber, speaking the contract's protocol.

use super::heartbeat::{Beat, Heartbeat, Liveness};
use super::hub::Hub;
use super::hub::Pushed;
use super::limits::{Admission, Refusal, SessionLimits};
use acidizer_core::AllowedOrigins;
use acidizer_core::live::{MAX_CLIENT_FRAME_BYTES, Outbound, ProtocolError, answer};
use acidizer_core::{CounterName, CounterStore, Counters};
use acidizer_http::ApiError;
use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// How long one message may take to be written: a peer that stops reading is dropped after it.
const WRITE_WITHIN: Duration = Duration::from_secs(10);
/// How long a refused session's close may take to be written.
const REFUSE_WITHIN: Duration = Duration::from_secs(1);

/// Messages this large are closed on at the protocol level; up to it, too large ones get an error message.
const MAX_MESSAGE_BYTES: usize = 16 * MAX_CLIENT_FRAME_BYTES;

/// Each session's read buffer to start with (it grows to hold a larger message), and the most one read of the
/// socket takes: thousands of idle subscribers hold one each, and every poll of a session's socket prepares that
/// much of it to read into, so it is sized for the short messages clients send, not for throughput.
const READ_BUFFER_BYTES: usize = 512;
/// Messages are written at once (each is one short frame); a peer that stops reading holds at most this much of
/// them before its session ends.
const MAX_UNSENT_BYTES: usize = 64 * 1024;

/// What every session needs.
pub struct Live<S> {
    pub counters: Counters<S>,
    pub hub: Arc<Hub>,
    pub sessions: TaskTracker,
    pub liveness: Liveness,
    pub limits: Arc<SessionLimits>,
    /// The pages that may open a session (besides the server's own).
    pub origins: AllowedOrigins,
}

impl<S> Clone for Live<S> {
    fn clone(&self) -> Self {
        Self {
            counters: self.counters.clone(),
            hub: Arc::clone(&self.hub),
            sessions: self.sessions.clone(),
            liveness: self.liveness,
            limits: Arc::clone(&self.limits),
            origins: self.origins.clone(),
        }
    }
}

pub async fn upgrade<S: CounterStore>(
    State(live): State<Live<S>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let text = |name| headers.get(name).and_then(|value: &http::HeaderValue| value.to_str().ok());
    if !live.origins.admits(text(header::ORIGIN), text(header::HOST)) {
        acidizer_http::in_request_span(|| {
            tracing::info!(origin = text(header::ORIGIN), "refused a WebSocket from a page of another origin");
        });
        return ApiError::OriginNotAllowed.into_response();
    }
    let counter = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "counter")
        .map(|(_, value)| CounterName::parse(&value))
        .unwrap_or_else(|| Ok(CounterName::global()));
    let counter = match counter {
        Ok(counter) => counter,
        Err(invalid) => return ApiError::from(invalid).into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return ApiError::NotWebSocket(rejection.body_text()).into_response(),
    };
    let admission = live.limits.admit(peer.map(|Extension(ConnectInfo(addr))| addr.ip()));
    let sessions = live.sessions.clone();
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_UNSENT_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            sessions.track_future(async move {
                match admission {
                    Ok(admission) => session(socket, counter, live, admission).await,
                    Err(refusal) => refuse(socket, refusal).await,
                }
            })
        })
}

/// Closes a session the limits have no place for, saying why: 1013 (try again later) when the server is full,
/// 1008 (policy violation) when the client has too many. A peer that does not take the close within
/// [`REFUSE_WITHIN`] is dropped.
async fn refuse(mut socket: WebSocket, refusal: Refusal) {
    tracing::info!(%refusal, "refused a WebSocket session");
    let code = match refusal {
        Refusal::Full => close_code::AGAIN,
        Refusal::TooManyFromClient => close_code::POLICY,
    };
    let close = Message::Close(Some(CloseFrame { code, reason: refusal.to_string().into() }));
    let _ = tokio::time::timeout(REFUSE_WITHIN, socket.send(close)).await;
}

async fn session<S: CounterStore>(mut socket: WebSocket, counter: CounterName, live: Live<S>, _admission: Admission) {
    let (id, mut inbox) = live.hub.register(&counter);
    let budget = live.limits.message_budget();
    let mut over_rate = false;
    let mut last_seq = 0;
    let mut heartbeat = Heartbeat::new(live.liveness, Instant::now());
    let check = tokio::time::sleep_until(heartbeat.due());
    tokio::pin!(check);
    loop {
        // The hub left (at shutdown): looked at on every turn, as a client that keeps its socket busy never lets the
        // select below reach its inbox.
        if inbox.is_closed() {
            end(&mut socket, &live.hub).await;
            break;
        }
        // A session wakes for every change of its counter, and each wake polls these: three, each cheap. In this
        // order: what the client sent comes before the changes (a client's own messages never wait behind a stream
        // of them; only a client that floods its own session delays its values), and both before the liveness
        // check (an answer that came while a send was slow is read before the deadline is judged).
        let reply = tokio::select! {
            biased;
            received = socket.recv() => {
                heartbeat.heard(Instant::now());
                match received {
                    // Over its rate, a message is answered with an error and nothing else is done for it.
                    Some(Ok(Message::Text(_) | Message::Binary(_))) if budget.check().is_err() => {
                        if !over_rate {
                            tracing::info!(%counter, "a WebSocket client sends more messages than its rate");
                            over_rate = true;
                        }
                        Pushed { seq: None, text: live.limits.over_rate_reply() }
                    }
                    Some(Ok(Message::Text(text))) => {
                        let reply = answer(&live.counters, Some(&counter), text.as_str()).await;
                        Pushed { seq: reply.seq(), text: reply.to_json().into() }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let refusal = Outbound::Error(ProtocolError::Binary.to_string());
                        Pushed { seq: None, text: refusal.to_json().into() }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                }
            }
            pushed = inbox.next() => match pushed {
                // `seq`s only move forward: a change older than what this client was sent is dropped.
                Some(Pushed { seq: Some(seq), text }) if seq > last_seq => Pushed { seq: Some(seq), text },
                Some(_) => continue,
                None => {
                    end(&mut socket, &live.hub).await;
                    break;
                }
            },
            () = &mut check => {
                let now = Instant::now();
                match heartbeat.beat(now) {
                    Beat::GiveUp => {
                        tracing::info!(%counter, "a WebSocket client did not answer a ping in time; closing its session");
                        break;
                    }
                    Beat::Ping => {
                        if !send_within(&mut socket, Message::Ping(Default::default())).await {
                            break;
                        }
                        heartbeat.pinged(now);
                    }
                    Beat::Wait => {}
                }
                check.as_mut().reset(heartbeat.due());
                continue;
            }
        };
        if let Some(seq) = reply.seq {
            last_seq = last_seq.max(seq);
        }
        if !send_within(&mut socket, Message::Text(reply.text)).await {
            break;
        }
    }
    live.hub.unregister(&id);
}

/// A session whose inbox ended: at shutdown (the hub ends every inbox then) the client is told, with 1001 (going
/// away), so that it reconnects at once.
async fn end(socket: &mut WebSocket, hub: &Hub) {
    if hub.is_closed() {
        let close = CloseFrame { code: close_code::AWAY, reason: "the server is shutting down".into() };
        send_within(socket, Message::Close(Some(close))).await;
    }
}

/// Sends `message`; false if the peer is gone or has not taken it within [`WRITE_WITHIN`]. A send the socket takes
/// at once (nearly all of them) sets no timer.
async fn send_within(socket: &mut WebSocket, message: Message) -> bool {
    let mut send = std::pin::pin!(socket.send(message));
    match futures::poll!(send.as_mut()) {
        Poll::Ready(sent) => sent.is_ok(),
        Poll::Pending => matches!(tokio::time::timeout(WRITE_WITHIN, send).await, Ok(Ok(()))),
    }
}

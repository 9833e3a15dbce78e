//! A WebSocket client of the contract's protocol, for tests.

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, client_async, connect_async};

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What arrived next on a connection.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<CloseCode>),
}

impl WsClient {
    /// Connects to `ws://…/ws` (with `?counter=…` when given); panics when refused.
    pub async fn connect(base: &str, counter: Option<&str>) -> WsClient {
        Self::try_connect(base, counter).await.unwrap_or_else(|error| panic!("WebSocket refused: {error}"))
    }

    pub async fn try_connect(
        base: &str,
        counter: Option<&str>,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let url = base.replacen("http://", "ws://", 1);
        let url = match counter {
            Some(counter) => format!("{url}/ws?counter={counter}"),
            None => format!("{url}/ws"),
        };
        let (socket, _) = connect_async(url).await?;
        Ok(WsClient { socket })
    }

    /// Connects to `/ws?counter=COUNTER` on `base` (`http://127.0.0.1:PORT`) from the local address `from`, as a
    /// page of `origin` when given (its `Origin` header).
    pub async fn connect_from(
        base: &str,
        counter: &str,
        from: IpAddr,
        origin: Option<&str>,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let authority = base.trim_start_matches("http://");
        let server: SocketAddr = authority.parse().expect("a base of http://IP:PORT");
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        let stream = socket.connect(server).await?;
        let mut request = format!("ws://{authority}/ws?counter={counter}").into_client_request()?;
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().expect("an origin is a header value"));
        }
        let (socket, _) = client_async(request, MaybeTlsStream::Plain(stream)).await?;
        Ok(WsClient { socket })
    }

    /// The close frame that arrives next, skipping other messages, within `within`; `None` if the connection ends
    /// without one.
    pub async fn close_frame(&mut self, within: Duration) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message =
                tokio::time::timeout_at(deadline, self.socket.next()).await.expect("the close arrives in time");
            match message {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text)).await.expect("the message is sent");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.socket.send(Message::binary(bytes)).await.expect("the message is sent");
    }

    /// The next JSON message or close, within `within`.
    pub async fn next(&mut self, within: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message =
                tokio::time::timeout_at(deadline, self.socket.next()).await.expect("a message arrives in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Received::Json(serde_json::from_str(text.as_str()).expect("JSON messages"));
                }
                Some(Ok(Message::Close(frame))) => return Received::Closed(frame.map(|f| f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// The next message, which must be JSON.
    pub async fn next_json(&mut self, within: Duration) -> Value {
        match self.next(within).await {
            Received::Json(value) => value,
            Received::Closed(code) => panic!("the connection closed ({code:?}) instead of answering"),
        }
    }

    /// Sends `{"action":"sync"}` and returns the value message it answers.
    pub async fn sync(&mut self) -> Value {
        self.send_text(r#"{"action":"sync"}"#).await;
        let reply = self.next_json(Duration::from_secs(20)).await;
        assert_eq!(reply["type"], "value", "sync answers a value: {reply}");
        reply
    }

    /// Reads value messages until one holds `seq` `last`; returns every counter and `seq` seen, in order.
    pub async fn seqs_until(&mut self, last: u64, within: Duration) -> Vec<(String, u64)> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next_json(remaining).await;
            assert_eq!(message["type"], "value", "{message}");
            let seq = message["seq"].as_u64().expect("a seq");
            seen.push((message["counter"].as_str().unwrap_or_default().to_owned(), seq));
            if seq >= last {
                return seen;
            }
        }
    }
}

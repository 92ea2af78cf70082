//! A WebSocket test client (tokio-tungstenite) with assertion helpers.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use shardcast::protocol::{CloseReason, ErrorText};

use super::{QUIET, WAIT};

/// What the server did next.
#[derive(Debug)]
pub enum Next {
    /// A JSON message.
    Json(Value),
    /// A close frame with code and reason.
    Close(u16, String),
    /// The connection ended without a close frame (or errored).
    Ended(String),
    /// Nothing within the wait.
    Timeout,
}

/// What a test connection runs over: TCP, or TLS over TCP (`support::tls`).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The stream under a test connection.
pub type Transport = Box<dyn Io>;

/// One test connection.
pub struct WsClient {
    ws: WebSocketStream<Transport>,
}

impl WsClient {
    /// Connects (panics on failure: the server must accept).
    pub async fn connect(url: &str) -> WsClient {
        let rest = url.strip_prefix("ws://").expect("a ws:// URL");
        let host = rest.split('/').next().expect("host:port");
        let tcp = tokio::net::TcpStream::connect(host)
            .await
            .expect("TCP connects");
        Self::over(url, Box::new(tcp)).await
    }

    /// Upgrades on `stream` (already connected; TLS or not) with the request for `url`.
    pub async fn over(url: &str, stream: Transport) -> WsClient {
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("websocket connects");
        WsClient { ws }
    }

    /// Connects with an `Origin` header, as a browser on that page would.
    pub async fn connect_from(url: &str, origin: &str) -> WsClient {
        Self::connect_with(url, &[("Origin", origin)]).await
    }

    /// Connects with extra request headers (a `Cookie`, an `Origin`, …).
    pub async fn connect_with(url: &str, headers: &[(&'static str, &str)]) -> WsClient {
        let rest = url.strip_prefix("ws://").expect("a ws:// URL");
        let host = rest.split('/').next().expect("host:port");
        let tcp = tokio::net::TcpStream::connect(host)
            .await
            .expect("TCP connects");
        Self::over_with(url, headers, Box::new(tcp)).await
    }

    /// Upgrades on `stream` (TLS or not) with the request for `url` and extra headers.
    pub async fn over_with(
        url: &str,
        headers: &[(&'static str, &str)],
        stream: Transport,
    ) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().expect("request");
        for (name, value) in headers {
            let value = value.parse().expect("header value");
            request.headers_mut().append(*name, value);
        }
        let (ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("websocket connects");
        WsClient { ws }
    }

    /// Sends a JSON value as a text frame.
    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send");
    }

    /// Sends one raw frame as it is (invalid UTF-8 in a text frame, a bad close frame…).
    pub async fn send_frame(
        &mut self,
        frame: tokio_tungstenite::tungstenite::protocol::frame::Frame,
    ) {
        self.ws.send(Message::Frame(frame)).await.expect("send");
    }

    /// Sends an event.
    pub async fn emit(&mut self, event: &str, data: Value) {
        self.send_json(serde_json::json!({ "event": event, "data": data }))
            .await;
    }

    /// Authenticates with `token` and returns the client id from `connected`.
    pub async fn authenticate(&mut self, token: &str) -> String {
        self.emit("authenticate", serde_json::json!({ "token": token }))
            .await;
        let connected = self.expect_event("connected").await;
        connected["data"]["id"]
            .as_str()
            .expect("connected.data.id")
            .to_owned()
    }

    /// The next thing the server does, within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Next {
        loop {
            let item = match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => return Next::Timeout,
                Ok(None) => return Next::Ended("stream ended".into()),
                Ok(Some(Err(e))) => return Next::Ended(e.to_string()),
                Ok(Some(Ok(m))) => m,
            };
            match item {
                Message::Text(t) => {
                    return Next::Json(serde_json::from_str(&t).expect("server sends JSON"));
                }
                Message::Binary(b) => {
                    return Next::Json(serde_json::from_slice(&b).expect("server sends JSON"));
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|CloseFrame { code, reason }| (u16::from(code), reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Next::Close(code, reason);
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }

    /// The next text message exactly as the server sent it (panics on anything else).
    pub async fn next_text(&mut self) -> String {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// The next JSON message (panics with what came instead).
    pub async fn next_json(&mut self) -> Value {
        match self.next_within(WAIT).await {
            Next::Json(v) => v,
            other => panic!("expected a JSON message, got {other:?}"),
        }
    }

    /// The next message, which must be `event` (panics with what came instead).
    pub async fn expect_event(&mut self, event: &str) -> Value {
        let v = self.next_json().await;
        assert_eq!(v["event"], event, "expected event {event:?}, got {v}");
        v
    }

    /// The next message, within `wait`, which must be `event`.
    pub async fn expect_event_within(&mut self, event: &str, wait: Duration) -> Value {
        match self.next_within(wait).await {
            Next::Json(v) if v["event"] == event => v,
            other => panic!("expected event {event:?} within {wait:?}, got {other:?}"),
        }
    }

    /// The next message must be the `error` event carrying `text` (from the protocol's
    /// one table).
    pub async fn expect_error(&mut self, text: ErrorText) {
        let v = self.expect_event("error").await;
        assert_eq!(
            v["data"]["message"],
            text.text(),
            "expected error {text:?}, got {v}"
        );
    }

    /// The next message must be an `error` event whose message contains `text`.
    pub async fn expect_error_containing(&mut self, text: &str) {
        let v = self.expect_event("error").await;
        let message = v["data"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(text),
            "expected an error with {text:?}, got {v}"
        );
    }

    /// The next thing must be a close with `reason`'s code and reason text (the table's).
    pub async fn expect_close(&mut self, reason: CloseReason) {
        let (code, text) = (reason.code(), reason.reason());
        match self.next_within(WAIT).await {
            Next::Close(c, r) => {
                assert_eq!((c, r.as_str()), (code, text), "expected close {reason:?}");
            }
            other => panic!("expected close {reason:?} ({code}), got {other:?}"),
        }
    }

    /// Nothing arrives for a while.
    pub async fn expect_silence(&mut self) {
        match self.next_within(QUIET).await {
            Next::Timeout => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    /// Joins rooms and waits until the server has processed it (a heartbeat round trip is
    /// not observable, so wait briefly).
    pub async fn join(&mut self, rooms: &[&str]) {
        self.emit("join", serde_json::json!({ "rooms": rooms }))
            .await;
    }

    /// Leaves rooms.
    pub async fn leave(&mut self, rooms: &[&str]) {
        self.emit("leave", serde_json::json!({ "rooms": rooms }))
            .await;
    }

    /// Closes from the client side.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The underlying stream (for raw frame tests).
    pub fn inner(&mut self) -> &mut WebSocketStream<Transport> {
        &mut self.ws
    }
}

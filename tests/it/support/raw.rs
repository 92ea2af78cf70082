//! Raw HTTP/1.1 over loopback: send any bytes (malformed, pipelined, partial), read exactly
//! what comes back, and learn whether the server closed the connection.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{QUIET, WAIT};

/// One client connection driven byte by byte.
pub struct RawConn {
    pub stream: TcpStream,
}

/// What came back: the bytes, and whether the server closed (EOF or reset).
#[derive(Debug)]
pub struct Received {
    pub text: String,
    pub closed: bool,
}

impl Received {
    /// The status of every response in `text`, skipping bodies by `Content-Length` (not
    /// for answers to HEAD, whose length announces a body that is not sent).
    pub fn statuses(&self) -> Vec<u16> {
        let mut rest = self.text.as_str();
        let mut statuses = Vec::new();
        while let Some((head, after)) = rest.split_once("\r\n\r\n") {
            statuses.push(status_of(head));
            let len = content_length(head).min(after.len());
            rest = &after[len..];
        }
        statuses
    }
}

impl RawConn {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        RawConn { stream }
    }

    /// Sends `bytes` (panics if the server already reset the connection).
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Reads until the server closes or has been silent for `quiet`.
    pub async fn read_for(&mut self, quiet: Duration) -> Received {
        let mut raw = Vec::new();
        let closed = loop {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(quiet, self.stream.read(&mut chunk)).await {
                Err(_) => break false,
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(n)) => raw.extend_from_slice(&chunk[..n]),
            }
        };
        Received {
            text: String::from_utf8_lossy(&raw).into_owned(),
            closed,
        }
    }

    /// What arrives within [`QUIET`] (the connection may stay open).
    pub async fn read_quiet(&mut self) -> Received {
        self.read_for(QUIET).await
    }

    /// Everything until the server closes; panics if it does not within [`WAIT`].
    pub async fn read_until_closed(&mut self) -> Received {
        let received = self.read_for(WAIT).await;
        assert!(
            received.closed,
            "the server kept the connection open after {received:?}"
        );
        received
    }
}

/// The status the server answers a WebSocket upgrade of `/ws` from `origin` with.
pub async fn upgrade_status(addr: SocketAddr, origin: Option<&str>) -> u16 {
    let mut conn = RawConn::open(addr).await;
    conn.send(upgrade("/ws", origin).as_bytes()).await;
    status_of(&conn.read_quiet().await.text)
}

/// The status code of a response head (0 when unreadable).
pub fn status_of(head: &str) -> u16 {
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The `Content-Length` of a response head (0 when absent).
pub fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// A GET of `path` with `Host` and any extra header lines (each ending in `\r\n`).
pub fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n")
}

/// A WebSocket upgrade of `path`, with an `Origin` header when given.
pub fn upgrade(path: &str, origin: Option<&str>) -> String {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    get(
        path,
        &format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}"
        ),
    )
}

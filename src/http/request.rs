//! Reading one HTTP/1.1 request head (and body) from a socket, bounded in size and time.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The largest request head accepted (431 beyond).
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 1024 * 1024;
const MAX_HEADERS: usize = 48;
/// Room made in the buffer before each read of a request head.
const READ_CHUNK: usize = 1024;

/// A parsed request head. Header names are lowercase.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// HTTP minor version (0 or 1).
    pub minor_version: u8,
    /// Header name (lowercase) and value pairs.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header lists `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether this asks for a WebSocket upgrade.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header_has_token("upgrade", "websocket")
    }

    /// Whether the connection stays open after the response.
    pub fn keep_alive(&self) -> bool {
        if self.header_has_token("connection", "close") {
            return false;
        }
        self.minor_version >= 1 || self.header_has_token("connection", "keep-alive")
    }
}

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The peer closed the connection before a complete head.
    #[error("connection closed")]
    Closed,
    /// The head or body did not arrive in time (slowloris protection).
    #[error("request timed out")]
    Timeout,
    /// The head exceeded [`MAX_HEAD`]: 431.
    #[error("request head too large")]
    HeadTooLarge,
    /// The body exceeded [`MAX_BODY`]: 413.
    #[error("request body too large")]
    BodyTooLarge,
    /// Not HTTP/1.x, or a body without `Content-Length`: 400.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// A socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a request head; `buf` carries bytes between pipelined requests. Returns the head;
/// the bytes after it stay at the front of `buf`.
pub async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<RequestHead, RequestError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some((head, used)) = parse_head(buf)? {
            buf.drain(..used);
            return Ok(head);
        }
        if buf.len() >= MAX_HEAD {
            return Err(RequestError::HeadTooLarge);
        }
        // Read straight into the buffer's spare room: no zeroed chunk in this future.
        buf.reserve(READ_CHUNK);
        let n = tokio::time::timeout_at(deadline, stream.read_buf(buf))
            .await
            .map_err(|_| RequestError::Timeout)??;
        if n == 0 {
            return Err(RequestError::Closed);
        }
    }
}

/// Reads the body announced by `Content-Length` (empty when absent).
pub async fn read_body(
    stream: &mut TcpStream,
    head: &RequestHead,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, RequestError> {
    if head.header("transfer-encoding").is_some() {
        return Err(RequestError::Malformed(
            "chunked bodies are not supported; send Content-Length",
        ));
    }
    let len = match head.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| RequestError::Malformed("bad Content-Length"))?,
    };
    if len > MAX_BODY {
        return Err(RequestError::BodyTooLarge);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    buf.reserve(len.saturating_sub(buf.len()));
    while buf.len() < len {
        let n = tokio::time::timeout_at(deadline, stream.read_buf(buf))
            .await
            .map_err(|_| RequestError::Timeout)??;
        if n == 0 {
            return Err(RequestError::Closed);
        }
    }
    Ok(buf.drain(..len).collect())
}

/// Parses a complete request head at the front of `buf`: the head and its length in bytes,
/// `None` while it is incomplete. Pure (no I/O), so it is fuzzed directly.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(_) => return Err(RequestError::Malformed("not an HTTP/1.x request")),
    };
    let target = req.path.unwrap_or("/");
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    let head = RequestHead {
        method: req.method.unwrap_or("GET").to_owned(),
        path: path.to_owned(),
        minor_version: req.version.unwrap_or(1),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    };
    Ok(Some((head, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_head_and_leaves_the_rest() {
        let raw = b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\r\nrest";
        let (head, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.path, "/ws");
        assert!(head.is_websocket_upgrade());
        assert!(head.header_has_token("connection", "upgrade"));
        assert_eq!(&raw[used..], b"rest");
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost").unwrap().is_none());
        assert!(parse_head(b"\x16\x03\x01garbage\r\n\r\n").is_err());
    }
}

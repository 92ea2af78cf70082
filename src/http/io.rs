//! The socket side of one HTTP connection: reads bounded in size and time, writes bounded
//! in time, and the two ways to end.
//!
//! # Contract
//!
//! - [`HttpStream`] owns the socket and the read buffer that carries bytes between
//!   pipelined requests; it runs on the shard task that accepted the connection.
//! - Every read and every write is bounded by the same timeout (`request_timeout`): a
//!   peer that stops sending mid-request gets [`RequestError::Timeout`] (answered 408), a
//!   peer that sends nothing of a new request gets [`RequestError::Idle`] (closed
//!   quietly), and a peer that stops reading makes [`HttpStream::send`] fail, after which
//!   the socket is dropped: no descriptor is held for a client that never reads.
//! - [`HttpStream::close`] ends after a final response: it shuts down the write side and
//!   discards what the peer still sends for a short, bounded while, so the response is
//!   not destroyed by a reset for unread bytes. Dropping the value closes at once.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::request::{self, RequestError, RequestHead};

/// Room made in the buffer before each read.
const READ_CHUNK: usize = 1024;
/// The longest [`HttpStream::close`] waits for the peer to finish sending.
const LINGER: Duration = Duration::from_secs(2);

/// One accepted connection while it speaks HTTP/1.1, over TCP or TLS.
pub(crate) struct HttpStream<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> HttpStream<S> {
    /// Wraps an accepted socket; `timeout` bounds each request's reads and each write.
    pub fn new(stream: S, timeout: Duration) -> Self {
        HttpStream {
            stream,
            buf: Vec::new(),
            timeout,
        }
    }

    /// Reads the next request head; the bytes after it stay buffered.
    pub async fn read_head(&mut self) -> Result<RequestHead, RequestError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some((head, used)) = request::parse_head(&self.buf)? {
                self.buf.drain(..used);
                return Ok(head);
            }
            let idle = self.buf.is_empty();
            self.fill(deadline)
                .await
                .map_err(|err| idle_or(err, idle))?;
        }
    }

    /// Reads a body of `len` bytes (already checked against the body limit).
    pub async fn read_body(&mut self, len: usize) -> Result<Vec<u8>, RequestError> {
        let deadline = Instant::now() + self.timeout;
        self.buf.reserve(len.saturating_sub(self.buf.len()));
        while self.buf.len() < len {
            self.fill(deadline).await?;
        }
        Ok(self.buf.drain(..len).collect())
    }

    /// One read into the buffer's spare room (no zeroed chunk in this future).
    async fn fill(&mut self, deadline: Instant) -> Result<(), RequestError> {
        self.buf.reserve(READ_CHUNK);
        let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf));
        match read.await.map_err(|_| RequestError::Timeout)?? {
            0 => Err(RequestError::Closed),
            _ => Ok(()),
        }
    }

    /// Writes `bytes` (flushed: a TLS stream may hold records back), failing with
    /// `TimedOut` when the peer does not take them in time.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stream = &mut self.stream;
        let write = async move {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        let write = tokio::time::timeout(self.timeout, write);
        write.await.unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer did not read the response in time",
            ))
        })
    }

    /// Ends gracefully after a final response: FIN, then what the peer still sends is
    /// discarded until it closes or the linger time (at most the timeout) passes.
    pub async fn close(mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER.min(self.timeout);
        while self.discard(deadline).await.is_ok() {}
    }

    /// One read whose bytes are thrown away.
    async fn discard(&mut self, deadline: Instant) -> Result<(), RequestError> {
        self.buf.clear();
        self.fill(deadline).await
    }

    /// The socket and the bytes received after the last request head.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        (self.stream, self.buf)
    }
}

/// A timeout before any byte of the request is [`RequestError::Idle`] (closed quietly).
fn idle_or(err: RequestError, idle: bool) -> RequestError {
    match err {
        RequestError::Timeout if idle => RequestError::Idle,
        err => err,
    }
}

//! Publishing over `POST /api/publish`: `conns` keep-alive connections, each taking the
//! next queued message, stamping it, and waiting for the response (no pipelining, so any
//! HTTP/1.1 server works). With one connection, per-room order is the publish order.

use super::endpoint::HttpEndpoint;
use super::{Item, Messages, Tally};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

struct Shared {
    queue: VecDeque<Item>,
    tally: Tally,
    closing: bool,
}

/// HTTP publisher with a queue drained by connection tasks.
pub struct HttpSink {
    shared: Rc<RefCell<Shared>>,
    wake: Rc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl HttpSink {
    /// Opens `ep.conns` connections (failing fast if the server is unreachable).
    pub async fn connect(
        ep: &HttpEndpoint,
        msgs: Arc<Messages>,
        rooms: usize,
    ) -> Result<Self, String> {
        let shared = Rc::new(RefCell::new(Shared {
            queue: VecDeque::new(),
            tally: Tally::new(rooms),
            closing: false,
        }));
        let wake = Rc::new(Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..ep.conns {
            let conn = HttpConn::open(ep.clone()).await?;
            tasks.push(tokio::task::spawn_local(drive(
                conn,
                msgs.clone(),
                shared.clone(),
                wake.clone(),
            )));
        }
        Ok(HttpSink {
            shared,
            wake,
            tasks,
        })
    }

    /// Queues messages (they are stamped when a connection takes them).
    pub fn send(&mut self, items: impl Iterator<Item = Item>) {
        self.shared.borrow_mut().queue.extend(items);
        self.wake.notify_waiters();
    }

    /// Lets the queue drain for up to `wait`, then returns the tally.
    pub async fn finish(self, wait: Duration) -> Tally {
        self.shared.borrow_mut().closing = true;
        self.wake.notify_waiters();
        let all = futures_join(self.tasks);
        let _ = tokio::time::timeout(wait, all).await;
        let mut s = self.shared.borrow_mut();
        let left = s.queue.len() as u64;
        if left > 0 {
            s.tally
                .error(format!("{left} messages still queued at the end"));
            s.tally.errors += left - 1;
        }
        std::mem::take(&mut s.tally)
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

async fn drive(
    mut conn: HttpConn,
    msgs: Arc<Messages>,
    shared: Rc<RefCell<Shared>>,
    wake: Rc<Notify>,
) {
    let mut body = Vec::with_capacity(512);
    loop {
        let next = {
            let mut s = shared.borrow_mut();
            match s.queue.pop_front() {
                Some(item) => Some(item),
                None if s.closing => return,
                None => None,
            }
        };
        let Some(item) = next else {
            wake.notified().await;
            continue;
        };
        body.clear();
        msgs.write_body(item, false, &mut body);
        let (room, seq) = msgs.slot(item);
        let at = Instant::now();
        shared.borrow_mut().tally.sent += 1;
        let result = conn.post(&body).await;
        let mut s = shared.borrow_mut();
        match result {
            Ok(202) => s.tally.ack(room, seq.is_some(), at),
            Ok(status) => s
                .tally
                .error(format!("/api/publish answered HTTP {status}")),
            Err(e) => s.tally.error(e),
        }
    }
}

/// One keep-alive connection; reconnects after the server closes it.
struct HttpConn {
    ep: HttpEndpoint,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    req: Vec<u8>,
}

impl HttpConn {
    async fn open(ep: HttpEndpoint) -> Result<Self, String> {
        let mut c = HttpConn {
            ep,
            stream: None,
            buf: Vec::with_capacity(4096),
            req: Vec::with_capacity(1024),
        };
        c.reconnect().await?;
        Ok(c)
    }

    async fn reconnect(&mut self) -> Result<(), String> {
        let s = TcpStream::connect(self.ep.addr)
            .await
            .map_err(|e| format!("connect to {}: {e}", self.ep.addr))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        self.stream = Some(s);
        self.buf.clear();
        Ok(())
    }

    /// Sends one request; returns the status code.
    async fn post(&mut self, body: &[u8]) -> Result<u16, String> {
        if self.stream.is_none() {
            self.reconnect().await?;
        }
        self.req.clear();
        self.req.extend_from_slice(
            format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                self.ep.path,
                self.ep.host,
                self.ep.api_key,
                body.len()
            )
            .as_bytes(),
        );
        self.req.extend_from_slice(body);
        let result = self.exchange().await;
        if !matches!(result, Ok((_, true))) {
            self.stream = None; // error or `Connection: close`: reconnect next time
        }
        result.map(|(status, _)| status)
    }

    async fn exchange(&mut self) -> Result<(u16, bool), String> {
        let stream = self.stream.as_mut().ok_or("not connected")?;
        stream
            .write_all(&self.req)
            .await
            .map_err(|e| format!("HTTP write: {e}"))?;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((status, keep_alive, used)) = parse_response(&self.buf)? {
                self.buf.drain(..used);
                return Ok((status, keep_alive));
            }
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("HTTP read: {e}"))?;
            if n == 0 {
                return Err("server closed the HTTP connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Parses a complete response (head + body) from `buf`: status, keep-alive, bytes used.
fn parse_response(buf: &[u8]) -> Result<Option<(u16, bool, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad HTTP response: {e}")),
    };
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    let keep_alive = header("connection").is_none_or(|v| !v.contains("close"));
    let status = resp.code.unwrap_or(0);
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Ok(chunked_end(&buf[head..]).map(|n| (status, keep_alive, head + n)));
    }
    let len: usize = header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok((buf.len() >= head + len).then_some((status, keep_alive, head + len)))
}

/// Length of a complete chunked body at the front of `b`, if complete.
fn chunked_end(b: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let eol = pos + memchr::memmem::find(&b[pos..], b"\r\n")?;
        let size_text = std::str::from_utf8(&b[pos..eol])
            .ok()?
            .split(';')
            .next()?
            .trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        pos = eol + 2 + size + 2;
        if b.len() < pos {
            return None;
        }
        if size == 0 {
            return Some(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_responses() {
        let r = b"HTTP/1.1 202 Accepted\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
        assert_eq!(parse_response(r).unwrap(), Some((202, true, r.len())));
        assert_eq!(parse_response(&r[..r.len() - 1]).unwrap(), None);
        let c = b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(parse_response(c).unwrap(), Some((401, false, c.len())));
        assert_eq!(parse_response(&c[..c.len() - 2]).unwrap(), None);
    }
}

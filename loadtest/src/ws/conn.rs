//! One client WebSocket connection over a tokio [`TcpStream`], plain or TLS
//! ([`super::transport`]).
//!
//! Ownership: a [`WsConn`] belongs to exactly one task on one worker thread. Reads land in
//! a *per-thread* read buffer (`READ_BUF`, 256 KiB, never shared across threads and never
//! borrowed across an `.await`); only the bytes of a partial trailing frame are copied into
//! the connection's own `carry`. So a connection costs a few hundred bytes at rest, and a
//! worker reading thousands of connections touches one hot buffer.
//!
//! Every complete text/binary message is handed to the caller's callback with its arrival
//! time (µs since the Unix epoch, read once per `read()` call, not per frame); a message
//! that arrived compressed (permessage-deflate, when [`ConnOptions::deflate`] offered it
//! and the server agreed) is inflated first ([`super::message`], [`super::inflate`]), so
//! the callback sees the same bytes either way. Pings are answered by
//! [`WsConn::flush_control`]; the server's close frame is recorded, answered on the next
//! flush, and ends the read side ([`ReadStatus::Closed`]).
//!
//! Accounting: the upgrade, and per drain the whole frames read and the messages
//! delivered (before and after inflation), go to the run's [`WireMeter`] when one is
//! given.

use super::WsError;
use super::extension::Agreed;
use super::frame::{self, Frame, Rules};
use super::handshake::{self, Upgraded};
use super::inflate::Window;
use super::message::Assembler;
use super::tls::TlsClient;
use super::transport::{ReadOnce, Transport};
use super::wire::{WireCounts, WireMeter};
use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

/// Size of the per-thread read buffer.
const READ_BUF_SIZE: usize = 256 * 1024;
/// `read()` calls per [`WsConn::drain`] before yielding to other connections.
const MAX_READS_PER_DRAIN: usize = 16;
/// Largest server message accepted (far above any server's limit; protects memory).
const MAX_PAYLOAD: u64 = 64 * 1024 * 1024;

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF_SIZE]);
}

/// State of the read side after a [`WsConn::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// Still open; nothing more to read right now.
    Open,
    /// The server sent a close frame with this code (if any).
    Closed(Option<u16>),
    /// The server closed TCP without a close frame.
    Eof,
}

/// Result of one [`WsConn::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Read-side state.
    pub status: ReadStatus,
    /// Bytes read from the socket by this call.
    pub bytes: u64,
    /// `read(2)` calls that returned data.
    pub reads: u64,
}

/// How a graceful close ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseOutcome {
    /// The server's close frame arrived (with this code, if it carried one).
    pub server_frame: Option<Option<u16>>,
    /// The server closed TCP.
    pub eof: bool,
    /// The deadline passed first.
    pub timed_out: bool,
}

/// How a connection upgrades and where it reports what it read.
#[derive(Debug, Clone, Default)]
pub struct ConnOptions {
    /// Offer permessage-deflate (`--compression`; default off). The server may still
    /// answer without it: [`WsConn::deflate`] says what was agreed.
    pub deflate: bool,
    /// Count the upgrade and every drain here (default: nowhere).
    pub meter: Option<Arc<WireMeter>>,
}

/// A client WebSocket connection (see the module docs for the threading contract).
pub struct WsConn {
    stream: Transport,
    carry: Vec<u8>,
    rules: Rules,
    messages: Assembler,
    deflate: Option<Agreed>,
    meter: Option<Arc<WireMeter>>,
    out: Vec<u8>,
    pending_pong: Option<Vec<u8>>,
    peer_close: Option<Option<u16>>,
    close_sent: bool,
    eof: bool,
}

/// Microseconds since the Unix epoch (the clock the bench payload timestamps use).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl WsConn {
    /// Connects from `source` (port chosen by the kernel) to `addr`, runs the TLS
    /// handshake when `tls` is given, and upgrades on `path`, sending `host` as the
    /// `Host` header, with the extension offer and meter of `opts`. No timeout: wrap the
    /// call.
    pub async fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        tls: Option<&TlsClient>,
        host: &str,
        path: &str,
        opts: &ConnOptions,
    ) -> Result<(WsConn, Upgraded), WsError> {
        let tcp = tcp_connect(addr, source).await.map_err(WsError::Connect)?;
        let stream = Transport::over(tcp, tls).await.map_err(WsError::Tls)?;
        let mut conn = WsConn {
            stream,
            carry: Vec::new(),
            rules: Rules::plain(MAX_PAYLOAD),
            messages: Assembler::new(Window::PerMessage, MAX_PAYLOAD as usize),
            deflate: None,
            meter: opts.meter.clone(),
            out: Vec::with_capacity(256),
            pending_pong: None,
            peer_close: None,
            close_sent: false,
            eof: false,
        };
        let up = conn.upgrade(host, path, opts.deflate).await?;
        conn.agree(up.deflate);
        Ok((conn, up))
    }

    /// Applies what the upgrade agreed: RSV1 allowed, and the inflate window the server's
    /// context takeover needs.
    fn agree(&mut self, deflate: Option<Agreed>) {
        if let Some(m) = &self.meter {
            m.upgraded(deflate.as_ref());
        }
        if let Some(a) = deflate {
            self.rules.deflate = true;
            let window = Window::for_server(a.server_keeps_context());
            self.messages = Assembler::new(window, MAX_PAYLOAD as usize);
        }
        self.deflate = deflate;
    }

    /// permessage-deflate as agreed by the server (`None`: not offered, or declined).
    pub fn deflate(&self) -> Option<&Agreed> {
        self.deflate.as_ref()
    }

    async fn upgrade(
        &mut self,
        host: &str,
        path: &str,
        deflate: bool,
    ) -> Result<Upgraded, WsError> {
        let key = handshake::generate_key();
        self.stream
            .write_all(handshake::request(host, path, &key, deflate).as_bytes())
            .await?;
        let mut head = Vec::with_capacity(512);
        let mut chunk = [0u8; 2048];
        loop {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(WsError::Eof);
            }
            head.extend_from_slice(&chunk[..n]);
            if let Some(up) = handshake::parse_response(&head, &key, deflate)? {
                self.carry.extend_from_slice(&head[up.head_len..]);
                return Ok(up);
            }
        }
    }

    /// Sends one masked frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.out.clear();
        frame::encode_masked(
            opcode,
            payload,
            fastrand::u32(..).to_ne_bytes(),
            &mut self.out,
        );
        self.stream.write_all(&self.out).await
    }

    /// Sends one text frame.
    pub async fn send_text(&mut self, payload: &[u8]) -> io::Result<()> {
        self.send(frame::OP_TEXT, payload).await
    }

    /// Waits until the socket is readable (or was already). Cancel-safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.stream.readable().await
    }

    /// Whether bytes carried over from the last read (e.g. after the upgrade) still wait
    /// to be parsed: call [`drain`](Self::drain) before waiting for readability.
    pub fn has_buffered(&self) -> bool {
        !self.carry.is_empty()
    }

    /// Reads whatever the socket holds now (without waiting) and hands every complete
    /// message (inflated, if it came compressed) to `on_msg(payload, arrival_us)`.
    pub fn drain<F: FnMut(&[u8], u64)>(&mut self, on_msg: &mut F) -> Result<Drained, WsError> {
        let mut counts = WireCounts::default();
        let drained = READ_BUF.with_borrow_mut(|buf| self.drain_into(buf, on_msg, &mut counts));
        if let Some(m) = &self.meter {
            m.add(&counts);
        }
        drained
    }

    fn drain_into<F: FnMut(&[u8], u64)>(
        &mut self,
        buf: &mut Vec<u8>,
        on_msg: &mut F,
        counts: &mut WireCounts,
    ) -> Result<Drained, WsError> {
        let mut filled = self.carry.len();
        ensure_room(buf, filled);
        buf[..filled].copy_from_slice(&self.carry);
        self.carry.clear();
        if filled > 0 {
            filled = self.parse_front(buf, filled, now_us(), on_msg, counts)?;
        }
        let (mut bytes, mut reads) = (0u64, 0u64);
        for _ in 0..MAX_READS_PER_DRAIN {
            if self.peer_close.is_some() || self.eof {
                break;
            }
            match self.read_once(&mut buf[filled..])? {
                ReadOnce::Eof => self.eof = true,
                ReadOnce::WouldBlock => break,
                ReadOnce::Data { n, drained } => {
                    bytes += n as u64;
                    reads += 1;
                    filled = self.parse_front(buf, filled + n, now_us(), on_msg, counts)?;
                    ensure_room(buf, filled);
                    if drained {
                        break;
                    }
                }
            }
        }
        self.carry.extend_from_slice(&buf[..filled]);
        Ok(Drained {
            status: self.status(),
            bytes,
            reads,
        })
    }

    /// Parses the complete frames of `buf[..filled]`, moves the partial rest to the front
    /// and returns its length.
    fn parse_front<F: FnMut(&[u8], u64)>(
        &mut self,
        buf: &mut [u8],
        filled: usize,
        now: u64,
        on_msg: &mut F,
        counts: &mut WireCounts,
    ) -> Result<usize, WsError> {
        let mut pos = 0;
        while self.peer_close.is_none() {
            let Some((f, used)) = frame::decode(&buf[pos..filled], self.rules)? else {
                break;
            };
            pos += used;
            counts.frame(used);
            self.on_frame(f, now, on_msg, counts)?;
        }
        buf.copy_within(pos..filled, 0);
        Ok(filled - pos)
    }

    fn on_frame<F: FnMut(&[u8], u64)>(
        &mut self,
        f: Frame<'_>,
        now: u64,
        on_msg: &mut F,
        counts: &mut WireCounts,
    ) -> Result<(), WsError> {
        match f.opcode {
            frame::OP_TEXT | frame::OP_BINARY | frame::OP_CONTINUATION => {
                if let Some(d) = self.messages.push(&f, |m| on_msg(m, now))? {
                    counts.message(d.len, d.compressed);
                }
            }
            frame::OP_PING => self.pending_pong = Some(f.payload.to_vec()),
            frame::OP_CLOSE => self.peer_close = Some(frame::close_code(f.payload)),
            _ => {} // pong
        }
        Ok(())
    }

    /// One non-blocking read (see [`Transport::read_once`]).
    fn read_once(&mut self, buf: &mut [u8]) -> io::Result<ReadOnce> {
        self.stream.read_once(buf)
    }

    fn status(&self) -> ReadStatus {
        match (self.peer_close, self.eof) {
            (Some(code), _) => ReadStatus::Closed(code),
            (None, true) => ReadStatus::Eof,
            (None, false) => ReadStatus::Open,
        }
    }

    /// Writes what the last drain owes the server: a pong for a ping, and the close reply
    /// after the server's close frame.
    pub async fn flush_control(&mut self) -> io::Result<()> {
        if let Some(p) = self.pending_pong.take() {
            self.send(frame::OP_PONG, &p).await?;
        }
        if let Some(code) = self.peer_close
            && !self.close_sent
        {
            self.close_sent = true;
            let payload = code
                .map(|c| frame::close_payload(c, ""))
                .unwrap_or_default();
            self.send(frame::OP_CLOSE, &payload).await?;
        }
        Ok(())
    }

    /// Closes gracefully: sends a close frame with `code` (unless one was exchanged), then
    /// reads until the server's close frame and its TCP close, or until `wait` passes.
    pub async fn close(mut self, code: u16, wait: Duration) -> CloseOutcome {
        if !self.close_sent {
            self.close_sent = true;
            if self
                .send(frame::OP_CLOSE, &frame::close_payload(code, ""))
                .await
                .is_err()
            {
                return self.outcome(false);
            }
        }
        let timed_out = tokio::time::timeout(wait, self.await_close())
            .await
            .is_err();
        self.outcome(timed_out)
    }

    /// Reads (and ignores) messages until the server's close frame, then until EOF.
    async fn await_close(&mut self) {
        let mut ignore = |_: &[u8], _: u64| {};
        let mut first = true;
        while self.peer_close.is_none() && !self.eof {
            let ready = first || self.stream.readable().await.is_ok();
            first = false;
            if !ready || self.drain(&mut ignore).is_err() {
                self.eof = true;
            }
        }
        let mut sink = [0u8; 512];
        while !self.eof {
            if matches!(self.stream.read(&mut sink).await, Ok(0) | Err(_)) {
                self.eof = true;
            }
        }
    }

    /// Drops the connection abruptly, as a client whose network or process died: no
    /// close frame, and `SO_LINGER` 0 so the kernel resets the TCP connection (RST)
    /// instead of closing it (FIN). If the option cannot be set, the socket is still
    /// dropped (a FIN, still without a close frame).
    pub fn abort(self) {
        let _ = self.stream.tcp().set_zero_linger();
    }

    fn outcome(&self, timed_out: bool) -> CloseOutcome {
        CloseOutcome {
            server_frame: self.peer_close,
            eof: self.eof,
            timed_out,
        }
    }
}

fn ensure_room(buf: &mut Vec<u8>, filled: usize) {
    // A frame larger than the buffer grows it (per thread, kept for later reads).
    if buf.len() - filled < READ_BUF_SIZE / 4 {
        buf.resize((buf.len() * 2).max(filled + READ_BUF_SIZE / 2), 0);
    }
}

async fn tcp_connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::inflate::tests::Sender;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers one upgrade with `extensions` (when given), then writes `frames` and
    /// waits for the client to go.
    async fn serve_once(listener: tokio::net::TcpListener, extensions: &str, frames: Vec<u8>) {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap();
            head.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        assert!(text.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        ));
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_string();
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extensions}\r\n",
            handshake::accept_for(&key)
        );
        s.write_all(answer.as_bytes()).await.unwrap();
        s.write_all(&frames).await.unwrap();
        let _ = s.read(&mut chunk).await;
    }

    #[tokio::test]
    async fn a_server_that_keeps_context_is_inflated_per_connection_and_counted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (one, two) = (
            b"{\"event\":\"bench\",\"data\":{\"n\":1}}".repeat(8),
            b"second".repeat(50),
        );
        let mut tx = Sender::new(true);
        let (c1, c2) = (tx.message(&one), tx.message(&two));
        let mut frames = Vec::new();
        frame::encode_server(0x80 | 0x40 | frame::OP_TEXT, &c1, &mut frames);
        frame::encode_server(0x40 | frame::OP_TEXT, &c2[..3], &mut frames);
        frame::encode_server(0x80 | frame::OP_PING, b"p", &mut frames);
        frame::encode_server(0x80 | frame::OP_CONTINUATION, &c2[3..], &mut frames);
        let wire_len = frames.len() as u64;
        let server = tokio::spawn(serve_once(
            listener,
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            frames,
        ));
        let meter = Arc::new(WireMeter::default());
        let opts = ConnOptions {
            deflate: true,
            meter: Some(meter.clone()),
        };
        let (mut conn, up) = WsConn::connect(addr, None, None, "localhost", "/ws", &opts)
            .await
            .expect("upgrades");
        assert!(up.deflate.is_some_and(|a| a.server_keeps_context()));
        let mut got = Vec::new();
        while got.len() < 2 {
            if !conn.has_buffered() {
                conn.readable().await.unwrap();
            }
            conn.drain(&mut |m: &[u8], _| got.push(m.to_vec())).unwrap();
        }
        assert_eq!(got, vec![one.clone(), two.clone()]);
        let c = meter.snapshot();
        assert_eq!((c.upgrades, c.deflate_agreed, c.context_kept), (1, 1, 1));
        assert_eq!((c.messages, c.compressed_messages), (2, 2));
        assert_eq!(c.payload_bytes, (one.len() + two.len()) as u64);
        assert_eq!(c.wire_bytes, wire_len);
        conn.abort();
        server.await.unwrap();
    }
}

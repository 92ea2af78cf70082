//! A WebSocket client that speaks permessage-deflate (RFC 7692) itself, with zlib's
//! algorithms from `flate2`: it offers the extension, reads the server's frames with
//! their RSV1 bit (so a test sees which arrived compressed, and their wire size), and
//! can send compressed messages, well-formed or not.

use std::net::SocketAddr;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;
use super::raw_ws::RawWs;

/// The tail a sync flush ends with (removed on the wire).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// One server data message as it came.
#[derive(Debug)]
pub struct Received {
    /// RSV1 was set: it came compressed.
    pub compressed: bool,
    /// Its opcode (1 text, 2 binary, 8 close).
    pub opcode: u8,
    /// Header and payload bytes on the wire.
    pub wire_len: usize,
    /// The payload, inflated when it came compressed.
    pub payload: Vec<u8>,
}

impl Received {
    /// The payload as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).expect("a JSON message")
    }
}

/// A connection past the handshake, and what the server agreed to.
pub struct DeflateWs {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The `Sec-WebSocket-Extensions` of the `101` (`None`: no such header).
    pub extensions: Option<String>,
}

impl DeflateWs {
    /// Upgrades on `/ws` offering `offer` as `Sec-WebSocket-Extensions` (`None`: no
    /// header).
    pub async fn connect(addr: SocketAddr, offer: Option<&str>) -> DeflateWs {
        Self::connect_path(addr, "/ws", offer, "").await
    }

    /// Upgrades on `path` offering `offer`, with `extra` header lines (each ending in
    /// CRLF).
    pub async fn connect_path(
        addr: SocketAddr,
        path: &str,
        offer: Option<&str>,
        extra: &str,
    ) -> DeflateWs {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let offer = offer
            .map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}{extra}\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
                .await
                .expect("the upgrade is answered in time")
                .expect("read");
            assert!(n > 0, "closed during the upgrade: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let extensions = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim().to_owned())
        });
        buf.drain(..end);
        DeflateWs {
            stream,
            buf,
            extensions,
        }
    }

    /// Sends a text message, compressed (RSV1) or not.
    pub async fn send_text(&mut self, text: &str, compressed: bool) {
        match compressed {
            true => self.send_frame(0xC1, &deflate(text.as_bytes())).await,
            false => self.send_frame(0x81, text.as_bytes()).await,
        }
    }

    /// Sends `{"event","data"}` compressed.
    pub async fn emit_compressed(&mut self, event: &str, data: Value) {
        let text = serde_json::json!({ "event": event, "data": data }).to_string();
        self.send_text(&text, true).await;
    }

    /// Sends one masked frame: `first` byte (FIN, RSV, opcode) and `payload` as given.
    pub async fn send_frame(&mut self, first: u8, payload: &[u8]) {
        let mut frame = RawWs::header(first, payload.len());
        frame.extend(RawWs::masked(payload, 0));
        self.stream.write_all(&frame).await.expect("write");
    }

    /// Authenticates with `token` (compressed) and returns the client id.
    pub async fn authenticate(&mut self, token: &str) -> String {
        self.emit_compressed("authenticate", serde_json::json!({ "token": token }))
            .await;
        let connected = self.expect_event("connected").await;
        connected["data"]["id"].as_str().expect("id").to_owned()
    }

    /// The next message whose event is `event` (others are skipped).
    pub async fn expect_event(&mut self, event: &str) -> Value {
        loop {
            let message = self.next().await;
            assert_ne!(message.opcode, 8, "closed while waiting for {event}");
            let json = message.json();
            if json["event"] == event {
                return json;
            }
        }
    }

    /// The next data or close frame (server frames are never fragmented), within
    /// [`WAIT`].
    pub async fn next(&mut self) -> Received {
        loop {
            if let Some(frame) = self.parse() {
                if frame.opcode == 9 || frame.opcode == 10 {
                    continue;
                }
                return frame;
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("a frame in time")
                .expect("read");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The code of the server's close frame, once it comes.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            let frame = self.next().await;
            if frame.opcode == 8 {
                return u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
            }
        }
    }

    /// Takes one complete frame from the buffer.
    fn parse(&mut self) -> Option<Received> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
        assert!(b[0] & 0x80 != 0, "server frames are final");
        assert_eq!(b[0] & 0x30, 0, "RSV2 and RSV3 are clear");
        let (len, at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < at + len {
            return None;
        }
        let compressed = b[0] & 0x40 != 0;
        let opcode = b[0] & 0x0f;
        let body = &b[at..at + len];
        assert!(!(compressed && opcode >= 8), "RSV1 on a control frame");
        let payload = match compressed {
            true => inflate(body),
            false => body.to_vec(),
        };
        let received = Received {
            compressed,
            opcode,
            wire_len: at + len,
            payload,
        };
        self.buf.drain(..at + len);
        Some(received)
    }
}

/// `data` as a permessage-deflate message body: raw DEFLATE, sync flush, tail removed.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut compress = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    compress
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .expect("compress");
    assert!(out.ends_with(&TAIL), "a sync flush ends with the tail");
    out.truncate(out.len() - TAIL.len());
    out
}

/// Inflates one message body (no context kept between messages).
pub fn inflate(body: &[u8]) -> Vec<u8> {
    let mut input = body.to_vec();
    input.extend_from_slice(&TAIL);
    let mut decompress = Decompress::new(false);
    let mut out = Vec::with_capacity(body.len() * 8 + 64);
    loop {
        let before = decompress.total_in() as usize;
        decompress
            .decompress_vec(&input[before..], &mut out, FlushDecompress::Sync)
            .expect("the server's compressed message inflates on its own");
        if decompress.total_in() as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

//! A raw WebSocket peer: upgrades by hand, then writes bytes exactly as a test wants
//! them (an unfinished frame, a frame split anywhere) and reads what comes back.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// A socket past the WebSocket handshake.
pub struct RawWs {
    stream: TcpStream,
}

/// The mask every frame of a raw peer uses.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

impl RawWs {
    /// Connects to `addr` and upgrades on `/ws`.
    pub async fn connect(addr: std::net::SocketAddr) -> RawWs {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(super::UPGRADE_REQUEST)
            .await
            .expect("write upgrade");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n = tokio::time::timeout(WAIT, stream.read(&mut byte)).await;
            assert!(matches!(n, Ok(Ok(1))), "upgrade answered: {head:?}");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        RawWs { stream }
    }

    /// The header of a masked frame: `first` byte (FIN + opcode) and a payload of `len`.
    pub fn header(first: u8, len: usize) -> Vec<u8> {
        let mut out = vec![first];
        match len {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&MASK);
        out
    }

    /// Payload bytes starting `offset` bytes into a frame's payload, masked.
    pub fn masked(payload: &[u8], offset: usize) -> Vec<u8> {
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[(offset + i) % 4])
            .collect()
    }

    /// Writes bytes as they are.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads until the server's close frame and returns its code (`None`: the
    /// connection ended without one).
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(code) = close_in(&seen) {
                return Some(code);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }
}

/// The code of the first close frame in a stream of server frames, once complete.
fn close_in(mut frames: &[u8]) -> Option<u16> {
    while frames.len() >= 2 {
        let (opcode, len) = (frames[0] & 0x0f, usize::from(frames[1] & 0x7f));
        let (header, len) = match len {
            126 if frames.len() >= 4 => {
                (4, usize::from(u16::from_be_bytes([frames[2], frames[3]])))
            }
            127 => return None,
            126 => return None,
            n => (2, n),
        };
        if frames.len() < header + len {
            return None;
        }
        if opcode == 0x8 && len >= 2 {
            return Some(u16::from_be_bytes([frames[header], frames[header + 1]]));
        }
        frames = &frames[header + len..];
    }
    None
}

//! A minimal client-side WebSocket: hand-written upgrade, a borrowing frame codec and a
//! connection type tuned for reading many small server frames per `read()`.
//!
//! Layers are separate as in tungstenite: [`frame`] is pure bytes, [`handshake`] is pure
//! HTTP, [`conn`] does the I/O over [`transport`] (TCP or TLS).

pub mod conn;
pub mod frame;
pub mod handshake;
pub mod tls;
pub mod transport;

pub use conn::{CloseOutcome, Drained, ReadStatus, WsConn};
pub use tls::TlsClient;

use std::io;
use thiserror::Error;

/// Why a WebSocket connection failed.
#[derive(Debug, Error)]
pub enum WsError {
    /// TCP connect (or bind to the source address) failed.
    #[error("connect: {0}")]
    Connect(io::Error),
    /// The TLS handshake failed (certificate not trusted, not a TLS server…).
    #[error("tls: {0}")]
    Tls(io::Error),
    /// The HTTP upgrade was refused or malformed.
    #[error("upgrade: {0}")]
    Handshake(#[from] handshake::HandshakeError),
    /// The server broke the framing rules.
    #[error("protocol: {0}")]
    Frame(#[from] frame::FrameError),
    /// Read or write failed after the connection was up.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The server closed the TCP connection before the upgrade completed.
    #[error("connection closed during the upgrade")]
    Eof,
}

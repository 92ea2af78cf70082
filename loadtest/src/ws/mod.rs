//! A minimal client-side WebSocket: hand-written upgrade, a borrowing frame codec and a
//! connection type tuned for reading many small server frames per `read()`, with
//! optional permessage-deflate (RFC 7692) on what the server sends.
//!
//! Layers are separate as in tungstenite: [`frame`] is pure bytes, [`handshake`] and
//! [`extension`] are pure HTTP, [`message`] (reassembly) and [`inflate`] are pure state,
//! [`conn`] does the I/O over [`transport`] (TCP or TLS) and counts what it read into a
//! shared [`wire::WireMeter`].

pub mod conn;
pub mod extension;
pub mod frame;
pub mod handshake;
pub mod inflate;
pub mod message;
pub mod tls;
pub mod transport;
pub mod wire;

pub use conn::{CloseOutcome, ConnOptions, Drained, ReadStatus, WsConn};
pub use tls::TlsClient;
pub use wire::{WireCounts, WireMeter};

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
    /// A compressed message could not be inflated.
    #[error("permessage-deflate: {0}")]
    Inflate(#[from] inflate::InflateError),
    /// Read or write failed after the connection was up.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The server closed the TCP connection before the upgrade completed.
    #[error("connection closed during the upgrade")]
    Eof,
}

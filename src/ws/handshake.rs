//! The HTTP/1.1 upgrade to WebSocket (RFC 6455 §4.2), server side.

use base64::Engine as _;

use crate::http::request::RequestHead;

/// Why an upgrade request was refused (answered with 400, or 426 for the version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The request was not a GET.
    #[error("a WebSocket upgrade must be a GET request")]
    NotGet,
    /// `Connection` did not list `upgrade`.
    #[error("the Connection header must contain `upgrade`")]
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` was missing or not 13.
    #[error("only Sec-WebSocket-Version 13 is supported")]
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` was missing or not 16 base64-encoded bytes.
    #[error("Sec-WebSocket-Key must be 16 bytes in base64")]
    BadKey,
}

/// Validates an upgrade request and returns the `101 Switching Protocols` response.
pub fn accept(head: &RequestHead) -> Result<Vec<u8>, HandshakeError> {
    if head.method != "GET" {
        return Err(HandshakeError::NotGet);
    }
    if !head.header_has_token("connection", "upgrade") {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = head
        .header("sec-websocket-key")
        .map(str::trim)
        .ok_or(HandshakeError::BadKey)?;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(HandshakeError::BadKey),
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes())
}

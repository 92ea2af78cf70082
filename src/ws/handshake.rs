//! The HTTP/1.1 upgrade to WebSocket (RFC 6455 §4.2), server side. It takes the few
//! header values the handshake needs, not an HTTP request type, so it depends on no HTTP
//! parser.

use base64::Engine as _;

/// The parts of an upgrade request the handshake checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpgradeRequest<'a> {
    /// The request method.
    pub method: &'a str,
    /// Whether the `Connection` header lists `upgrade` (case-insensitive).
    pub connection_upgrade: bool,
    /// `Sec-WebSocket-Version`.
    pub version: Option<&'a str>,
    /// `Sec-WebSocket-Key`.
    pub key: Option<&'a str>,
}

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

/// The complete `101 Switching Protocols` response for a `Sec-WebSocket-Accept` value,
/// with the agreed `Sec-WebSocket-Extensions` if any.
pub fn switching_protocols(accept_key: &str, extensions: Option<&str>) -> Vec<u8> {
    let extensions = extensions
        .map(|value| format!("Sec-WebSocket-Extensions: {value}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key}\r\n{extensions}\r\n"
    )
    .into_bytes()
}

/// Validates an upgrade request and returns its `Sec-WebSocket-Accept` value (the
/// engine's port writes it with [`switching_protocols`]; an application's HTTP stack
/// writes its own `101`).
pub fn accept_key(request: &UpgradeRequest<'_>) -> Result<String, HandshakeError> {
    if request.method != "GET" {
        return Err(HandshakeError::NotGet);
    }
    if !request.connection_upgrade {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    if request.version.map(str::trim) != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = request.key.map(str::trim).ok_or(HandshakeError::BadKey)?;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(HandshakeError::BadKey),
    }
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str) -> UpgradeRequest<'_> {
        UpgradeRequest {
            method: "GET",
            connection_upgrade: true,
            version: Some("13"),
            key: Some(key),
        }
    }

    #[test]
    fn answers_with_the_rfc_6455_accept_key() {
        let response = String::from_utf8(switching_protocols(
            &accept_key(&request("dGhlIHNhbXBsZSBub25jZQ==")).unwrap(),
            None,
        ))
        .unwrap();
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(!response.contains("Extensions"));
        let response = switching_protocols("k", Some("permessage-deflate"));
        assert!(String::from_utf8(response).unwrap().ends_with(
            "Sec-WebSocket-Accept: k\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        ));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let post = UpgradeRequest {
            method: "POST",
            ..request(key)
        };
        assert_eq!(accept_key(&post), Err(HandshakeError::NotGet));
        let plain = UpgradeRequest {
            connection_upgrade: false,
            ..request(key)
        };
        assert_eq!(accept_key(&plain), Err(HandshakeError::NoConnectionUpgrade));
        let old = UpgradeRequest {
            version: Some("8"),
            ..request(key)
        };
        assert_eq!(accept_key(&old), Err(HandshakeError::UnsupportedVersion));
        assert_eq!(
            accept_key(&request("c2hvcnQ=")),
            Err(HandshakeError::BadKey)
        );
    }
}

//! The client side of the HTTP/1.1 upgrade (RFC 6455 §4.1), written by hand.
//!
//! [`request`] renders the `GET` with a fresh `Sec-WebSocket-Key` (and, with
//! `--compression`, the permessage-deflate offer); [`parse_response`] accepts only `101`
//! with `Upgrade: websocket` and the matching `Sec-WebSocket-Accept`, and validates the
//! `Sec-WebSocket-Extensions` answer ([`super::extension`]). Bytes after the response head
//! belong to the frame stream and are left to the caller.

use super::extension::{self, Agreed, ExtensionError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use thiserror::Error;

/// The GUID appended to the key before hashing (RFC 6455 §1.3).
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Longest response head we accept before giving up.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Why an upgrade failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The server answered with a status other than 101.
    #[error("server answered HTTP {0} instead of 101")]
    Status(u16),
    /// 101 without `Upgrade: websocket`.
    #[error("101 response without `Upgrade: websocket`")]
    MissingUpgrade,
    /// `Sec-WebSocket-Accept` missing or not derived from our key.
    #[error("wrong or missing Sec-WebSocket-Accept")]
    BadAccept,
    /// Not parseable as an HTTP/1.1 response.
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
    /// The response head exceeded [`MAX_RESPONSE_HEAD`].
    #[error("HTTP response head too large")]
    TooLarge,
    /// The `Sec-WebSocket-Extensions` answer cannot be honoured.
    #[error("Sec-WebSocket-Extensions: {0}")]
    Extension(#[from] ExtensionError),
}

/// What we keep from a successful upgrade response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// Length of the response head (status line + headers + blank line).
    pub head_len: usize,
    /// The `Server` header, if any (recorded in the report's versions).
    pub server: Option<String>,
    /// permessage-deflate, when the server agreed to it.
    pub deflate: Option<Agreed>,
}

/// A random `Sec-WebSocket-Key` (16 random bytes, base64).
pub fn generate_key() -> String {
    let mut raw = [0u8; 16];
    raw.iter_mut().for_each(|b| *b = fastrand::u8(..));
    STANDARD.encode(raw)
}

/// The `Sec-WebSocket-Accept` value a server must answer for `key`.
pub fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// The upgrade request for `path` on `host` (the `Host` header value, with port);
/// `deflate`: offer permessage-deflate ([`extension::OFFER`]).
pub fn request(host: &str, path: &str, key: &str, deflate: bool) -> String {
    let offer = if deflate {
        format!("Sec-WebSocket-Extensions: {}\r\n", extension::OFFER)
    } else {
        String::new()
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}User-Agent: shardcast-load\r\n\r\n"
    )
}

/// Parses the response head in `buf`; `Ok(None)` means "read more". `deflate`: whether
/// the request offered permessage-deflate.
pub fn parse_response(
    buf: &[u8],
    key: &str,
    deflate: bool,
) -> Result<Option<Upgraded>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return Err(HandshakeError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    if status != 101 {
        return Err(HandshakeError::Status(status));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(HandshakeError::MissingUpgrade);
    }
    if header("sec-websocket-accept").as_deref() != Some(accept_for(key).as_str()) {
        return Err(HandshakeError::BadAccept);
    }
    let extensions: Vec<&str> = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| std::str::from_utf8(h.value).unwrap_or("\u{fffd}"))
        .collect();
    Ok(Some(Upgraded {
        head_len,
        server: header("server"),
        deflate: extension::parse_answer(&extensions, deflate)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matches_rfc_example() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn keys_are_16_bytes_base64() {
        let k = generate_key();
        assert_eq!(STANDARD.decode(&k).unwrap().len(), 16);
        assert_ne!(k, generate_key());
    }

    fn response(accept: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nServer: test\r\n\r\n"
        )
    }

    #[test]
    fn accepts_valid_101_and_reports_head_len() {
        let key = generate_key();
        let mut bytes = response(&accept_for(&key)).into_bytes();
        let head = bytes.len();
        bytes.extend_from_slice(&[0x81, 0x00]);
        let up = parse_response(&bytes, &key, false).unwrap().unwrap();
        assert_eq!(
            up,
            Upgraded {
                head_len: head,
                server: Some("test".into()),
                deflate: None,
            }
        );
        assert_eq!(parse_response(&bytes[..head - 1], &key, false), Ok(None));
        // Offered, but the server answered without the extension: plain.
        let up = parse_response(&bytes, &key, true).unwrap().unwrap();
        assert_eq!(up.deflate, None);
    }

    #[test]
    fn the_offer_is_sent_only_when_asked() {
        let with = request("h:1", "/ws", "k", true);
        assert!(with.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        ));
        assert!(with.ends_with("\r\n\r\n"));
        assert!(!request("h:1", "/ws", "k", false).contains("Extensions"));
    }

    fn with_extensions(key: &str, lines: &[&str]) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            accept_for(key)
        );
        for l in lines {
            head.push_str(&format!("Sec-WebSocket-Extensions: {l}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    #[test]
    fn the_extension_answer_is_parsed() {
        let key = generate_key();
        // What Bun (uWebSockets) answers to our offer, as seen from the refpeer.
        let bun = with_extensions(
            &key,
            &["permessage-deflate; client_no_context_takeover; server_no_context_takeover"],
        );
        let a = parse_response(&bun, &key, true)
            .unwrap()
            .unwrap()
            .deflate
            .unwrap();
        assert!(!a.server_keeps_context());
        let kept = with_extensions(&key, &["permessage-deflate"]);
        let a = parse_response(&kept, &key, true)
            .unwrap()
            .unwrap()
            .deflate
            .unwrap();
        assert!(a.server_keeps_context());
        // Agreed without an offer, or an answer we cannot honour: the upgrade fails.
        assert!(matches!(
            parse_response(&kept, &key, false),
            Err(HandshakeError::Extension(ExtensionError::NotOffered(_)))
        ));
        let twice = with_extensions(&key, &["permessage-deflate", "permessage-deflate"]);
        assert_eq!(
            parse_response(&twice, &key, true),
            Err(HandshakeError::Extension(ExtensionError::Repeated))
        );
    }

    #[test]
    fn rejects_bad_answers() {
        let key = generate_key();
        assert_eq!(
            parse_response(response("nope").as_bytes(), &key, false),
            Err(HandshakeError::BadAccept)
        );
        let r404 = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_response(r404, &key, false),
            Err(HandshakeError::Status(404))
        );
        let no_up = format!(
            "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_for(&key)
        );
        assert_eq!(
            parse_response(no_up.as_bytes(), &key, false),
            Err(HandshakeError::MissingUpgrade)
        );
        assert!(matches!(
            parse_response(b"garbage\r\n\r\n", &key, false),
            Err(HandshakeError::Malformed(_))
        ));
    }
}

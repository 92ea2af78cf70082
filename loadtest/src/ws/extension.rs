//! permessage-deflate negotiation (RFC 7692 §5, §7.1), client side: the offer we send
//! and the validation of the server's `Sec-WebSocket-Extensions` answer. Pure strings,
//! no I/O.
//!
//! The offer is [`OFFER`]: `permessage-deflate; client_max_window_bits`. It asks for
//! nothing about context takeover, so the answer shows what the server does by default
//! (shardcast and Bun/uWebSockets both answer with `server_no_context_takeover;
//! client_no_context_takeover`). We never compress what we send, so every parameter
//! about the client's own compressor is accepted and ignored.
//!
//! An answer we cannot honour fails the upgrade (§7.1: "the client MUST _Fail the
//! WebSocket Connection_"): an extension we did not offer, permessage-deflate twice,
//! an unknown or repeated parameter, a window size outside 8..=15. One leniency:
//! `server_max_window_bits` is accepted even though we did not offer it, because a
//! 15-bit inflate window decodes any smaller one.

use thiserror::Error;

/// The extension token.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The `Sec-WebSocket-Extensions` value a client with `--compression` sends.
pub const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// What the server's answer agreed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Agreed {
    /// The server resets its compressor after every message: each message inflates on
    /// its own.
    pub server_no_context_takeover: bool,
    /// The server asks us to reset our compressor per message (we never compress).
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window, when it announced one (8..=15).
    pub server_max_window_bits: Option<u8>,
    /// The window the server allows our compressor (8..=15; unused: we never compress).
    pub client_max_window_bits: Option<u8>,
}

impl Agreed {
    /// Whether a message may reference earlier ones (no `server_no_context_takeover`): the
    /// client must then keep one inflate window per connection across messages.
    pub fn server_keeps_context(&self) -> bool {
        !self.server_no_context_takeover
    }
}

/// Why an extension answer cannot be honoured.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExtensionError {
    /// The server answered with an extension although we offered none, or with one we
    /// did not offer. Check the server's extension configuration.
    #[error("the server agreed to an extension that was not offered: {0}")]
    NotOffered(String),
    /// The answer names permessage-deflate more than once.
    #[error("permessage-deflate agreed more than once")]
    Repeated,
    /// A parameter that RFC 7692 does not define, or one given twice.
    #[error("unknown or repeated permessage-deflate parameter: {0}")]
    BadParameter(String),
    /// A window size that is not a number in 8..=15, or a value on a flag parameter.
    #[error("invalid value in permessage-deflate parameter: {0}")]
    BadValue(String),
}

/// Validates the `Sec-WebSocket-Extensions` header values of a `101` answer (every
/// occurrence of the header, in order; none = no extension). `offered`: whether we sent
/// [`OFFER`]. `Ok(None)`: no extension is in use.
pub fn parse_answer(values: &[&str], offered: bool) -> Result<Option<Agreed>, ExtensionError> {
    let mut agreed = None;
    let elements = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for element in elements {
        let mut params = element.split(';').map(str::trim);
        let name = params.next().unwrap_or_default();
        if !offered || !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
            return Err(ExtensionError::NotOffered(element.to_string()));
        }
        if agreed.is_some() {
            return Err(ExtensionError::Repeated);
        }
        agreed = Some(parse_params(params)?);
    }
    Ok(agreed)
}

fn parse_params<'a>(params: impl Iterator<Item = &'a str>) -> Result<Agreed, ExtensionError> {
    let mut a = Agreed::default();
    let mut seen = [false; 4];
    for param in params.filter(|p| !p.is_empty()) {
        let (key, value) = split_param(param);
        let bad = || ExtensionError::BadValue(param.to_string());
        let slot = match key.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => {
                a.server_no_context_takeover = true;
                0
            }
            "client_no_context_takeover" if value.is_none() => {
                a.client_no_context_takeover = true;
                1
            }
            "server_max_window_bits" => {
                a.server_max_window_bits = Some(window_bits(value).ok_or_else(bad)?);
                2
            }
            "client_max_window_bits" => {
                a.client_max_window_bits = Some(window_bits(value).ok_or_else(bad)?);
                3
            }
            "server_no_context_takeover" | "client_no_context_takeover" => return Err(bad()),
            _ => return Err(ExtensionError::BadParameter(param.to_string())),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(ExtensionError::BadParameter(param.to_string()));
        }
    }
    Ok(a)
}

/// `key` and its value (quotes removed, §7.1: a quoted string is allowed).
fn split_param(param: &str) -> (&str, Option<&str>) {
    match param.split_once('=') {
        None => (param, None),
        Some((k, v)) => {
            let v = v.trim();
            let unquoted = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.trim(), Some(unquoted))
        }
    }
}

/// A window size 8..=15 (an answer must carry a value).
fn window_bits(value: Option<&str>) -> Option<u8> {
    let v = value?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(values: &[&str]) -> Agreed {
        parse_answer(values, true)
            .expect("valid answer")
            .expect("extension agreed")
    }

    #[test]
    fn shardcast_and_bun_answers_agree_without_server_context() {
        // shardcast's answer, and Bun 1.x / uWebSockets' (seen from the refpeer).
        let sc =
            agreed(&["permessage-deflate; server_no_context_takeover; client_no_context_takeover"]);
        let bun =
            agreed(&["permessage-deflate; client_no_context_takeover; server_no_context_takeover"]);
        for a in [sc, bun] {
            assert!(a.server_no_context_takeover && a.client_no_context_takeover);
            assert!(!a.server_keeps_context());
        }
    }

    #[test]
    fn a_bare_answer_means_the_server_keeps_context() {
        let a = agreed(&["permessage-deflate"]);
        assert_eq!(a, Agreed::default());
        assert!(a.server_keeps_context());
        let a = agreed(&["Permessage-Deflate; client_max_window_bits=10"]);
        assert_eq!(a.client_max_window_bits, Some(10));
        assert!(a.server_keeps_context());
    }

    #[test]
    fn window_bits_values_quoted_or_not() {
        let a = agreed(&[
            r#"permessage-deflate; server_max_window_bits="12"; client_max_window_bits=15"#,
        ]);
        assert_eq!(
            (a.server_max_window_bits, a.client_max_window_bits),
            (Some(12), Some(15))
        );
        // Split over two header lines, extra blanks.
        let a = agreed(&["", " permessage-deflate ;server_no_context_takeover "]);
        assert!(a.server_no_context_takeover);
    }

    #[test]
    fn no_header_or_an_empty_one_means_no_extension() {
        assert_eq!(parse_answer(&[], true), Ok(None));
        assert_eq!(parse_answer(&[" "], true), Ok(None));
        assert_eq!(parse_answer(&[], false), Ok(None));
    }

    #[test]
    fn answers_we_cannot_honour_fail_the_upgrade() {
        let not_offered = |v: &str| parse_answer(&[v], false);
        assert!(matches!(
            not_offered("permessage-deflate"),
            Err(ExtensionError::NotOffered(_))
        ));
        let bad = |v: &str| parse_answer(&[v], true).expect_err(v);
        assert!(matches!(
            bad("x-webkit-deflate-frame"),
            ExtensionError::NotOffered(_)
        ));
        assert_eq!(
            bad("permessage-deflate, permessage-deflate"),
            ExtensionError::Repeated
        );
        for v in [
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "permessage-deflate; client_max_window_bits=9; client_max_window_bits=9",
        ] {
            assert!(matches!(bad(v), ExtensionError::BadParameter(_)), "{v}");
        }
        for v in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; server_no_context_takeover=1",
        ] {
            assert!(matches!(bad(v), ExtensionError::BadValue(_)), "{v}");
        }
    }
}

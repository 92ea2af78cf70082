//! Negotiating permessage-deflate (RFC 7692 §5, §7.1) from a client's
//! `Sec-WebSocket-Extensions` offers.
//!
//! The server takes the first acceptable `permessage-deflate` offer and always answers
//! with `server_no_context_takeover` and `client_no_context_takeover` (§7.1.1.1 lets a
//! server add the latter): each message is compressed and inflated on its own, so no
//! connection keeps a compression window, and one compressed frame can go to every
//! recipient. An offer with a parameter this server does not know, a parameter given
//! twice, or a value out of range is declined (§7.1: the next offer is tried).
//!
//! An offer may ask the server to keep its window under 32 KiB (`server_max_window_bits`
//! below 15). The answer repeats the value, as §7.1.2.1 requires, and that client's
//! messages are then compressed for it alone, with its window: the frames every other
//! recipient shares are compressed once, with the full one. zlib cannot compress with
//! the smallest window RFC 7692 allows (2^8 bytes); a client asking for it gets its
//! messages uncompressed (§6: a sender may leave any message uncompressed).

use super::deflate::{FULL_WINDOW_BITS, MIN_WINDOW_BITS};

/// The extension's name.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// What the server agreed to for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerMessageDeflate {
    /// The `server_max_window_bits` the client asked for, if any (8..=15).
    pub server_max_window_bits: Option<u8>,
}

impl PerMessageDeflate {
    /// The window (in bits) messages to this client are compressed with: the full one
    /// unless it asked for less; `None` when it asked for a window zlib cannot use.
    pub fn outbound_window_bits(&self) -> Option<u8> {
        match self.server_max_window_bits {
            None => Some(FULL_WINDOW_BITS),
            Some(bits) if bits >= MIN_WINDOW_BITS => Some(bits),
            Some(_) => None,
        }
    }

    /// The `Sec-WebSocket-Extensions` value of the `101` response.
    pub fn response(&self) -> String {
        let mut value =
            format!("{PERMESSAGE_DEFLATE}; server_no_context_takeover; client_no_context_takeover");
        if let Some(bits) = self.server_max_window_bits {
            value.push_str(&format!("; server_max_window_bits={bits}"));
        }
        value
    }
}

/// The first acceptable permessage-deflate offer in `headers` (every
/// `Sec-WebSocket-Extensions` value of the request, in order); `None` when there is none.
///
/// ```
/// use shardcast::internals::ws::negotiate_deflate;
///
/// let agreed = negotiate_deflate(["permessage-deflate; client_max_window_bits"]).unwrap();
/// assert_eq!(
///     agreed.response(),
///     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
/// );
/// assert!(negotiate_deflate(["x-webkit-deflate-frame"]).is_none());
/// ```
pub fn negotiate<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<PerMessageDeflate> {
    headers
        .into_iter()
        .flat_map(|value| split_unquoted(value, b','))
        .find_map(accept_offer)
}

/// One offer (`name; param; param=value`), if it is an acceptable permessage-deflate.
fn accept_offer(offer: &str) -> Option<PerMessageDeflate> {
    let mut parts = split_unquoted(offer, b';');
    let name = parts.next()?.trim();
    if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
        return None;
    }
    let mut seen = [false; 4];
    let mut agreed = PerMessageDeflate {
        server_max_window_bits: None,
    };
    for param in parts {
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key.trim(), Some(unquote(value.trim())?)),
            None => (param.trim(), None),
        };
        let index = match key.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => 0,
            "client_no_context_takeover" if value.is_none() => 1,
            "server_max_window_bits" => {
                agreed.server_max_window_bits = Some(window_bits(value?)?);
                2
            }
            "client_max_window_bits" => {
                // Without a value: the client can take a limit (none is set: this server
                // inflates any window). With one: the window it will use, which is fine.
                if let Some(value) = value {
                    window_bits(value)?;
                }
                3
            }
            _ => return None,
        };
        if std::mem::replace(&mut seen[index], true) {
            return None;
        }
    }
    Some(agreed)
}

/// A window size in bits: 8 to 15, digits without a leading zero (RFC 7692 §7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.is_empty() || value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// A token, or the content of a quoted string without escapes (all a window size needs).
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .filter(|inner| !inner.contains(['"', '\\'])),
        None => Some(value),
    }
}

/// Splits `text` at `separator`, except inside double quotes.
fn split_unquoted(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        let mut quoted = false;
        for (i, byte) in current.bytes().enumerate() {
            match byte {
                b'"' => quoted = !quoted,
                b if b == separator && !quoted => {
                    rest = Some(&current[i + 1..]);
                    return Some(&current[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(offers: &[&str]) -> Option<Option<u8>> {
        negotiate(offers.iter().copied()).map(|a| a.server_max_window_bits)
    }

    #[test]
    fn browsers_and_autobahn_offers_are_accepted() {
        // Chromium and Firefox.
        assert_eq!(
            agreed(&["permessage-deflate; client_max_window_bits"]),
            Some(None)
        );
        // Autobahn 13.x: the server window limited, then several offers in one header.
        let offer = "permessage-deflate; client_no_context_takeover; client_max_window_bits; \
                     server_no_context_takeover; server_max_window_bits=9";
        assert_eq!(agreed(&[offer]), Some(Some(9)));
        let several = format!("{offer}, permessage-deflate; server_no_context_takeover");
        assert_eq!(agreed(&[&several]), Some(Some(9)));
        let quoted = r#"permessage-deflate; client_max_window_bits="10""#;
        assert_eq!(agreed(&[quoted]), Some(None));
        assert_eq!(agreed(&["PerMessage-Deflate"]), Some(None));
    }

    #[test]
    fn a_bad_offer_is_declined_and_the_next_one_taken() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_max_window_bits=x",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; mystery",
            r#"permessage-deflate; client_max_window_bits="1"0""#,
            "x-webkit-deflate-frame",
            "",
        ] {
            assert_eq!(agreed(&[bad]), None, "{bad}");
            assert_eq!(
                agreed(&[bad, "permessage-deflate; server_max_window_bits=15"]),
                Some(Some(15)),
                "the next header's offer after {bad}"
            );
        }
        // A quoted comma does not split an offer.
        assert_eq!(
            agreed(&[r#"x-other; p="a,permessage-deflate", permessage-deflate"#]),
            Some(None)
        );
    }

    #[test]
    fn the_answer_removes_every_context_and_repeats_a_window_limit() {
        let full = PerMessageDeflate {
            server_max_window_bits: None,
        };
        assert_eq!(full.outbound_window_bits(), Some(15));
        let small = PerMessageDeflate {
            server_max_window_bits: Some(9),
        };
        assert_eq!(small.outbound_window_bits(), Some(9));
        let tiny = PerMessageDeflate {
            server_max_window_bits: Some(8),
        };
        assert_eq!(tiny.outbound_window_bits(), None);
        assert_eq!(
            small.response(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9"
        );
        let fifteen = PerMessageDeflate {
            server_max_window_bits: Some(15),
        };
        assert_eq!(fifteen.outbound_window_bits(), Some(15));
    }
}

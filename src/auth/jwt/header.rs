//! The header check that runs before any cryptography: the token's shape, its `alg`
//! against the configured one, and no `crit`.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{JwtAlgorithm, JwtError};

/// Longest `alg` value quoted back in an error message (the value is attacker-chosen).
const MAX_QUOTED_ALG: usize = 32;

/// Why a token that is not three `.`-separated parts is malformed.
pub(super) const NOT_THREE_PARTS: &str = "expected three base64url parts separated by '.'";

/// The part of the header checked before any cryptography.
#[derive(Deserialize)]
struct PeekHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    crit: Option<IgnoredAny>,
}

/// Refuses tokens whose shape or header `alg` is wrong, with a precise message.
pub(super) fn check_header(token: &str, expected: JwtAlgorithm) -> Result<(), JwtError> {
    let json = URL_SAFE_NO_PAD
        .decode(header_part(token)?)
        .map_err(|_| JwtError::Malformed("the header is not valid base64url"))?;
    let peek: PeekHeader<'_> = serde_json::from_slice(&json)
        .map_err(|_| JwtError::Malformed("the header is not a JSON object with a string `alg`"))?;
    peek.check(expected)
}

/// The first of exactly three `.`-separated parts.
fn header_part(token: &str) -> Result<&str, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed(NOT_THREE_PARTS));
    };
    Ok(header)
}

impl PeekHeader<'_> {
    /// Refuses another `alg` than `expected` first, then any `crit`.
    fn check(&self, expected: JwtAlgorithm) -> Result<(), JwtError> {
        if self.alg != expected.as_str() {
            return Err(JwtError::WrongAlgorithm {
                expected,
                found: quote_alg(&self.alg),
            });
        }
        if self.crit.is_some() {
            return Err(JwtError::Malformed(
                "the header has a `crit` parameter; no extension is supported",
            ));
        }
        Ok(())
    }
}

/// Quotes an attacker-chosen `alg` for an error message: escaped and truncated.
fn quote_alg(alg: &str) -> String {
    let short: String = alg.chars().take(MAX_QUOTED_ALG).collect();
    format!("{short:?}")
}

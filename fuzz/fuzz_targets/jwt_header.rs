//! Arbitrary token strings through an HS256 `JwtVerifier::verify`, whose header check
//! (shape, `alg`, `crit`) runs before any cryptography.
//!
//! Invariants: no panic; a token is accepted only if its header says `HS256` and has no
//! `crit`; an error message never quotes more than a short, escaped piece of the
//! attacker's header.

#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use shardcast::auth::jwt::{JwtAlgorithm, JwtVerifier};

/// The secret the seed tokens are minted with (`examples/seeds.rs`).
const SECRET: &[u8] = b"fuzz-secret";
/// Longest error message allowed: the fixed texts plus a 32-character quoted `alg`.
const MAX_ERROR_LEN: usize = 400;

static VERIFIER: LazyLock<JwtVerifier> =
    LazyLock::new(|| JwtVerifier::from_secret(JwtAlgorithm::Hs256, SECRET).unwrap());

/// The decoded header of an accepted token.
fn header_of(token: &str) -> serde_json::Value {
    let part = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(part)
        .expect("accepted header is base64url");
    serde_json::from_slice(&json).expect("accepted header is JSON")
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    match VERIFIER.verify(&token) {
        Ok(_) => {
            let header = header_of(&token);
            assert_eq!(header["alg"], "HS256", "accepted another alg: {header}");
            assert!(
                header.get("crit").is_none(),
                "accepted a crit header: {header}"
            );
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.len() <= MAX_ERROR_LEN,
                "error quotes too much: {message}"
            );
        }
    }
});

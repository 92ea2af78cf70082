//! JWT verification with exactly one configured algorithm.
//!
//! This module owns the standalone server's token check (`--jwt-secret` /
//! `--jwt-public-key` with `--jwt-alg`) and the minting behind `shardcast token`.
//!
//! # Contract
//!
//! - A [`JwtVerifier`] is built once at startup from a shared secret (HS256, HS384,
//!   HS512) or a PEM public key (RS256, ES256). Key/algorithm mismatches are refused
//!   there, with a [`JwtConfigError`] that says which flag to change, so a bad
//!   configuration never reaches the first client.
//! - It is immutable afterwards: `Send + Sync`, shared in an `Arc` by every shard,
//!   no locks, no interior state. [`JwtVerifier::verify`] allocates only the decoded
//!   claims.
//! - Exactly the configured algorithm is accepted. The header's `alg` is checked
//!   before any cryptography, so `none`, any other algorithm and the classic
//!   RS256→HS256 key-confusion token are refused as [`JwtError::WrongAlgorithm`].
//!   Tokens carrying a `crit` header are refused (no extension is understood).
//! - The signature is checked before the claims, so a forged expired token reports
//!   a bad signature, not an expiry.
//! - `exp` and `nbf` are enforced when present (not required), with no leeway.
//!   `aud` and `iss` are not checked: shardcast has no audience or issuer setting,
//!   they are passed through in the metadata.
//! - `sub` must be a non-empty string when present and becomes the user id; every
//!   other claim becomes metadata. A token without `sub` authenticates a client
//!   without a user id.
//! - No input string panics: every failure is a [`JwtError`].

mod algorithm;
mod error;
mod header;
mod mint;
mod verify;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use algorithm::JwtAlgorithm;
pub use error::{JwtConfigError, JwtError};
pub use mint::{mint_token, parse_claim};
pub use verify::{JwtVerifier, VerifiedToken};

/// The claims of a token, as a JSON object.
type Claims = Map<String, Value>;

//! The two error types: [`JwtConfigError`] (the verifier cannot be built, at startup)
//! and [`JwtError`] (a token is refused, or cannot be minted).

use super::JwtAlgorithm;

/// The verifier cannot be built from the given configuration. Raised at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    /// `--jwt-alg` names an algorithm shardcast does not support: use one of the listed names.
    #[error("unknown JWT algorithm `{0}`; expected one of HS256, HS384, HS512, RS256, ES256")]
    UnknownAlgorithm(String),
    /// The shared secret is empty: set `--jwt-secret` to a long random string.
    #[error(
        "the JWT secret is empty; set --jwt-secret to a long random string (32+ bytes recommended)"
    )]
    EmptySecret,
    /// The secret looks like a PEM key; an asymmetric key used as an HMAC secret lets
    /// anyone holding the public key forge tokens. Use `--jwt-public-key` with RS256/ES256.
    #[error(
        "the JWT secret looks like a PEM key; pass the key file with --jwt-public-key and \
         --jwt-alg RS256 or ES256 instead of using it as an HMAC secret"
    )]
    PemAsSecret,
    /// A shared secret was given for RS256/ES256: give a PEM public key, or pick an HS* algorithm.
    #[error(
        "--jwt-alg {0} verifies with a public key, not a shared secret; pass \
         --jwt-public-key PEM_FILE, or choose --jwt-alg HS256, HS384 or HS512"
    )]
    SecretForPublicKeyAlgorithm(JwtAlgorithm),
    /// A PEM public key was given for an HS* algorithm: give a secret, or pick RS256/ES256.
    #[error(
        "--jwt-alg {0} verifies with a shared secret, not a public key; pass \
         --jwt-secret, or choose --jwt-alg RS256 or ES256 for a PEM public key"
    )]
    PublicKeyForHmacAlgorithm(JwtAlgorithm),
    /// The PEM holds a private key: give the public half (`openssl pkey -in KEY -pubout`).
    #[error(
        "the --jwt-public-key file holds a private key; give the public half \
         (`openssl pkey -in private.pem -pubout -out public.pem`)"
    )]
    PrivateKeyGiven,
    /// The PEM could not be read as a public key for the configured algorithm:
    /// check the file and that `--jwt-alg` matches the key type.
    #[error("cannot use the --jwt-public-key file for {alg}: {reason}")]
    InvalidPublicKey {
        /// The configured algorithm.
        alg: JwtAlgorithm,
        /// What is wrong with the file.
        reason: &'static str,
    },
}

/// A token was refused, or a token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The token is not a well-formed JWT (three base64url parts holding JSON objects).
    /// The client sent something that is not a token; it should fetch a fresh one.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names another algorithm than the configured one (including `none`).
    /// Either the token comes from another issuer or `--jwt-alg` is wrong.
    #[error("wrong algorithm: the token says {found}, only {expected} is accepted")]
    WrongAlgorithm {
        /// The configured algorithm.
        expected: JwtAlgorithm,
        /// The header's `alg`, quoted and truncated.
        found: String,
    },
    /// The signature does not match: the token was not signed with the configured key.
    #[error("bad signature: the token was not signed with the configured key")]
    BadSignature,
    /// `exp` is in the past: the client should obtain a new token.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future: the token is not valid yet (check the clocks).
    #[error("token not yet valid (nbf is in the future)")]
    NotYetValid,
    /// A registered claim has the wrong type (e.g. `exp` not a number, `sub` not a string).
    #[error("invalid claim `{claim}`: {reason}")]
    InvalidClaim {
        /// The claim's name.
        claim: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The token was refused for another reason reported by the JWT library.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// A token could not be minted (non-HMAC algorithm, empty secret or subject, …).
    #[error("cannot mint token: {0}")]
    Mint(String),
    /// A `--claim` argument is not of the form `key=value` with a non-empty key.
    #[error("invalid --claim `{arg}`: {reason}")]
    InvalidClaimArg {
        /// The argument as given.
        arg: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

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

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

/// The claims of a token, as a JSON object.
type Claims = Map<String, Value>;

/// Longest `alg` value quoted back in an error message (the value is attacker-chosen).
const MAX_QUOTED_ALG: usize = 32;

/// The one signature algorithm a [`JwtVerifier`] accepts (`--jwt-alg`).
///
/// Parsed case-insensitively from its JOSE name and displayed as that name:
///
/// ```
/// use shardcast::auth::jwt::JwtAlgorithm;
///
/// let alg: JwtAlgorithm = "rs256".parse().unwrap();
/// assert_eq!(alg, JwtAlgorithm::Rs256);
/// assert_eq!(alg.to_string(), "RS256");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 over a shared secret. The default when a secret is given.
    #[default]
    Hs256,
    /// HMAC with SHA-384 over a shared secret.
    Hs384,
    /// HMAC with SHA-512 over a shared secret.
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256, verified with an RSA public key.
    Rs256,
    /// ECDSA on P-256 with SHA-256, verified with an EC public key.
    Es256,
}

impl JwtAlgorithm {
    /// Every supported algorithm, in the order they are listed in help texts.
    pub const ALL: [JwtAlgorithm; 5] = [
        JwtAlgorithm::Hs256,
        JwtAlgorithm::Hs384,
        JwtAlgorithm::Hs512,
        JwtAlgorithm::Rs256,
        JwtAlgorithm::Es256,
    ];

    /// The JOSE name, as found in a token header (`"HS256"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Hs384 => "HS384",
            JwtAlgorithm::Hs512 => "HS512",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Es256 => "ES256",
        }
    }

    /// True for the HMAC algorithms, which verify with a shared secret rather than a
    /// public key.
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            JwtAlgorithm::Hs256 | JwtAlgorithm::Hs384 | JwtAlgorithm::Hs512
        )
    }

    fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Hs384 => Algorithm::HS384,
            JwtAlgorithm::Hs512 => Algorithm::HS512,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JwtAlgorithm {
    type Err = JwtConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JwtAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| JwtConfigError::UnknownAlgorithm(s.to_owned()))
    }
}

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

/// The identity carried by a verified token.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VerifiedToken {
    /// The `sub` claim, or `None` when the token has no `sub`.
    pub user_id: Option<String>,
    /// Every claim except `sub` (including `exp`, `iat`, `nbf`, `aud`, `iss` when present).
    pub metadata: Map<String, Value>,
}

impl VerifiedToken {
    fn from_claims(mut claims: Claims) -> Result<Self, JwtError> {
        let user_id = match claims.remove("sub") {
            None => None,
            Some(Value::String(sub)) if !sub.is_empty() => Some(sub),
            Some(_) => {
                return Err(JwtError::InvalidClaim {
                    claim: "sub".to_owned(),
                    reason: "must be a non-empty string",
                });
            }
        };
        Ok(VerifiedToken {
            user_id,
            metadata: claims,
        })
    }
}

/// Verifies tokens signed with one configured algorithm and key.
///
/// Build it once and share it (it is `Send + Sync`, cheap to put in an `Arc`):
///
/// ```
/// use shardcast::auth::jwt::{mint_token, JwtAlgorithm, JwtVerifier};
///
/// let verifier = JwtVerifier::from_secret(JwtAlgorithm::Hs256, b"s3cret").unwrap();
/// let token = mint_token(JwtAlgorithm::Hs256, b"s3cret", "alice", None, Default::default())
///     .unwrap();
/// let verified = verifier.verify(&token).unwrap();
/// assert_eq!(verified.user_id.as_deref(), Some("alice"));
/// assert!(verifier.verify("not a token").is_err());
/// ```
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    alg: JwtAlgorithm,
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    /// A verifier for an HMAC algorithm (HS256, HS384, HS512) with a shared secret.
    ///
    /// Refuses an empty secret, a secret that looks like a PEM key, and RS256/ES256.
    pub fn from_secret(alg: JwtAlgorithm, secret: &[u8]) -> Result<Self, JwtConfigError> {
        if !alg.is_hmac() {
            return Err(JwtConfigError::SecretForPublicKeyAlgorithm(alg));
        }
        if secret.is_empty() {
            return Err(JwtConfigError::EmptySecret);
        }
        if contains(secret, b"-----BEGIN ") {
            return Err(JwtConfigError::PemAsSecret);
        }
        Ok(Self::with_key(alg, DecodingKey::from_secret(secret)))
    }

    /// A verifier for RS256 or ES256 with a PEM public key (the file's contents).
    ///
    /// Accepts `PUBLIC KEY` (SPKI) PEMs, and `RSA PUBLIC KEY` (PKCS#1) for RS256. Refuses
    /// private keys, keys of the wrong type or curve (ES256 needs P-256), and HS*.
    pub fn from_public_key_pem(alg: JwtAlgorithm, pem: &[u8]) -> Result<Self, JwtConfigError> {
        if alg.is_hmac() {
            return Err(JwtConfigError::PublicKeyForHmacAlgorithm(alg));
        }
        if contains(pem, b"PRIVATE KEY-----") {
            return Err(JwtConfigError::PrivateKeyGiven);
        }
        let key = parse_public_key(alg, pem)?;
        Ok(Self::with_key(alg, key))
    }

    fn with_key(alg: JwtAlgorithm, key: DecodingKey) -> Self {
        let mut validation = Validation::new(alg.to_jsonwebtoken());
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // shardcast has no audience setting; `aud` is passed through as metadata.
        validation.validate_aud = false;
        JwtVerifier {
            alg,
            key,
            validation,
        }
    }

    /// The algorithm this verifier accepts.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.alg
    }

    /// Checks `token` (the compact serialization, without a `Bearer ` prefix) and
    /// returns its user id and metadata.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        check_header(token, self.alg)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|err| map_decode_error(err.into_kind(), self.alg))?;
        VerifiedToken::from_claims(data.claims)
    }
}

/// Reads a PEM public key for `alg`, checking the key type (and the curve for ES256).
fn parse_public_key(alg: JwtAlgorithm, pem: &[u8]) -> Result<DecodingKey, JwtConfigError> {
    let invalid = |reason| JwtConfigError::InvalidPublicKey { alg, reason };
    if !contains(pem, b"-----BEGIN ") {
        return Err(invalid("not a PEM file (no `-----BEGIN` line)"));
    }
    match alg {
        JwtAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem)
            .map_err(|_| invalid("expected an RSA public key PEM; is --jwt-alg right?")),
        _ => {
            let key = DecodingKey::from_ec_pem(pem)
                .map_err(|_| invalid("expected an EC public key PEM; is --jwt-alg right?"))?;
            // Building a verifier parses the point, which catches keys on another curve.
            jsonwebtoken::crypto::verify("", b"", &key, alg.to_jsonwebtoken())
                .map_err(|_| invalid("the EC key is not on curve P-256"))?;
            Ok(key)
        }
    }
}

/// The part of the header checked before any cryptography.
#[derive(Deserialize)]
struct PeekHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    crit: Option<IgnoredAny>,
}

/// Refuses tokens whose shape or header `alg` is wrong, with a precise message.
fn check_header(token: &str, expected: JwtAlgorithm) -> Result<(), JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed(
            "expected three base64url parts separated by '.'",
        ));
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtError::Malformed("the header is not valid base64url"))?;
    let peek: PeekHeader<'_> = serde_json::from_slice(&json)
        .map_err(|_| JwtError::Malformed("the header is not a JSON object with a string `alg`"))?;
    if peek.alg != expected.as_str() {
        return Err(JwtError::WrongAlgorithm {
            expected,
            found: quote_alg(&peek.alg),
        });
    }
    if peek.crit.is_some() {
        return Err(JwtError::Malformed(
            "the header has a `crit` parameter; no extension is supported",
        ));
    }
    Ok(())
}

/// Quotes an attacker-chosen `alg` for an error message: escaped and truncated.
fn quote_alg(alg: &str) -> String {
    let short: String = alg.chars().take(MAX_QUOTED_ALG).collect();
    format!("{short:?}")
}

/// Translates the JWT library's error into ours.
fn map_decode_error(kind: ErrorKind, expected: JwtAlgorithm) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidClaimFormat(claim) => JwtError::InvalidClaim {
            claim,
            reason: "must be a NumericDate (seconds since the Unix epoch)",
        },
        ErrorKind::InvalidAlgorithm => JwtError::WrongAlgorithm {
            expected,
            found: "another algorithm".to_owned(),
        },
        ErrorKind::InvalidToken => {
            JwtError::Malformed("expected three base64url parts separated by '.'")
        }
        ErrorKind::Base64(_) => JwtError::Malformed("a part is not valid base64url"),
        ErrorKind::Utf8(_) => JwtError::Malformed("a part is not valid UTF-8"),
        ErrorKind::Json(_) => JwtError::Malformed(
            "the header or the payload is not a valid JSON object, \
             or a registered claim (exp, nbf, sub, iss, aud) has the wrong type",
        ),
        other => JwtError::Rejected(jsonwebtoken::errors::Error::from(other).to_string()),
    }
}

/// Mints an HMAC token (for `shardcast token`, tests and the load tester).
///
/// The claims are `sub`, `iat` (now), `exp` (now + `ttl`, when given), then
/// `extra_claims`, which may override `iat` and `exp` (to mint an expired token on
/// purpose) but not `sub`.
///
/// ```
/// use shardcast::auth::jwt::{mint_token, parse_claim, JwtAlgorithm};
/// use std::time::Duration;
///
/// let (k, v) = parse_claim("role=admin").unwrap();
/// let claims = [(k, v)].into_iter().collect();
/// let token = mint_token(
///     JwtAlgorithm::Hs256, b"s3cret", "alice", Some(Duration::from_secs(3600)), claims,
/// ).unwrap();
/// assert_eq!(token.split('.').count(), 3);
/// ```
pub fn mint_token(
    alg: JwtAlgorithm,
    secret: &[u8],
    sub: &str,
    ttl: Option<Duration>,
    extra_claims: Map<String, Value>,
) -> Result<String, JwtError> {
    check_mint_inputs(alg, secret, sub, &extra_claims)?;
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = Claims::new();
    claims.insert("sub".to_owned(), Value::from(sub));
    claims.insert("iat".to_owned(), Value::from(now));
    if let Some(ttl) = ttl {
        claims.insert(
            "exp".to_owned(),
            Value::from(now.saturating_add(ttl.as_secs())),
        );
    }
    claims.extend(extra_claims);
    let header = Header::new(alg.to_jsonwebtoken());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
        .map_err(|err| JwtError::Mint(err.to_string()))
}

fn check_mint_inputs(
    alg: JwtAlgorithm,
    secret: &[u8],
    sub: &str,
    extra_claims: &Claims,
) -> Result<(), JwtError> {
    let reason = if !alg.is_hmac() {
        format!("{alg} needs a private key; only HS256, HS384 and HS512 can be minted here")
    } else if secret.is_empty() {
        "the secret is empty".to_owned()
    } else if sub.is_empty() {
        "the subject (--sub) is empty".to_owned()
    } else if extra_claims.contains_key("sub") {
        "set the subject with --sub, not --claim sub=…".to_owned()
    } else {
        return Ok(());
    };
    Err(JwtError::Mint(reason))
}

/// Parses a `--claim key=value` argument.
///
/// The value is parsed as JSON when it is valid JSON (`42`, `true`, `null`,
/// `{"a":1}`, `"quoted"`), and taken as a plain string otherwise. The key is
/// everything before the first `=` and must not be empty.
///
/// ```
/// use shardcast::auth::jwt::parse_claim;
/// use serde_json::json;
///
/// assert_eq!(parse_claim("level=3").unwrap(), ("level".into(), json!(3)));
/// assert_eq!(parse_claim("role=admin").unwrap(), ("role".into(), json!("admin")));
/// ```
pub fn parse_claim(arg: &str) -> Result<(String, Value), JwtError> {
    let invalid = |reason| JwtError::InvalidClaimArg {
        arg: arg.to_owned(),
        reason,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| invalid("expected key=value"))?;
    if key.is_empty() {
        return Err(invalid("the key before '=' is empty"));
    }
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::from(raw));
    Ok((key.to_owned(), value))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<JwtVerifier>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret-for-unit-tests-only";
    const RS_PRIVATE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rs256_private.pem"
    ));
    const RS_PUBLIC: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rs256_public.pem"
    ));
    const ES_PRIVATE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/es256_private.pem"
    ));
    const ES_PUBLIC: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/es256_public.pem"
    ));
    const P384_PUBLIC: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/es384_public.pem"
    ));

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
    }

    fn hs(alg: JwtAlgorithm, secret: &[u8], claims: &Value) -> String {
        sign(
            alg.to_jsonwebtoken(),
            &EncodingKey::from_secret(secret),
            claims,
        )
    }

    fn hs256_verifier() -> JwtVerifier {
        JwtVerifier::from_secret(JwtAlgorithm::Hs256, SECRET).unwrap()
    }

    fn b64(json: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
    }

    /// A token with a hand-written header and payload and the given signature part.
    fn raw_token(header: &Value, payload: &Value, signature: &str) -> String {
        format!("{}.{}.{signature}", b64(header), b64(payload))
    }

    #[test]
    fn valid_hmac_tokens_verify_for_each_hs_algorithm() {
        for alg in [
            JwtAlgorithm::Hs256,
            JwtAlgorithm::Hs384,
            JwtAlgorithm::Hs512,
        ] {
            let verifier = JwtVerifier::from_secret(alg, SECRET).unwrap();
            let token = hs(alg, SECRET, &json!({"sub": "u1", "exp": now() + 60}));
            let verified = verifier.verify(&token).unwrap();
            assert_eq!(verified.user_id.as_deref(), Some("u1"), "{alg}");
        }
    }

    #[test]
    fn rs256_token_verifies_with_pem_fixture() {
        let key = EncodingKey::from_rsa_pem(RS_PRIVATE).unwrap();
        let token = sign(Algorithm::RS256, &key, &json!({"sub": "rsa-user"}));
        let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Rs256, RS_PUBLIC).unwrap();
        assert_eq!(
            verifier.verify(&token).unwrap().user_id.as_deref(),
            Some("rsa-user")
        );
    }

    #[test]
    fn es256_token_verifies_with_pem_fixture() {
        let key = EncodingKey::from_ec_pem(ES_PRIVATE).unwrap();
        let token = sign(Algorithm::ES256, &key, &json!({"sub": "ec-user"}));
        let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Es256, ES_PUBLIC).unwrap();
        assert_eq!(
            verifier.verify(&token).unwrap().user_id.as_deref(),
            Some("ec-user")
        );
    }

    #[test]
    fn expired_token_is_refused_without_leeway() {
        let token = hs(
            JwtAlgorithm::Hs256,
            SECRET,
            &json!({"sub": "u", "exp": now() - 2}),
        );
        assert_eq!(hs256_verifier().verify(&token), Err(JwtError::Expired));
    }

    #[test]
    fn token_without_exp_is_accepted() {
        let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": "u"}));
        assert!(hs256_verifier().verify(&token).is_ok());
    }

    #[test]
    fn token_not_yet_valid_is_refused() {
        let token = hs(
            JwtAlgorithm::Hs256,
            SECRET,
            &json!({"sub": "u", "nbf": now() + 60}),
        );
        assert_eq!(hs256_verifier().verify(&token), Err(JwtError::NotYetValid));
        let past = hs(
            JwtAlgorithm::Hs256,
            SECRET,
            &json!({"sub": "u", "nbf": now() - 1}),
        );
        assert!(hs256_verifier().verify(&past).is_ok());
    }

    #[test]
    fn non_numeric_exp_is_refused() {
        let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"exp": "tomorrow"}));
        let err = hs256_verifier().verify(&token).unwrap_err();
        assert!(matches!(err, JwtError::InvalidClaim { ref claim, .. } if claim == "exp"));
    }

    #[test]
    fn tampered_payload_has_bad_signature() {
        let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": "alice"}));
        let sig = token.rsplit('.').next().unwrap();
        let forged = raw_token(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &json!({"sub": "admin"}),
            sig,
        );
        assert_eq!(
            hs256_verifier().verify(&forged),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn forged_expired_token_reports_bad_signature_first() {
        let token = hs(JwtAlgorithm::Hs256, b"other", &json!({"exp": now() - 100}));
        assert_eq!(hs256_verifier().verify(&token), Err(JwtError::BadSignature));
    }

    #[test]
    fn wrong_secret_is_refused() {
        let token = hs(JwtAlgorithm::Hs256, b"not-the-secret", &json!({"sub": "u"}));
        assert_eq!(hs256_verifier().verify(&token), Err(JwtError::BadSignature));
    }

    #[test]
    fn alg_none_token_is_refused() {
        let header = json!({"alg": "none", "typ": "JWT"});
        let payload = json!({"sub": "admin"});
        let sig = hs(JwtAlgorithm::Hs256, SECRET, &payload);
        let sig = sig.rsplit('.').next().unwrap();
        for signature in ["", sig] {
            let token = raw_token(&header, &payload, signature);
            let err = hs256_verifier().verify(&token).unwrap_err();
            assert!(matches!(err, JwtError::WrongAlgorithm { .. }), "{err}");
            assert!(err.to_string().contains("\"none\""), "{err}");
        }
        let upper = raw_token(&json!({"alg": "None"}), &payload, "");
        assert!(matches!(
            hs256_verifier().verify(&upper),
            Err(JwtError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn other_hmac_algorithm_is_refused() {
        let token = hs(JwtAlgorithm::Hs512, SECRET, &json!({"sub": "u"}));
        let err = hs256_verifier().verify(&token).unwrap_err();
        assert_eq!(
            err,
            JwtError::WrongAlgorithm {
                expected: JwtAlgorithm::Hs256,
                found: "\"HS512\"".to_owned()
            }
        );
    }

    #[test]
    fn hs256_token_is_refused_by_rs256_verifier() {
        let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Rs256, RS_PUBLIC).unwrap();
        let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": "u"}));
        assert!(matches!(
            verifier.verify(&token),
            Err(JwtError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn key_confusion_hs256_signed_with_public_pem_is_refused() {
        let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Rs256, RS_PUBLIC).unwrap();
        let token = hs(JwtAlgorithm::Hs256, RS_PUBLIC, &json!({"sub": "admin"}));
        assert!(matches!(
            verifier.verify(&token),
            Err(JwtError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn rs256_token_is_refused_by_es256_verifier() {
        let key = EncodingKey::from_rsa_pem(RS_PRIVATE).unwrap();
        let token = sign(Algorithm::RS256, &key, &json!({"sub": "u"}));
        let verifier = JwtVerifier::from_public_key_pem(JwtAlgorithm::Es256, ES_PUBLIC).unwrap();
        assert!(matches!(
            verifier.verify(&token),
            Err(JwtError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn crit_header_is_refused() {
        let payload = json!({"sub": "u"});
        let header = json!({"alg": "HS256", "crit": ["exp"], "exp": 1});
        let token = raw_token(&header, &payload, "");
        assert!(matches!(
            hs256_verifier().verify(&token),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_strings_are_refused_without_panic() {
        let long = "a".repeat(100_000);
        let dots = ".".repeat(10_000);
        let garbage = [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            "a.b",
            "a.b.c.d",
            "Bearer x",
            "\0\0\0",
            "eyJ.eyJ.eyJ",
            "ééé.ààà.üüü",
            "🦀.🦀.🦀",
            "%%%.%%%.%%%",
            "e30.e30.",
            "W10.e30.",
            "bnVsbA.e30.",
            "eyJhbGciOjF9.e30.",
            "eyJhbGciOiJIUzI1NiJ9.W10.",
            "eyJhbGciOiJIUzI1NiJ9.bnVsbA.",
            "eyJhbGciOiJIUzI1NiJ9.e30.!!!",
            &long,
            &dots,
        ];
        let verifiers = [
            hs256_verifier(),
            JwtVerifier::from_public_key_pem(JwtAlgorithm::Rs256, RS_PUBLIC).unwrap(),
            JwtVerifier::from_public_key_pem(JwtAlgorithm::Es256, ES_PUBLIC).unwrap(),
        ];
        for verifier in &verifiers {
            for token in garbage {
                assert!(verifier.verify(token).is_err(), "{token:.40}");
            }
        }
    }

    #[test]
    fn mutated_tokens_never_panic_and_never_verify() {
        let verifier = hs256_verifier();
        let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": "u", "n": 1}));
        let alphabet = b"AZaz09-_.=+/ \xff";
        for i in 0..token.len() {
            for &b in alphabet {
                let mut bytes = token.clone().into_bytes();
                if bytes[i] == b {
                    continue;
                }
                bytes[i] = b;
                let mutated = String::from_utf8_lossy(&bytes);
                // A change in the last base64 character may only touch padding bits.
                if verifier.verify(&mutated).is_ok() {
                    assert_eq!(i, token.len() - 1, "{mutated}");
                }
            }
        }
    }

    #[test]
    fn absent_sub_gives_no_user_id() {
        let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"role": "viewer"}));
        let verified = hs256_verifier().verify(&token).unwrap();
        assert_eq!(verified.user_id, None);
        assert_eq!(verified.metadata.get("role"), Some(&json!("viewer")));
    }

    #[test]
    fn sub_that_is_not_a_non_empty_string_is_refused() {
        for sub in [json!(""), json!(42), json!(null)] {
            let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": sub}));
            let err = hs256_verifier().verify(&token).unwrap_err();
            assert!(matches!(err, JwtError::InvalidClaim { ref claim, .. } if claim == "sub"));
        }
        // The JWT library's own claim check trips over a non-scalar `sub` first.
        let token = hs(JwtAlgorithm::Hs256, SECRET, &json!({"sub": ["a"]}));
        assert!(matches!(
            hs256_verifier().verify(&token),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn metadata_holds_every_claim_but_sub() {
        let exp = now() + 300;
        let claims = json!({
            "sub": "u7", "exp": exp, "aud": "dashboard", "iss": "auth.example",
            "role": "admin", "tenant": {"id": 3, "tags": ["a", "b"]}, "beta": true,
        });
        let token = hs(JwtAlgorithm::Hs256, SECRET, &claims);
        let verified = hs256_verifier().verify(&token).unwrap();
        let mut expected = claims.as_object().unwrap().clone();
        expected.remove("sub");
        assert_eq!(verified.user_id.as_deref(), Some("u7"));
        assert_eq!(verified.metadata, expected);
    }

    #[test]
    fn mint_then_verify_round_trips() {
        let extra: Claims = [
            ("role".to_owned(), json!("admin")),
            ("lvl".to_owned(), json!(3)),
        ]
        .into_iter()
        .collect();
        for alg in [
            JwtAlgorithm::Hs256,
            JwtAlgorithm::Hs384,
            JwtAlgorithm::Hs512,
        ] {
            let ttl = Some(Duration::from_secs(60));
            let token = mint_token(alg, SECRET, "bob", ttl, extra.clone()).unwrap();
            let verified = JwtVerifier::from_secret(alg, SECRET)
                .unwrap()
                .verify(&token)
                .unwrap();
            assert_eq!(verified.user_id.as_deref(), Some("bob"));
            assert_eq!(verified.metadata["role"], json!("admin"));
            assert_eq!(verified.metadata["lvl"], json!(3));
            let exp = verified.metadata["exp"].as_i64().unwrap();
            assert!((exp - now() - 60).abs() <= 2, "exp {exp}");
            assert!(verified.metadata.contains_key("iat"));
        }
    }

    #[test]
    fn mint_without_ttl_has_no_exp_and_extra_exp_wins() {
        let token = mint_token(JwtAlgorithm::Hs256, SECRET, "bob", None, Claims::new()).unwrap();
        let verified = hs256_verifier().verify(&token).unwrap();
        assert!(!verified.metadata.contains_key("exp"));
        let past: Claims = [("exp".to_owned(), json!(now() - 10))]
            .into_iter()
            .collect();
        let ttl = Some(Duration::from_secs(3600));
        let token = mint_token(JwtAlgorithm::Hs256, SECRET, "bob", ttl, past).unwrap();
        assert_eq!(hs256_verifier().verify(&token), Err(JwtError::Expired));
    }

    #[test]
    fn mint_refuses_bad_inputs() {
        let sub_claim: Claims = [("sub".to_owned(), json!("x"))].into_iter().collect();
        let cases = [
            (JwtAlgorithm::Rs256, SECRET, "u", Claims::new()),
            (JwtAlgorithm::Hs256, &b""[..], "u", Claims::new()),
            (JwtAlgorithm::Hs256, SECRET, "", Claims::new()),
            (JwtAlgorithm::Hs256, SECRET, "u", sub_claim),
        ];
        for (alg, secret, sub, extra) in cases {
            let err = mint_token(alg, secret, sub, None, extra).unwrap_err();
            assert!(matches!(err, JwtError::Mint(_)), "{err}");
        }
    }

    #[test]
    fn parse_claim_parses_json_values_and_falls_back_to_strings() {
        let cases = [
            ("n=42", "n", json!(42)),
            ("f=1.5", "f", json!(1.5)),
            ("ok=true", "ok", json!(true)),
            ("z=null", "z", json!(null)),
            ("o={\"a\":[1,2]}", "o", json!({"a": [1, 2]})),
            ("q=\"42\"", "q", json!("42")),
            ("role=admin", "role", json!("admin")),
            ("empty=", "empty", json!("")),
            ("eq=a=b", "eq", json!("a=b")),
            ("broken={oops", "broken", json!("{oops")),
            ("sp= 7 ", "sp", json!(7)),
        ];
        for (arg, key, value) in cases {
            assert_eq!(parse_claim(arg).unwrap(), (key.to_owned(), value), "{arg}");
        }
        for bad in ["novalue", "=1", ""] {
            assert!(matches!(
                parse_claim(bad),
                Err(JwtError::InvalidClaimArg { .. })
            ));
        }
    }

    #[test]
    fn algorithm_parses_case_insensitively_and_displays_jose_name() {
        for alg in JwtAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<JwtAlgorithm>(), Ok(alg));
            assert_eq!(alg.as_str().to_lowercase().parse::<JwtAlgorithm>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert_eq!(
            "none".parse::<JwtAlgorithm>(),
            Err(JwtConfigError::UnknownAlgorithm("none".to_owned()))
        );
        assert_eq!(JwtAlgorithm::default(), JwtAlgorithm::Hs256);
    }

    #[test]
    fn secret_configuration_mismatches_are_refused() {
        use JwtConfigError as E;
        let from_secret = |alg, secret: &[u8]| JwtVerifier::from_secret(alg, secret).unwrap_err();
        assert_eq!(from_secret(JwtAlgorithm::Hs256, b""), E::EmptySecret);
        assert_eq!(
            from_secret(JwtAlgorithm::Rs256, SECRET),
            E::SecretForPublicKeyAlgorithm(JwtAlgorithm::Rs256)
        );
        assert_eq!(
            from_secret(JwtAlgorithm::Es256, SECRET),
            E::SecretForPublicKeyAlgorithm(JwtAlgorithm::Es256)
        );
        assert_eq!(from_secret(JwtAlgorithm::Hs256, RS_PUBLIC), E::PemAsSecret);
    }

    #[test]
    fn pem_configuration_mismatches_are_refused() {
        use JwtConfigError as E;
        let from_pem = |alg, pem: &[u8]| JwtVerifier::from_public_key_pem(alg, pem).unwrap_err();
        assert_eq!(
            from_pem(JwtAlgorithm::Hs256, RS_PUBLIC),
            E::PublicKeyForHmacAlgorithm(JwtAlgorithm::Hs256)
        );
        assert_eq!(
            from_pem(JwtAlgorithm::Rs256, RS_PRIVATE),
            E::PrivateKeyGiven
        );
        assert_eq!(
            from_pem(JwtAlgorithm::Es256, ES_PRIVATE),
            E::PrivateKeyGiven
        );
        let invalid = [
            (JwtAlgorithm::Rs256, ES_PUBLIC),
            (JwtAlgorithm::Es256, RS_PUBLIC),
            (JwtAlgorithm::Es256, P384_PUBLIC),
            (JwtAlgorithm::Rs256, &b""[..]),
            (JwtAlgorithm::Rs256, &b"not a pem"[..]),
            (
                JwtAlgorithm::Es256,
                &b"-----BEGIN PUBLIC KEY-----\ngarbage\n"[..],
            ),
        ];
        for (alg, pem) in invalid {
            let err = from_pem(alg, pem);
            assert!(matches!(err, E::InvalidPublicKey { .. }), "{alg}: {err}");
        }
    }

    #[test]
    fn config_errors_name_the_flags_to_change() {
        let err = JwtVerifier::from_secret(JwtAlgorithm::Rs256, SECRET).unwrap_err();
        assert!(err.to_string().contains("--jwt-public-key"), "{err}");
        let err = JwtVerifier::from_public_key_pem(JwtAlgorithm::Hs256, RS_PUBLIC).unwrap_err();
        assert!(err.to_string().contains("--jwt-secret"), "{err}");
    }
}

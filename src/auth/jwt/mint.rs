//! Minting HMAC tokens ([`mint_token`], behind `shardcast token`) and parsing its
//! `--claim key=value` arguments ([`parse_claim`]).

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value};

use super::{Claims, JwtAlgorithm, JwtError};

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
    let claims = mint_claims(sub, ttl, extra_claims);
    let header = Header::new(alg.to_jsonwebtoken());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
        .map_err(|err| JwtError::Mint(err.to_string()))
}

/// `sub`, `iat` (now) and `exp` (now + `ttl`, when given), then `extra_claims` on top.
fn mint_claims(sub: &str, ttl: Option<Duration>, extra_claims: Claims) -> Claims {
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
    claims
}

/// Refuses what cannot be minted here: a non-HMAC algorithm, an empty secret or
/// subject, and a `sub` among the extra claims.
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

//! [`JwtVerifier`]: building it from a secret or a PEM public key, verifying a token,
//! and the [`VerifiedToken`] it yields.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

use super::header::{NOT_THREE_PARTS, check_header};
use super::{Claims, JwtAlgorithm, JwtConfigError, JwtError};

/// The identity carried by a verified token.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VerifiedToken {
    /// The `sub` claim, or `None` when the token has no `sub`.
    pub user_id: Option<String>,
    /// Every claim except `sub` (including `exp`, `iat`, `nbf`, `aud`, `iss` when present).
    pub metadata: Map<String, Value>,
}

impl VerifiedToken {
    /// Takes `sub` out of `claims` as the user id; the rest is the metadata.
    fn from_claims(mut claims: Claims) -> Result<Self, JwtError> {
        let user_id = user_id_from(claims.remove("sub"))?;
        Ok(VerifiedToken {
            user_id,
            metadata: claims,
        })
    }
}

/// The user id of a `sub` claim: none when absent, else a non-empty string.
fn user_id_from(sub: Option<Value>) -> Result<Option<String>, JwtError> {
    match sub {
        None => Ok(None),
        Some(Value::String(sub)) if !sub.is_empty() => Ok(Some(sub)),
        Some(_) => Err(JwtError::InvalidClaim {
            claim: "sub".to_owned(),
            reason: "must be a non-empty string",
        }),
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

    /// A verifier for `alg` and a key already checked against it.
    fn with_key(alg: JwtAlgorithm, key: DecodingKey) -> Self {
        JwtVerifier {
            alg,
            key,
            validation: validation_for(alg),
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

/// Exactly `alg`; `exp` and `nbf` enforced when present, with no leeway; no claim required.
fn validation_for(alg: JwtAlgorithm) -> Validation {
    let mut validation = Validation::new(alg.to_jsonwebtoken());
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    // shardcast has no audience setting; `aud` is passed through as metadata.
    validation.validate_aud = false;
    validation
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
        _ => parse_ec_public_key(alg, pem).map_err(invalid),
    }
}

/// Reads an EC PEM public key and checks it lies on `alg`'s curve; the error is the reason.
fn parse_ec_public_key(alg: JwtAlgorithm, pem: &[u8]) -> Result<DecodingKey, &'static str> {
    let key = DecodingKey::from_ec_pem(pem)
        .map_err(|_| "expected an EC public key PEM; is --jwt-alg right?")?;
    // Building a verifier parses the point, which catches keys on another curve.
    jsonwebtoken::crypto::verify("", b"", &key, alg.to_jsonwebtoken())
        .map_err(|_| "the EC key is not on curve P-256")?;
    Ok(key)
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
        other => map_encoding_error(other),
    }
}

/// Translates the library's errors about a token's encoding; anything else is `Rejected`.
fn map_encoding_error(kind: ErrorKind) -> JwtError {
    let reason = match kind {
        ErrorKind::InvalidToken => NOT_THREE_PARTS,
        ErrorKind::Base64(_) => "a part is not valid base64url",
        ErrorKind::Utf8(_) => "a part is not valid UTF-8",
        ErrorKind::Json(_) => {
            "the header or the payload is not a valid JSON object, \
             or a registered claim (exp, nbf, sub, iss, aud) has the wrong type"
        }
        other => return JwtError::Rejected(jsonwebtoken::errors::Error::from(other).to_string()),
    };
    JwtError::Malformed(reason)
}

/// True when `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<JwtVerifier>();
};

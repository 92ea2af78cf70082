//! [`JwtAlgorithm`]: the one signature algorithm a verifier accepts, its JOSE name,
//! parsing and display.

use std::fmt;
use std::str::FromStr;

use jsonwebtoken::Algorithm;

use super::JwtConfigError;

/// The one signature algorithm a [`JwtVerifier`](super::JwtVerifier) accepts (`--jwt-alg`).
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

    /// The `jsonwebtoken` crate's name for this algorithm.
    pub(super) fn to_jsonwebtoken(self) -> Algorithm {
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

//! Authentication tokens: HS256 JWTs minted locally (`sub = load-{i}`), or a raw string
//! for servers in dev mode (`{i}` in it is replaced by the client index).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Where each client's token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// Mint an HS256 JWT per client with this secret; `exp` = now + `ttl_s`.
    Jwt {
        /// Shared HS256 secret.
        secret: Vec<u8>,
        /// Lifetime of each token.
        ttl_s: u64,
    },
    /// Send this string as the token (`{i}` becomes the client index).
    Raw(String),
}

impl TokenSource {
    /// The token for client `i`.
    pub fn token_for(&self, i: u64) -> String {
        match self {
            TokenSource::Jwt { secret, ttl_s } => {
                let now = crate::ws::conn::now_us() / 1_000_000;
                let claims =
                    serde_json::json!({"sub": format!("load-{i}"), "iat": now, "exp": now + ttl_s});
                mint_hs256(secret, &claims.to_string())
            }
            TokenSource::Raw(t) => t.replace("{i}", &i.to_string()),
        }
    }
}

/// Signs `claims_json` (an object) as a compact HS256 JWT.
pub fn mint_hs256(secret: &[u8], claims_json: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims_json.as_bytes());
    let signing_input = format!("{header}.{claims}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_well_known_jwt_io_example() {
        let t = mint_hs256(
            b"your-256-bit-secret",
            r#"{"sub":"1234567890","name":"John Doe","iat":1516239022}"#,
        );
        assert_eq!(
            t,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
    }

    #[test]
    fn minted_tokens_carry_the_client_subject() {
        let t = TokenSource::Jwt {
            secret: b"s".to_vec(),
            ttl_s: 60,
        }
        .token_for(7);
        let claims = t.split('.').nth(1).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(v["sub"], "load-7");
        assert_eq!(v["exp"].as_u64().unwrap() - v["iat"].as_u64().unwrap(), 60);
    }

    #[test]
    fn raw_tokens_substitute_the_index() {
        assert_eq!(TokenSource::Raw("user-{i}".into()).token_for(3), "user-3");
        assert_eq!(TokenSource::Raw("fixed".into()).token_for(3), "fixed");
    }
}

//! `shardcast token`: mint a JWT the server accepts, for trying things out.

use shardcast::auth::jwt::{self, JwtAlgorithm, JwtConfigError, JwtError};

use super::CommandError;
use super::args::TokenArgs;

/// Mints the token `args` describe.
pub fn mint(args: TokenArgs) -> Result<String, CommandError> {
    let fail = |e: &dyn std::fmt::Display| CommandError::Token(e.to_string());
    let alg: JwtAlgorithm = args.alg.parse().map_err(|e: JwtConfigError| fail(&e))?;
    let mut claims = serde_json::Map::new();
    for claim in &args.claims {
        let (key, value) = jwt::parse_claim(claim).map_err(|e| fail(&e))?;
        claims.insert(key, value);
    }
    let ttl = args.ttl_s.map(std::time::Duration::from_secs);
    jwt::mint_token(alg, args.secret.as_bytes(), &args.sub, ttl, claims)
        .map_err(|e: JwtError| fail(&e))
}

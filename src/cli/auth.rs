//! How `serve` authenticates, decided by precedence: of `jwt_secret`, `jwt_public_key`
//! and `dev`, the one set at the highest level (flag > environment > file) wins and the
//! others are ignored with a warning; two at the same level are an error naming both.
//! `jwt_alg` in dev mode is ignored with a warning.

use std::path::Path;

use shardcast::auth::jwt::{JwtAlgorithm, JwtConfigError, JwtVerifier};

use super::config::CliError;
use super::layers::name_at;
use super::settings::Settings;

/// How clients authenticate.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// JWT with one algorithm.
    Jwt(Box<JwtVerifier>),
    /// INSECURE: any token is the user id.
    Dev,
}

/// One configured mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Secret,
    PublicKey,
    Dev,
}

/// A configured mode, its precedence level and how it was given.
type Candidate = (Mode, u8, String);

/// The winning mode and the warnings about what it overrides.
pub fn resolve(s: &Settings) -> Result<(AuthMode, Vec<String>), CliError> {
    let set = candidates(s);
    let top = set.iter().map(|c| c.1).max().ok_or(CliError::NoAuth)?;
    let (winners, losers): (Vec<_>, Vec<_>) = set.into_iter().partition(|c| c.1 == top);
    let (mode, winner) = match winners.as_slice() {
        [(mode, _, at)] => (*mode, at.clone()),
        [first, second, ..] => {
            return Err(CliError::ConflictingAuth {
                first: first.2.clone(),
                second: second.2.clone(),
            });
        }
        [] => return Err(CliError::NoAuth),
    };
    let mut warnings: Vec<String> = losers
        .iter()
        .map(|lost| format!("{} is ignored: {winner} takes precedence", lost.2))
        .collect();
    Ok((build(mode, s, &mut warnings)?, warnings))
}

/// The modes that are set, with their level and source.
fn candidates(s: &Settings) -> Vec<Candidate> {
    let mut set = Vec::new();
    if s.jwt_secret.value.is_some() {
        set.push((Mode::Secret, s.jwt_secret.source.level(), s.jwt_secret.at()));
    }
    if s.jwt_public_key.value.is_some() {
        let key = &s.jwt_public_key;
        set.push((Mode::PublicKey, key.source.level(), key.at()));
    }
    if s.dev.value {
        set.push((Mode::Dev, s.dev.source.level(), s.dev.at()));
    }
    set
}

fn build(mode: Mode, s: &Settings, warnings: &mut Vec<String>) -> Result<AuthMode, CliError> {
    match mode {
        Mode::Dev => {
            if s.jwt_alg.value.is_some() {
                warnings.push(format!("{} is ignored in dev mode", s.jwt_alg.at()));
            }
            Ok(AuthMode::Dev)
        }
        Mode::Secret => from_secret(s),
        Mode::PublicKey => from_public_key(s),
    }
}

fn from_secret(s: &Settings) -> Result<AuthMode, CliError> {
    let from = sources(s, s.jwt_secret.at());
    let jwt = |error| CliError::Jwt {
        error,
        from: from.clone(),
    };
    let alg = algorithm(s, JwtAlgorithm::Hs256).map_err(jwt)?;
    let secret = s.jwt_secret.value.as_deref().unwrap_or_default();
    let verifier = JwtVerifier::from_secret(alg, secret.as_bytes()).map_err(jwt)?;
    Ok(AuthMode::Jwt(Box::new(verifier)))
}

fn from_public_key(s: &Settings) -> Result<AuthMode, CliError> {
    let from = sources(s, s.jwt_public_key.at());
    let jwt = |error| CliError::Jwt {
        error,
        from: from.clone(),
    };
    let alg = algorithm(s, JwtAlgorithm::Rs256).map_err(jwt)?;
    let path = s.jwt_public_key.value.as_deref().unwrap_or(Path::new(""));
    let pem = std::fs::read(path).map_err(|error| CliError::ReadKey {
        path: path.to_owned(),
        from: name_at("jwt_public_key", &s.jwt_public_key.source),
        error,
    })?;
    let verifier = JwtVerifier::from_public_key_pem(alg, &pem).map_err(jwt)?;
    Ok(AuthMode::Jwt(Box::new(verifier)))
}

/// `jwt_alg` when set, else `default`.
fn algorithm(s: &Settings, default: JwtAlgorithm) -> Result<JwtAlgorithm, JwtConfigError> {
    match &s.jwt_alg.value {
        Some(name) => name.parse(),
        None => Ok(default),
    }
}

/// The key setting with its source, and `jwt_alg`'s when it is set.
fn sources(s: &Settings, key: String) -> String {
    match s.jwt_alg.value {
        Some(_) => format!("{key}, {}", s.jwt_alg.at()),
        None => key,
    }
}

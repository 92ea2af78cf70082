//! `shardcast check-config [FILE]`: validates the configuration exactly as `serve` would
//! (flags, `SHARDCAST_*` environment, the file, defaults) without starting anything, and
//! prints every effective value with where it came from; secrets are shown as `***`.

use std::fmt::Write as _;

use super::CommandError;
use super::args::CheckArgs;
use super::auth::AuthMode;
use super::config::{self, CliError, ServeConfig};
use super::layers::{Layers, Source};
use super::settings::{self, Entry};

/// The report of a valid configuration (an invalid one is the error).
pub fn check(args: CheckArgs) -> Result<String, CommandError> {
    let mut flags = args.serve.flags;
    if let Some(file) = args.file {
        flags.insert("config", file.display().to_string());
    }
    let base = Layers::capture(flags).map_err(CliError::from)?;
    Ok(report(&config::load(&base)?))
}

/// Every value (`key = value  # source`), the authentication, the warnings.
fn report(config: &ServeConfig) -> String {
    let mut out = String::from(
        "# effective configuration of `shardcast serve`, each value with its source\n",
    );
    for entry in config.settings.entries() {
        let _ = writeln!(out, "{}", line(&entry));
    }
    let auth = match &config.auth {
        AuthMode::Jwt(verifier) => format!("JWT {}", verifier.algorithm()),
        AuthMode::Dev => "dev (INSECURE: any token is the user id)".to_owned(),
    };
    let _ = writeln!(out, "# authentication: {auth}");
    for warning in &config.warnings {
        let _ = writeln!(out, "# warning: {warning}");
    }
    out.push_str("# configuration OK\n");
    out
}

/// `key = value` padded, then `# source`; an unset key is commented out.
fn line(entry: &Entry) -> String {
    let secret = settings::meta(entry.key).is_some_and(|m| m.is_secret());
    let assignment = match (&entry.toml, secret) {
        (Some(_), true) => format!("{} = \"***\"", entry.key),
        (Some(value), false) => format!("{} = {value}", entry.key),
        (None, _) => format!("# {} (unset)", entry.key),
    };
    let source = match &entry.source {
        Source::Default => "default".to_owned(),
        other => other.to_string(),
    };
    format!("{assignment:<48} # {source}")
}

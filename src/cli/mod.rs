//! The `shardcast` binary's own code: the command line ([`args`]), the settings declared
//! once ([`settings`], [`value`]) and where they come from ([`layers`]), their validation
//! ([`config`], [`auth`]), and the subcommands ([`serve`] with [`reload`] and [`logging`],
//! [`check`], [`docs`], [`emit`], [`token`]). The library never sees any of it; it drives
//! the library through its public API only.

pub mod args;
pub mod auth;
pub mod check;
pub mod config;
pub mod docs;
pub mod emit;
pub mod layers;
pub mod logging;
pub mod reload;
pub mod serve;
pub mod settings;
pub mod token;
pub mod value;

use shardcast::EngineError;

use config::CliError;

/// Why a subcommand failed; printed once by `main`, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] CliError),
    /// The engine did not start.
    #[error("{0}{hint}", hint = engine_hint(.0))]
    Engine(#[from] EngineError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// A token could not be minted (the message says why and what to pass).
    #[error("{0}")]
    Token(String),
    /// `emit` failed (Redis unreachable, bad data…).
    #[error("emit failed: {0}")]
    Emit(String),
    /// `--redis-subscribe sharded` on Redis that cannot carry it for this fleet.
    #[error("--redis-subscribe sharded: {0}")]
    Sharded(#[from] shardcast::redis::ShardedCheckError),
    /// A runtime for a start-time check could not be built.
    #[error("cannot start a runtime: {0}")]
    Runtime(std::io::Error),
}

/// What to do about an engine that did not start.
fn engine_hint(err: &EngineError) -> &'static str {
    match err {
        EngineError::Bind { .. } => {
            "; stop the process that holds the port, or choose another address with --listen (SHARDCAST_LISTEN, listen)"
        }
        EngineError::Tls(_) => {
            "; fix the file, or point --tls-cert and --tls-key (tls_cert, tls_key) at a matching PEM certificate chain and key"
        }
        _ => "",
    }
}

//! The `shardcast` binary's own code: the command line ([`args`], [`config`]) and the
//! subcommands ([`serve`], [`emit`], [`token`]). The library never sees any of it; it
//! drives the library through its public API only.

pub mod args;
pub mod config;
pub mod emit;
pub mod serve;
pub mod token;

use shardcast::EngineError;

use config::CliError;

/// Why a subcommand failed; printed once by `main`.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] CliError),
    /// The engine did not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// A token could not be minted.
    #[error("cannot mint token: {0}")]
    Token(String),
    /// `emit` failed (Redis unreachable, bad data…).
    #[error("emit failed: {0}")]
    Emit(String),
}

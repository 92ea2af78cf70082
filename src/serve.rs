//! What the binary's subcommands do: `serve` (run the standalone server until a signal),
//! `token` (mint a JWT) and `emit` (publish one envelope through Redis).

use crate::auth::jwt::{self, JwtAlgorithm, JwtConfigError, JwtError};
use crate::auth::{DevAuthenticator, JwtAuthenticator};
use crate::cli::{AuthMode, CliError, EmitArgs, ServeArgs, TokenArgs};
use crate::engine::{EngineBuilder, EngineError};

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
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

/// Runs the standalone server until SIGTERM or SIGINT, then shuts down gracefully.
pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    let config = args.resolve()?;
    let mut builder = EngineBuilder::new().config(config.engine.clone());
    builder = match config.auth {
        AuthMode::Jwt(verifier) => {
            tracing::info!(alg = %verifier.algorithm(), "JWT authentication");
            builder.authenticator(JwtAuthenticator::new(*verifier))
        }
        AuthMode::Dev => {
            for _ in 0..3 {
                tracing::warn!(
                    "INSECURE --dev MODE: any token is accepted as the user id. Never use this in production."
                );
            }
            builder.authenticator(DevAuthenticator)
        }
    };
    if config.rooms.is_empty() {
        tracing::info!("no --allow-rooms: every client join is rejected (default deny)");
    }
    builder = builder.room_validator(config.rooms);
    match config.api_key {
        Some(key) => builder = builder.api_key(key),
        None => tracing::info!("no --api-key: POST /api/publish answers 401"),
    }
    if !config.redis.is_empty() {
        // Custom client events go to the backend on `ws:inbound`, as the Ignis app does.
        builder = builder.on_message(|handle, message| async move {
            handle.forward_inbound(&message);
        });
    }
    builder = crate::redis::attach(builder, &config.redis);
    // Handlers first: a signal that arrives right after start must not kill the process
    // with its default action.
    let signals = Signals::install()?;
    let engine = builder.start()?;
    println!("listening on {}", engine.local_addr());
    signals.wait();
    tracing::info!("signal received: shutting down");
    engine.shutdown();
    tracing::info!("bye");
    Ok(())
}

/// SIGTERM and SIGINT handlers, installed before the engine starts.
struct Signals {
    runtime: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, ServeError> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServeError::Signals)?;
        let _guard = runtime.enter();
        let term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
        let int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
        drop(_guard);
        Ok(Signals { runtime, term, int })
    }

    /// Blocks until SIGTERM or SIGINT.
    fn wait(mut self) {
        self.runtime.block_on(async {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
        });
    }
}

/// Mints a JWT for `shardcast token`.
pub fn mint(args: TokenArgs) -> Result<String, ServeError> {
    let alg: JwtAlgorithm = args
        .alg
        .parse()
        .map_err(|e: JwtConfigError| ServeError::Token(e.to_string()))?;
    let mut claims = serde_json::Map::new();
    for claim in &args.claims {
        let (key, value) = jwt::parse_claim(claim).map_err(|e| ServeError::Token(e.to_string()))?;
        claims.insert(key, value);
    }
    let ttl = args.ttl_s.map(std::time::Duration::from_secs);
    jwt::mint_token(alg, args.secret.as_bytes(), &args.sub, ttl, claims)
        .map_err(|e: JwtError| ServeError::Token(e.to_string()))
}

/// Publishes one envelope for `shardcast emit`.
pub fn emit(args: EmitArgs) -> Result<(), ServeError> {
    crate::redis::emit_once(args).map_err(ServeError::Emit)
}

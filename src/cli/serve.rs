//! `shardcast serve`: the standalone server — the engine with JWT (or dev) auth, the glob
//! room policy, the HTTP API key, Redis and TLS, run until SIGTERM or SIGINT. SIGHUP
//! re-reads the TLS certificate and key (logged once; a bad file keeps the old ones).

use shardcast::hooks::{DevAuthenticator, JwtAuthenticator};
use shardcast::redis::RedisSettings;
use shardcast::tls::TlsError;
use shardcast::{Engine, EngineBuilder, Handle};

use super::CommandError;
use super::args::ServeArgs;
use super::config::{AuthMode, ServeConfig};

/// Runs the standalone server until SIGTERM or SIGINT, then shuts down gracefully;
/// reloads the TLS files on SIGHUP.
pub fn run(args: ServeArgs) -> Result<(), CommandError> {
    let builder = builder(args.resolve()?);
    // Handlers first: a signal that arrives right after start must not kill the process
    // with its default action.
    let signals = Signals::install()?;
    let engine = builder.start()?;
    println!("listening on {}", engine.local_addr());
    signals.wait(&engine);
    tracing::info!("signal received: shutting down");
    engine.shutdown();
    tracing::info!("bye");
    Ok(())
}

/// The engine the configuration describes.
fn builder(config: ServeConfig) -> EngineBuilder {
    if config.engine.allowed_origins.is_empty() {
        tracing::info!("no --allowed-origins: every Origin may upgrade");
    }
    let mut builder = EngineBuilder::new().config(config.engine);
    builder = with_auth(builder, config.auth);
    if config.rooms.is_empty() {
        tracing::info!("no --allow-rooms: every client join is rejected (default deny)");
    }
    builder = builder.room_validator(config.rooms);
    if let Some(tls) = config.tls {
        tracing::info!(cert = %tls.cert_path.display(), "TLS: wss:// and https:// only");
        builder = builder.tls(tls);
    }
    match config.api_key {
        Some(key) => builder = builder.api_key(key),
        None => tracing::info!("no --api-key: POST /api/publish answers 401"),
    }
    if let Some(key) = config.dashboard_key {
        builder = builder.dashboard_key(key);
    }
    if config.redis.is_empty() {
        return builder;
    }
    // Custom client events go to the backend on `ws:inbound`, as the Ignis app does.
    builder
        .on_message(|handle: Handle, message| async move {
            handle.forward_inbound(&message);
        })
        .redis(RedisSettings::new(config.redis))
}

fn with_auth(builder: EngineBuilder, auth: AuthMode) -> EngineBuilder {
    match auth {
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
    }
}

/// SIGTERM, SIGINT and SIGHUP handlers, installed before the engine starts.
struct Signals {
    runtime: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, CommandError> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CommandError::Signals)?;
        let guard = runtime.enter();
        let term = signal(SignalKind::terminate()).map_err(CommandError::Signals)?;
        let int = signal(SignalKind::interrupt()).map_err(CommandError::Signals)?;
        let hup = signal(SignalKind::hangup()).map_err(CommandError::Signals)?;
        drop(guard);
        Ok(Signals {
            runtime,
            term,
            int,
            hup,
        })
    }

    /// Blocks until SIGTERM or SIGINT; reloads TLS on each SIGHUP meanwhile.
    fn wait(mut self, engine: &Engine) {
        self.runtime.block_on(async {
            loop {
                tokio::select! {
                    _ = self.term.recv() => return,
                    _ = self.int.recv() => return,
                    _ = self.hup.recv() => reload_tls(engine),
                }
            }
        });
    }
}

/// SIGHUP: re-reads the TLS files; one log line says what happened.
fn reload_tls(engine: &Engine) {
    match engine.reload_tls() {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded; new connections use it"),
        Err(TlsError::NotEnabled) => tracing::info!("SIGHUP: TLS is off, nothing to reload"),
        Err(err) => tracing::error!(
            "SIGHUP: TLS reload failed, still serving the previous certificate: {err}"
        ),
    }
}

//! `shardcast serve`: the standalone server — the engine with JWT (or dev) auth, the glob
//! room policy, the HTTP API key, Redis and TLS, run until SIGTERM or SIGINT (graceful:
//! clients get 1001). SIGHUP reloads the config file ([`super::reload`]).

use shardcast::hooks::{DevAuthenticator, JwtAuthenticator};
use shardcast::redis::{RedisSettings, ShardedCheckError, SubscribeMode, check_sharded};
use shardcast::{Engine, EngineBuilder, Handle};

use super::CommandError;
use super::args::ServeArgs;
use super::auth::AuthMode;
use super::config::{self, ServeConfig};
use super::layers::Layers;
use super::logging::Logging;
use super::reload::{Live, LiveRooms};

/// Runs the standalone server until SIGTERM or SIGINT, then shuts down gracefully;
/// reloads the configuration on SIGHUP.
pub fn run(args: ServeArgs) -> Result<(), CommandError> {
    let base = Layers::capture(args.flags).map_err(config::CliError::from)?;
    let config = config::load(&base)?;
    let logging = Logging::install(&config.log_filter, config.log_format);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if config.redis_subscribe == SubscribeMode::Sharded && !config.redis.is_empty() {
        check_sharded_fleet(&config.redis)?;
    }
    let rooms = LiveRooms::new(config.rooms.clone());
    let running = config.settings.clone();
    let builder = builder(config, rooms.clone());
    // Handlers first: a signal that arrives right after start must not kill the process
    // with its default action.
    let signals = Signals::install()?;
    let engine = builder.start()?;
    if let Some(addr) = engine.local_addr() {
        println!("listening on {addr}");
    }
    let live = Live {
        base,
        running,
        rooms,
        logging,
    };
    signals.wait(&engine, live);
    tracing::info!("signal received: shutting down");
    engine.shutdown();
    tracing::info!("bye");
    Ok(())
}

/// Sharded pub/sub loses every message between sharded and classic nodes: refuse to start
/// on a cluster that cannot carry it, or where classic listeners (Ignis nodes, shardcast in
/// another mode) are seen. Redis being unreachable is not a reason to refuse (the bridge
/// retries, and checks again when it first connects).
fn check_sharded_fleet(urls: &[String]) -> Result<(), CommandError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    let limit = RedisSettings::default().probe_timeout;
    match runtime.block_on(check_sharded(urls, limit)) {
        Ok(()) => {
            tracing::info!(
                "redis: sharded pub/sub checked (cluster, Redis 7+, no classic listeners)"
            );
            Ok(())
        }
        Err(e @ ShardedCheckError::Unreachable { .. }) => {
            tracing::warn!("redis: {e}; starting anyway, the bridge checks when it connects");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The engine the configuration describes.
fn builder(config: ServeConfig, rooms: LiveRooms) -> EngineBuilder {
    if config.engine.allowed_origins.is_empty() {
        tracing::info!("no allowed_origins: every Origin may upgrade");
    }
    let mut builder = EngineBuilder::new().config(config.engine);
    builder = with_auth(builder, config.auth);
    if config.rooms.is_empty() {
        tracing::info!("no allow_rooms: every client join is rejected (default deny)");
    }
    builder = builder.room_validator(rooms);
    if let Some(tls) = config.tls {
        tracing::info!(cert = %tls.cert_path.display(), "TLS: wss:// and https:// only");
        builder = builder.tls(tls);
    }
    match config.api_key {
        Some(key) => builder = builder.api_key(key),
        None => tracing::info!("no api_key: POST /api/publish answers 401"),
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
        .redis(RedisSettings {
            subscribe: config.redis_subscribe,
            ..RedisSettings::new(config.redis)
        })
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
                    "INSECURE dev MODE: any token is accepted as the user id. Never use this in production."
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

    /// Blocks until SIGTERM or SIGINT; reloads on each SIGHUP meanwhile.
    fn wait(mut self, engine: &Engine, mut live: Live) {
        self.runtime.block_on(async {
            loop {
                tokio::select! {
                    _ = self.term.recv() => return,
                    _ = self.int.recv() => return,
                    _ = self.hup.recv() => live.on_hangup(engine),
                }
            }
        });
    }
}

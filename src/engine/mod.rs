//! The engine: wires the layers together and owns the threads. [`EngineBuilder`] takes
//! the configuration and the hooks; [`EngineBuilder::start`] creates the router, every
//! shard and its inbox, the control thread and (when configured) the Redis bridge, before
//! any connection is accepted; [`Engine`] owns the threads; [`Handle`] is the `Send +
//! Sync` door any thread uses to push data, query and shut down.

mod builder;
mod control;
mod remote;
mod start;
mod upkeep;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

pub use builder::EngineBuilder;

use crate::config::ConfigError;
use crate::http::{ApiKey, HttpService};
use crate::redis::RedisConfigError;
use crate::routing::Handle;
use crate::shard::handoff::HandoffSender;
use crate::tls::{Tls, TlsError};

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A setting is invalid; the message names it and what it must be.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No authenticator: every engine needs one (Ignis requires `authenticateFn` too).
    #[error("no authenticator configured: call EngineBuilder::authenticate or ::authenticator")]
    NoAuthenticator,
    /// The listen address could not be bound (in use, or not permitted).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A thread or runtime could not be started (resource limits).
    #[error("cannot start engine threads: {0}")]
    Runtime(String),
    /// The Redis settings are unusable (e.g. a malformed URL).
    #[error(transparent)]
    Redis(#[from] RedisConfigError),
    /// The TLS certificate or key cannot be used; the message names the file and what it
    /// must contain.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// TLS was configured on an engine without a listener of its own.
    #[error(
        "TLS needs the engine's own listener: drop EngineBuilder::without_listener, or serve \
         TLS in the application that mounts the engine"
    )]
    TlsWithoutListener,
    /// History or presence rooms with several Redis URLs (a Redis Cluster) or in sharded
    /// pub/sub mode: their keys and scripts need one Redis. Use a single Redis URL (a
    /// primary, with replicas and Sentinel behind it if needed) in interest or patterns
    /// mode, or leave history_rooms and presence_rooms unset.
    #[error(
        "history_rooms and presence_rooms need a single Redis, not a cluster or sharded pub/sub: give one Redis URL (interest or patterns mode) or unset them"
    )]
    HistoryOnCluster,
}

/// A running engine. Dropping it without [`Engine::shutdown`] shuts it down too.
///
/// ```no_run
/// # fn demo() -> Result<(), shardcast::EngineError> {
/// let engine = shardcast::Engine::builder()
///     .authenticator(shardcast::hooks::DevAuthenticator)
///     .start()?;
/// if let Some(addr) = engine.local_addr() {
///     println!("listening on {addr}");
/// }
/// engine.shutdown();
/// # Ok(()) }
/// ```
pub struct Engine {
    handle: Handle,
    local_addr: Option<SocketAddr>,
    shard_threads: Vec<JoinHandle<()>>,
    control_thread: Option<JoinHandle<()>>,
    tls: Option<Arc<Tls>>,
    api_key: ApiKey,
    /// Read only by `crate::mount` (feature `axum`).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    doorway: Arc<Doorway>,
}

/// What an application's router needs to serve the engine (`crate::mount`): the HTTP
/// side shared with the engine's own port, and the shards' handoff queues.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) struct Doorway {
    /// The checks and answers of the engine's port.
    pub http: Arc<HttpService>,
    /// Every shard's handoff queue.
    shards: Vec<HandoffSender>,
    /// Round-robin over `shards`.
    next: AtomicUsize,
}

#[cfg_attr(not(feature = "axum"), allow(dead_code))]
impl Doorway {
    fn new(http: Arc<HttpService>, shards: Vec<HandoffSender>) -> Self {
        Doorway {
            http,
            shards,
            next: AtomicUsize::new(0),
        }
    }

    /// The handoff queue of the shard whose turn it is: connections spread evenly, and
    /// the shard gives each an id that hashes to itself.
    pub fn next_shard(&self) -> &HandoffSender {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.shards[turn % self.shards.len()]
    }
}

impl Engine {
    /// Starts building an engine with the Ignis defaults.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::new()
    }

    /// The handle applications use to deliver messages.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The address the engine listens on (useful with port 0); `None` when it runs
    /// without a listener ([`EngineBuilder::without_listener`]).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// What the `mount` handlers of this engine share.
    #[cfg(feature = "axum")]
    pub(crate) fn doorway(&self) -> Arc<Doorway> {
        self.doorway.clone()
    }

    /// Re-reads the TLS certificate and key files (after they were renewed). New
    /// handshakes use the new certificate; open connections stay as they are. On an error
    /// (a missing file, bad PEM, a key that does not match) the current certificate stays
    /// in use. [`TlsError::NotEnabled`] when the engine serves plain TCP.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        self.tls.as_ref().ok_or(TlsError::NotEnabled)?.reload()
    }

    /// Replaces the Bearer key of `POST /api/publish` and the `/api/` queries (`None`:
    /// they answer 401). Requests that arrive afterwards are checked against the new key;
    /// nothing else changes. The standalone server calls it on SIGHUP.
    pub fn set_api_key(&self, key: Option<String>) {
        self.api_key.set(key);
    }

    /// Blocks until the engine stops (after [`Handle::shutdown`] or a signal handled by
    /// the caller).
    pub fn wait(mut self) {
        self.join_all();
    }

    /// Stops accepting, closes every client with 1001 "Server shutting down", flushes,
    /// disconnects from Redis and joins every thread.
    pub fn shutdown(mut self) {
        self.handle.shutdown();
        self.join_all();
    }

    fn join_all(&mut self) {
        if let Some(control) = self.control_thread.take() {
            let _ = control.join();
        }
        for thread in self.shard_threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.control_thread.is_some() {
            self.handle.shutdown();
            self.join_all();
        }
    }
}

//! [`EngineBuilder`]: configuration and hooks in, a running [`Engine`] out.

use std::future::Future;
use std::net::TcpListener as StdListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, mpsc};

use tokio::sync::Notify;

use super::callbacks::{Callbacks, ConnectedClient, DisconnectedClient, FnMessageHandler};
use super::{Engine, EngineShared, Handle, HttpSettings, MessageHandler, Remote};
use crate::auth::{AuthError, AuthRequest, Authenticator, FnAuthenticator, Identity};
use crate::broker::Broker;
use crate::config::{ConfigError, EngineConfig};
use crate::id::ServerId;
use crate::metrics::{Metrics, ShardMetrics};
use crate::rooms::{FnValidator, JoinRequest, RoomValidator};
use crate::shard::{self, inbox, placement::ShardId};

/// Builds the connection to other instances once the engine's handle exists.
pub type RemoteFactory =
    Box<dyn FnOnce(Handle, &tokio::runtime::Handle) -> Result<Arc<dyn Remote>, String> + Send>;

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A setting is invalid; the message names it.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// No authenticator: every engine needs one (Ignis requires `authenticateFn` too).
    #[error("no authenticator configured: call EngineBuilder::authenticate or ::authenticator")]
    NoAuthenticator,
    /// The listen address could not be bound (in use, or not permitted).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A thread or runtime could not be started (resource limits).
    #[error("cannot start engine threads: {0}")]
    Runtime(String),
    /// The remote (Redis) settings are unusable (e.g. a malformed URL).
    #[error("cannot configure Redis: {0}")]
    Remote(String),
}

/// Configures and starts an [`Engine`]. Every setting defaults to the Ignis default.
#[must_use]
pub struct EngineBuilder {
    config: EngineConfig,
    http: HttpSettings,
    callbacks: Callbacks,
    listener: Option<StdListener>,
    remote: Option<RemoteFactory>,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineBuilder {
    /// A builder with [`EngineConfig::default`].
    pub fn new() -> Self {
        EngineBuilder {
            config: EngineConfig::default(),
            http: HttpSettings::default(),
            callbacks: Callbacks::default(),
            listener: None,
            remote: None,
        }
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Changes the configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut EngineConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// Uses an already-bound listener instead of binding `config.listen`.
    pub fn listener(mut self, listener: StdListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Enables `POST /api/publish` and the `/api/` queries with this Bearer key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.http.api_key = Some(key.into());
        self
    }

    /// Sets the authenticator (required).
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.callbacks.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// Sets the authenticator from a closure (Ignis `authenticateFn`).
    pub fn authenticate<F, Fut>(self, f: F) -> Self
    where
        F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<Identity>, AuthError>> + 'static,
    {
        self.authenticator(FnAuthenticator(f))
    }

    /// Sets the room validator; without one every join is rejected.
    pub fn room_validator(mut self, validator: impl RoomValidator) -> Self {
        self.callbacks.validator = Some(Arc::new(validator));
        self
    }

    /// Sets the room validator from a closure (Ignis `validateRoomFn`).
    pub fn validate_rooms<F, Fut>(self, f: F) -> Self
    where
        F: Fn(JoinRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<String>> + 'static,
    {
        self.room_validator(FnValidator(f))
    }

    /// Sets the handler of custom client events.
    pub fn message_handler(mut self, handler: impl MessageHandler) -> Self {
        self.callbacks.on_message = Some(Arc::new(handler));
        self
    }

    /// Sets the handler of custom client events from a closure (Ignis `messageHandler`).
    pub fn on_message<F, Fut>(self, f: F) -> Self
    where
        F: Fn(Handle, super::ClientMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.message_handler(FnMessageHandler(f))
    }

    /// Called after a client is authenticated (Ignis `clientConnectedFn`).
    pub fn on_connect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Handle, ConnectedClient) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.callbacks.on_connect = Some(Arc::new(move |h: &Handle, c| Box::pin(f(h.clone(), c))));
        self
    }

    /// Called when a connected client goes (Ignis `clientDisconnectedFn`).
    pub fn on_disconnect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Handle, DisconnectedClient) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.callbacks.on_disconnect =
            Some(Arc::new(move |h: &Handle, c| Box::pin(f(h.clone(), c))));
        self
    }

    /// Replaces the built-in ECDH handshake (Ignis `handshakeFn`); runs after the
    /// authenticator when `require_encryption` is set.
    pub fn handshake(mut self, handshake: impl crate::conn::encryption::Handshake) -> Self {
        self.callbacks.handshake = Some(Arc::new(handshake));
        self
    }

    /// Transforms every message to encrypted clients (Ignis `outboundTransformer`).
    pub fn outbound_transformer(
        mut self,
        transformer: impl crate::conn::encryption::OutboundTransformer,
    ) -> Self {
        self.callbacks.transformer = Some(Arc::new(transformer));
        self
    }

    /// Connects the engine to other instances (the Redis bridge uses this).
    pub fn remote(mut self, factory: RemoteFactory) -> Self {
        self.remote = Some(factory);
        self
    }

    /// Creates every shard and inbox, binds, and starts accepting.
    pub fn start(self) -> Result<Engine, EngineError> {
        self.config.validate()?;
        if self.callbacks.authenticator.is_none() {
            return Err(EngineError::NoAuthenticator);
        }
        let listener = match self.listener {
            Some(l) => l,
            None => bind(self.config.listen)?,
        };
        let local_addr = listener.local_addr().map_err(|source| EngineError::Bind {
            addr: self.config.listen,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| EngineError::Runtime(e.to_string()))?;

        let shard_count = self.config.resolved_shards().min(usize::from(u16::MAX));
        let metrics = Arc::new(Metrics::default());
        let shard_metrics: Vec<Arc<ShardMetrics>> =
            (0..shard_count).map(|_| Arc::default()).collect();
        metrics.set_shards(shard_metrics.clone());
        let (senders, inboxes): (Vec<_>, Vec<_>) = (0..shard_count)
            .map(|i| inbox::inbox(ShardId(i as u16), self.config.shard_inbox_capacity))
            .unzip();
        let broker = Broker::new(senders.into(), metrics.clone());
        let shared = Arc::new(EngineShared {
            config: self.config,
            http: self.http,
            server_id: ServerId::random(),
            callbacks: self.callbacks,
            broker,
            metrics,
            remote: std::sync::OnceLock::new(),
            shutting_down: AtomicBool::new(false),
            shutdown_requested: Notify::new(),
        });

        // The remote exists before any connection is accepted.
        let control_thread = super::control::spawn(shared.clone(), self.remote)?;
        let fail = |err: EngineError| {
            // Let the control thread (and any shard already running) stop.
            Handle {
                shared: shared.clone(),
            }
            .shutdown();
            err
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut shard_threads = Vec::with_capacity(shard_count);
        for (i, (inbox, metrics)) in inboxes.into_iter().zip(shard_metrics).enumerate() {
            // Every shard accepts on its own handle of the one listening socket.
            let listener = listener
                .try_clone()
                .map_err(|e| fail(EngineError::Runtime(e.to_string())))?;
            let thread = shard::spawn(
                ShardId(i as u16),
                inbox,
                listener,
                shared.clone(),
                metrics,
                ready_tx.clone(),
            )
            .map_err(|e| fail(EngineError::Runtime(e.to_string())))?;
            shard_threads.push(thread);
        }
        drop(listener);
        drop(ready_tx);
        for _ in 0..shard_count {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(fail(EngineError::Runtime(e))),
                Err(_) => {
                    return Err(fail(EngineError::Runtime(
                        "a shard thread died at start".into(),
                    )));
                }
            }
        }
        tracing::info!(
            server_id = %shared.server_id,
            shards = shard_count,
            addr = %local_addr,
            path = %shared.config.path,
            "shardcast engine started"
        );
        Ok(Engine {
            handle: Handle { shared },
            local_addr,
            shard_threads,
            control_thread: Some(control_thread),
        })
    }
}

/// Binds with `SO_REUSEADDR` and a deep accept backlog (connection storms).
fn bind(addr: std::net::SocketAddr) -> Result<StdListener, EngineError> {
    let err = |source| EngineError::Bind { addr, source };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(4096).map_err(err)?;
    Ok(socket.into())
}

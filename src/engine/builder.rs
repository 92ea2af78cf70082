//! [`EngineBuilder`]: configuration and hooks in, a running [`Engine`] out.

use std::future::Future;
use std::net::TcpListener as StdListener;

use super::{Engine, EngineError};
use crate::config::EngineConfig;
use crate::hooks::auth::FnAuthenticator;
use crate::hooks::message::{FnMessageHandler, lifecycle_hook};
use crate::hooks::rooms::FnValidator;
use crate::hooks::{
    AuthError, AuthRequest, Authenticator, ClientMessage, ConnectedClient, DisconnectedClient,
    Handshake, Hooks, Identity, JoinRequest, MessageHandler, OutboundTransformer, RoomValidator,
};
use crate::redis::RedisSettings;
use crate::routing::Handle;
use crate::tls::TlsConfig;

/// Configures and starts an [`Engine`]. Every setting defaults to the Ignis default.
///
/// ```no_run
/// use shardcast::Engine;
/// use shardcast::hooks::Identity;
///
/// let engine = Engine::builder()
///     .configure(|c| c.listen = "127.0.0.1:0".parse().unwrap())
///     .authenticate(|req| async move {
///         Ok(req.token().map(|t| Identity { user_id: Some(t), ..Default::default() }))
///     })
///     .validate_rooms(|req| async move { req.rooms })
///     .on_message(|handle, message| async move {
///         let _ = handle.send_to_room("echo", &message.event, &1, &[]);
///     })
///     .start()
///     .expect("engine starts");
/// engine.shutdown();
/// ```
#[must_use]
pub struct EngineBuilder {
    pub(super) config: EngineConfig,
    pub(super) api_key: Option<String>,
    pub(super) dashboard_key: Option<String>,
    pub(super) hooks: Hooks,
    pub(super) listener: Listener,
    pub(super) redis: Option<RedisSettings>,
    /// The conformance server's echo mode (see `internals::conformance`).
    pub(crate) echo: bool,
    pub(super) tls: Option<TlsConfig>,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineBuilder {
    /// A builder with [`EngineConfig::default`], no hooks, no Redis.
    pub fn new() -> Self {
        EngineBuilder {
            config: EngineConfig::default(),
            api_key: None,
            dashboard_key: None,
            hooks: Hooks::default(),
            listener: Listener::Bind,
            redis: None,
            echo: false,
            tls: None,
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
        self.listener = Listener::Given(listener);
        self
    }

    /// Runs without a listener of its own (`config.listen` is not bound): connections
    /// come only from an application's router (`mount::websocket`, feature `axum`),
    /// and the built-in endpoints are served only where the application mounts them.
    /// TLS, which belongs to the engine's listener, cannot be combined with it.
    pub fn without_listener(mut self) -> Self {
        self.listener = Listener::None;
        self
    }

    /// Enables `POST /api/publish` and the `/api/` queries with this Bearer key
    /// (default: none, and they answer 401).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// A second Bearer key that shows the whole dashboard (`/dashboard`,
    /// `GET /api/dashboard`) and nothing else: for operators who must not publish or
    /// disconnect (default: none; the API key always works). See
    /// [`EngineConfig::dashboard`](crate::EngineConfig::dashboard) for the modes.
    pub fn dashboard_key(mut self, key: impl Into<String>) -> Self {
        self.dashboard_key = Some(key.into());
        self
    }

    /// Joins a fleet over Redis (default: a single node): one bridge per process carries
    /// Ignis envelopes to and from every other node, Ignis or shardcast.
    pub fn redis(mut self, settings: RedisSettings) -> Self {
        self.redis = Some(settings);
        self
    }

    /// Serves TLS on the port with the certificate and key of `config` (default: plain
    /// TCP). Every connection is then TLS: wss and https share the port, the handshake
    /// runs on the accepting shard, and a client that does not speak TLS is closed. The
    /// files are read (and checked to belong together) when the engine starts, and again
    /// on [`Engine::reload_tls`].
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Starts the engine: see [`Engine`].
    pub fn start(self) -> Result<Engine, EngineError> {
        super::start::start(self)
    }
}

/// Where the engine's connections come from.
pub(super) enum Listener {
    /// Bind `config.listen` (the default).
    Bind,
    /// An already-bound listener.
    Given(StdListener),
    /// No listener: connections come only through an application's router.
    None,
}

/// The hooks (see [`crate::hooks`]).
impl EngineBuilder {
    /// Sets the authenticator (required).
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.hooks.authenticator = Some(std::sync::Arc::new(authenticator));
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
        self.hooks.validator = Some(std::sync::Arc::new(validator));
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
        self.hooks.on_message = Some(std::sync::Arc::new(handler));
        self
    }

    /// Sets the handler of custom client events from a closure (Ignis `messageHandler`).
    pub fn on_message<F, Fut>(self, f: F) -> Self
    where
        F: Fn(Handle, ClientMessage) -> Fut + Send + Sync + 'static,
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
        self.hooks.on_connect = Some(lifecycle_hook(f));
        self
    }

    /// Called when a connected client goes (Ignis `clientDisconnectedFn`).
    pub fn on_disconnect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Handle, DisconnectedClient) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.hooks.on_disconnect = Some(lifecycle_hook(f));
        self
    }

    /// Replaces the built-in ECDH handshake (Ignis `handshakeFn`); runs after the
    /// authenticator when `require_encryption` is set.
    pub fn handshake(mut self, handshake: impl Handshake) -> Self {
        self.hooks.handshake = Some(std::sync::Arc::new(handshake));
        self
    }

    /// Transforms every message to encrypted clients (Ignis `outboundTransformer`).
    pub fn outbound_transformer(mut self, transformer: impl OutboundTransformer) -> Self {
        self.hooks.transformer = Some(std::sync::Arc::new(transformer));
        self
    }
}

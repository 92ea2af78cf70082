//! Every hook an application plugs into the engine, in one place: the Ignis
//! `authenticateFn`, `validateRoomFn`, `clientConnectedFn`, `clientDisconnectedFn`,
//! `messageHandler`, `handshakeFn` and `outboundTransformer`, as traits (with closure
//! adapters on [`crate::EngineBuilder`]) and the values they receive.
//!
//! - [`auth`]: [`Authenticator`] and the two the standalone server offers
//!   ([`JwtAuthenticator`], [`DevAuthenticator`]).
//! - [`rooms`]: [`RoomValidator`] (with an implementation for the glob
//!   [`RoomPolicy`](crate::rooms::glob::RoomPolicy)).
//! - [`message`]: [`MessageHandler`], and the connect/disconnect notifications.
//! - [`encryption`]: [`Handshake`] and [`OutboundTransformer`].
//! - [`upgrade`]: [`UpgradeInfo`], what the client's upgrade request said (headers,
//!   cookies, peer, path, query), for an authenticator that accepts the application's
//!   own session.
//!
//! # Contract
//!
//! Hooks are shared by every shard (`Send + Sync`) and called on the shard that owns the
//! connection; the futures they return run there and need not be `Send` ([`LocalFuture`]).
//! A hook that finishes at once costs no task: the shard polls its future once in place
//! and spawns it only if it is still pending. A hook must not block its thread: every
//! other connection of that shard waits meanwhile.
//!
//! # Example
//!
//! A hook as a type (closures work too: [`crate::EngineBuilder::authenticate`]):
//!
//! ```
//! use shardcast::hooks::{AuthError, AuthRequest, Authenticator, Identity, LocalFuture};
//!
//! /// Tokens `key-<user>` are valid for `<user>`.
//! struct ApiKeys;
//!
//! impl Authenticator for ApiKeys {
//!     fn authenticate(&self, request: AuthRequest) -> LocalFuture<Result<Option<Identity>, AuthError>> {
//!         let user = request.token().and_then(|t| t.strip_prefix("key-").map(str::to_owned));
//!         let identity = user.map(|user| Identity { user_id: Some(user), ..Default::default() });
//!         Box::pin(async move { Ok(identity) })
//!     }
//! }
//!
//! let builder = shardcast::Engine::builder().authenticator(ApiKeys);
//! # drop(builder);
//! ```

pub mod auth;
pub mod encryption;
pub mod message;
pub mod rooms;
pub mod upgrade;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use auth::{
    AuthError, AuthRequest, Authenticator, DevAuthenticator, Identity, JwtAuthenticator,
};
pub use encryption::{Handshake, HandshakeRequest, OutboundTransformer};
pub use message::{ConnectedClient, DisconnectedClient, MessageHandler};
pub use rooms::{JoinRequest, RoomValidator};
pub use upgrade::UpgradeInfo;

pub use crate::protocol::ClientMessage;

/// A boxed future that runs on the shard that owns the connection (it need not be `Send`).
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

/// Every configured hook; `None` means "not configured".
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub authenticator: Option<Arc<dyn Authenticator>>,
    pub validator: Option<Arc<dyn RoomValidator>>,
    pub on_message: Option<Arc<dyn MessageHandler>>,
    pub on_connect: Option<message::LifecycleHook<ConnectedClient>>,
    pub on_disconnect: Option<message::LifecycleHook<DisconnectedClient>>,
    pub handshake: Option<Arc<dyn Handshake>>,
    pub transformer: Option<Arc<dyn OutboundTransformer>>,
}

//! The application's hooks into the engine (Ignis' `authenticateFn`, `validateRoomFn`,
//! `clientConnectedFn`, `clientDisconnectedFn`, `messageHandler`).
//!
//! Hooks are shared by every shard (`Send + Sync`); the futures they return run on the
//! shard that owns the connection and need not be `Send`.

use std::future::Future;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::Handle;
use crate::auth::{Authenticator, LocalFuture};
use crate::conn::encryption::{Handshake, OutboundTransformer};
use crate::id::ClientId;
use crate::rooms::RoomValidator;

/// A custom event from an authenticated client.
#[derive(Debug, Clone)]
pub struct ClientMessage {
    /// The sender.
    pub client_id: ClientId,
    /// The sender's user id, if any.
    pub user_id: Option<Arc<str>>,
    /// The event name.
    pub event: String,
    /// The raw `data` member, if present.
    pub data: Option<Box<RawValue>>,
    /// The raw `id` member, if present.
    pub id: Option<Box<RawValue>>,
}

/// A client that has just been authenticated (after `connected` was queued).
#[derive(Debug, Clone)]
pub struct ConnectedClient {
    /// Its id.
    pub client_id: ClientId,
    /// Its user id, if any.
    pub user_id: Option<Arc<str>>,
    /// The authenticator's metadata.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// A client that has gone (only clients that were reported connected are reported gone).
#[derive(Debug, Clone)]
pub struct DisconnectedClient {
    /// Its id.
    pub client_id: ClientId,
    /// Its user id, if any.
    pub user_id: Option<Arc<str>>,
}

/// Receives custom events from authenticated clients.
pub trait MessageHandler: Send + Sync + 'static {
    /// Handles one event.
    fn on_message(&self, handle: &Handle, message: ClientMessage) -> LocalFuture<()>;
}

/// Hears about clients arriving and leaving.
pub trait LifecycleHandler: Send + Sync + 'static {
    /// A client was authenticated.
    fn on_connect(&self, handle: &Handle, client: ConnectedClient) -> LocalFuture<()>;
    /// A previously connected client disconnected.
    fn on_disconnect(&self, handle: &Handle, client: DisconnectedClient) -> LocalFuture<()>;
}

/// A lifecycle hook as stored: called on the shard, returns a local future.
pub(crate) type Hook<T> = Arc<dyn Fn(&Handle, T) -> LocalFuture<()> + Send + Sync>;

/// Every hook; `None` means "not configured".
#[derive(Clone, Default)]
pub(crate) struct Callbacks {
    pub authenticator: Option<Arc<dyn Authenticator>>,
    pub validator: Option<Arc<dyn RoomValidator>>,
    pub on_message: Option<Arc<dyn MessageHandler>>,
    pub on_connect: Option<Hook<ConnectedClient>>,
    pub on_disconnect: Option<Hook<DisconnectedClient>>,
    pub handshake: Option<Arc<dyn Handshake>>,
    pub transformer: Option<Arc<dyn OutboundTransformer>>,
}

/// Adapts a closure `Fn(Handle, ClientMessage) -> impl Future<Output = ()>`.
pub(crate) struct FnMessageHandler<F>(pub F);

impl<F, Fut> MessageHandler for FnMessageHandler<F>
where
    F: Fn(Handle, ClientMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    fn on_message(&self, handle: &Handle, message: ClientMessage) -> LocalFuture<()> {
        Box::pin((self.0)(handle.clone(), message))
    }
}

/// Runs a hook's future: polled once in place (most hooks finish at once), spawned on the
/// shard's local executor only if it is still pending.
pub(crate) fn run_local(mut future: LocalFuture<()>) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if future.as_mut().poll(&mut cx).is_pending() {
        tokio::task::spawn_local(future);
    }
}

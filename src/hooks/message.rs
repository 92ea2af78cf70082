//! Custom client events ([`MessageHandler`]) and the connect/disconnect notifications.

use std::future::Future;
use std::sync::Arc;

use super::LocalFuture;
use crate::id::ClientId;
use crate::protocol::ClientMessage;
use crate::routing::Handle;

/// Receives custom events from authenticated clients.
pub trait MessageHandler: Send + Sync + 'static {
    /// Handles one event.
    fn on_message(&self, handle: &Handle, message: ClientMessage) -> LocalFuture<()>;
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

/// A connect or disconnect hook as stored: called on the shard, returns a local future.
pub(crate) type LifecycleHook<T> = Arc<dyn Fn(&Handle, T) -> LocalFuture<()> + Send + Sync>;

/// Adapts a closure `Fn(Handle, T) -> impl Future<Output = ()>` to a [`LifecycleHook`].
pub(crate) fn lifecycle_hook<T, F, Fut>(f: F) -> LifecycleHook<T>
where
    F: Fn(Handle, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    Arc::new(move |handle: &Handle, value| Box::pin(f(handle.clone(), value)))
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

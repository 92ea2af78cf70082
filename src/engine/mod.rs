//! The engine: shards, broker and acceptor started together, and the [`Handle`] through
//! which applications deliver messages.
//!
//! [`EngineBuilder`] creates every shard and its inbox before the listener accepts
//! anything; [`Engine`] owns the threads; [`Handle`] is the `Send + Sync` door any thread
//! uses to push data, query and shut down.

mod builder;
pub mod callbacks;
mod control;
mod handle;
mod remote;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tokio::sync::Notify;

pub use builder::{EngineBuilder, EngineError, RemoteFactory};
pub use callbacks::{
    ClientMessage, ConnectedClient, DisconnectedClient, LifecycleHandler, MessageHandler,
};
pub use handle::{Destination, Handle, Publication, SendError};
pub use remote::Remote;

use crate::broker::Broker;
use crate::config::EngineConfig;
use crate::id::ServerId;
use crate::metrics::Metrics;
use callbacks::Callbacks;

/// Standalone-server extras served on the engine's port.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// Bearer key for `POST /api/publish`; `None` disables the publish API (401).
    pub api_key: Option<String>,
}

/// State shared by every thread of one engine.
pub(crate) struct EngineShared {
    pub config: EngineConfig,
    pub http: HttpSettings,
    pub server_id: ServerId,
    pub callbacks: Callbacks,
    pub broker: Broker,
    pub metrics: Arc<Metrics>,
    pub remote: std::sync::OnceLock<Arc<dyn Remote>>,
    pub shutting_down: AtomicBool,
    pub shutdown_requested: Notify,
}

impl EngineShared {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// A running engine. Dropping it without [`Engine::shutdown`] shuts it down too.
pub struct Engine {
    handle: Handle,
    local_addr: SocketAddr,
    shard_threads: Vec<JoinHandle<()>>,
    control_thread: Option<JoinHandle<()>>,
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

    /// The address the engine listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
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

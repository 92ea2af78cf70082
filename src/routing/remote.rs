//! The engine's view of other instances: something that carries messages to them.
//!
//! The Redis bridge is the one implementation (wired by the engine); without Redis the
//! engine runs as a single node and has no remote.

use std::future::Future;
use std::pin::Pin;

use crate::metrics::RedisStats;
use crate::protocol::forward::ForwardSlot;
use crate::protocol::{Frame, Target};

/// A future the control thread awaits at shutdown.
pub(crate) type ShutdownFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Carries envelopes and inbound client events to other instances.
pub(crate) trait Remote: Send + Sync + 'static {
    /// Publishes a message for other instances (non-blocking; may drop and count when
    /// the remote is down, never grows without bound). Returns whether it was queued.
    fn publish(&self, target: &Target, message: &Frame, exclude: &[String]) -> bool;
    /// Forwards a custom client event (`ws:inbound` payload) to the backend; `slot` is
    /// held until the event leaves the queue. Returns whether it was queued.
    fn publish_inbound(&self, payload: Vec<u8>, slot: Option<ForwardSlot>) -> bool;
    /// Whether the remote is connected and subscribed.
    fn is_ready(&self) -> bool;
    /// Its links, queue and counters, for a metrics scrape.
    fn stats(&self) -> RedisStats;
    /// Disconnects (called once, at shutdown).
    fn shutdown(&self) -> ShutdownFuture;
}

/// The remote as an operator sees it (the dashboard's "Redis" line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct RemoteStatus {
    /// Each connection: its name (`subscriber`, `publisher`) and state (`up` or
    /// `down`).
    pub links: Vec<RemoteLink>,
    /// Messages waiting to be published.
    pub queued: usize,
    /// Connections lost and re-established since start (both links).
    pub reconnects: u64,
    /// Liveness probes that went unanswered.
    pub probe_timeouts: u64,
    /// Messages dropped: queue full, refused by Redis, or abandoned at shutdown.
    pub publish_dropped: u64,
}

/// One connection of the remote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct RemoteLink {
    /// What it does: `subscriber` or `publisher`.
    pub name: &'static str,
    /// Its state: `up` or `down`.
    pub state: &'static str,
}

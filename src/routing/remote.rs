//! The engine's view of other instances: something that carries messages to them.
//!
//! The Redis bridge is the one implementation (wired by the engine); without Redis the
//! engine runs as a single node and has no remote.

use std::future::Future;
use std::pin::Pin;

use crate::history::{Query, Snapshot};
use crate::metrics::RedisStats;
use crate::presence::PresenceEntry;
use crate::protocol::forward::ForwardSlot;
use crate::protocol::{Frame, Target};

/// A future the control thread awaits at shutdown.
pub(crate) type ShutdownFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An answer the remote gives later (it asks Redis).
pub(crate) type RemoteAnswer<T> = Pin<Box<dyn Future<Output = Result<T, RemoteError>> + Send>>;

/// A presence room as Redis has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PresenceRead {
    /// Its members, sorted by client id.
    pub current: Vec<PresenceEntry>,
    /// Members whose node stopped renewing them, removed by this read: this node
    /// announces their leave to its own members.
    pub expired: Vec<PresenceEntry>,
}

/// Why the remote could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// Redis did not answer (down, or slower than the probe timeout), or refused; the
    /// detail says which. Retry once Redis is back (`/ready` says when).
    #[error("Redis is unavailable ({0}); retry when it is back")]
    Unavailable(String),
}

/// Carries envelopes and inbound client events to other instances.
pub(crate) trait Remote: Send + Sync + 'static {
    /// Publishes a message for other instances (non-blocking; may drop and count when
    /// the remote is down, never grows without bound). Returns whether it was queued.
    fn publish(&self, target: &Target, message: &Frame, exclude: &[String]) -> bool;
    /// Forwards a custom client event (`ws:inbound` payload) to the backend; `slot` is
    /// held until the event leaves the queue. Returns whether it was queued.
    fn publish_inbound(&self, payload: Vec<u8>, slot: Option<ForwardSlot>) -> bool;
    /// Publishes a message to a history room through the script that gives it its
    /// offset in Redis and keeps it there. It is delivered on every node, this one
    /// included, when Redis sends it back. Returns whether it was queued.
    fn publish_positioned(&self, room: &str, message: &Frame, exclude: &[String]) -> bool;
    /// Reads a room's history from Redis.
    fn read_history(&self, room: &str, query: &Query) -> RemoteAnswer<Snapshot>;
    /// Records a client in a presence room (refreshed by the remote until it leaves)
    /// and announces it to the other nodes with `announce` (its `ws:join`).
    fn presence_join(&self, room: &str, entry: &PresenceEntry, announce: &Frame) -> bool;
    /// Removes a client from a presence room and, when it was there, announces it to
    /// the other nodes with `announce` (its `ws:leave`).
    fn presence_leave(&self, room: &str, id: &str, announce: &Frame) -> bool;
    /// Renews this node's `members` (client id, `ws:join` data) of a presence room.
    fn presence_refresh(&self, room: &str, members: &[(String, Vec<u8>)]) -> bool;
    /// The fleet's members of a presence room, after removing (and announcing to the
    /// other nodes) those whose node stopped renewing them.
    fn read_presence(&self, room: &str) -> RemoteAnswer<PresenceRead>;
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

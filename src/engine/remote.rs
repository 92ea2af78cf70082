//! The engine's view of other instances: something that carries envelopes to them.
//!
//! The Redis bridge implements it; without Redis the engine runs as a single node and
//! has no remote.

use crate::protocol::envelope::Envelope;

/// Carries envelopes and inbound client events to other instances.
pub trait Remote: Send + Sync + 'static {
    /// Publishes an envelope for other instances (non-blocking; may drop and count when
    /// the remote is down, never grows without bound). Returns whether it was queued.
    fn publish_envelope(&self, envelope: &Envelope) -> bool;
    /// Forwards a custom client event (`ws:inbound` payload) to the backend.
    fn publish_inbound(&self, payload: Vec<u8>);
    /// Whether the remote is connected and subscribed.
    fn is_ready(&self) -> bool;
    /// Disconnects (called once, at shutdown).
    fn shutdown(&self) -> crate::auth::LocalFuture<()>;
}

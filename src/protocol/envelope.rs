//! PLACEHOLDER until the Redis layer lands: the Ignis Redis envelope.

/// Who an envelope is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeTarget {
    /// `ws:client:{id}`.
    Client(String),
    /// `ws:user:{id}`.
    User(String),
    /// `ws:room:{room}`.
    Room(String),
    /// `ws:broadcast`.
    Broadcast,
}

/// The Ignis envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Sender process id.
    pub server_id: String,
    /// Target.
    pub target: EnvelopeTarget,
    /// Event.
    pub event: String,
    /// Data JSON text.
    pub data: Option<String>,
    /// Excluded client ids.
    pub exclude: Vec<String>,
}

/// The emitter's server id.
pub const EMITTER_SERVER_ID: &str = "emitter";

//! The Ignis Redis channel names (`WebSocketChannels`), declared once.

/// Broadcast envelopes (SUBSCRIBE).
pub const BROADCAST: &str = "ws:broadcast";
/// Prefix of room channels; nodes PSUBSCRIBE `ws:room:*`.
pub const ROOM_PREFIX: &str = "ws:room:";
/// Prefix of client channels; nodes PSUBSCRIBE `ws:client:*`.
pub const CLIENT_PREFIX: &str = "ws:client:";
/// Prefix of user channels; nodes PSUBSCRIBE `ws:user:*`.
pub const USER_PREFIX: &str = "ws:user:";
/// The patterns every node PSUBSCRIBEs (`forRoomPattern`, `forClientPattern`,
/// `forUserPattern`).
pub const PATTERNS: [&str; 3] = ["ws:room:*", "ws:client:*", "ws:user:*"];
/// Custom client events forwarded to backends (see [`super::forward`]).
pub const INBOUND: &str = "ws:inbound";

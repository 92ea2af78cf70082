//! The Ignis Redis channel names (`WebSocketChannels`), declared once.

/// Broadcast envelopes (SUBSCRIBE).
pub const BROADCAST: &str = "ws:broadcast";
/// Prefix of room channels ([`room`]).
pub const ROOM_PREFIX: &str = "ws:room:";
/// Prefix of client channels ([`client`]).
pub const CLIENT_PREFIX: &str = "ws:client:";
/// Prefix of user channels ([`user`]).
pub const USER_PREFIX: &str = "ws:user:";
/// The patterns a node PSUBSCRIBEs in patterns mode, as Ignis nodes do (`forRoomPattern`,
/// `forClientPattern`, `forUserPattern`).
pub const PATTERNS: [&str; 3] = ["ws:room:*", "ws:client:*", "ws:user:*"];
/// Custom client events forwarded to backends (see [`super::forward`]).
pub const INBOUND: &str = "ws:inbound";

/// A room's channel, `ws:room:{room}` (`forRoom`).
pub fn room(name: &str) -> String {
    format!("{ROOM_PREFIX}{name}")
}

/// A client's channel, `ws:client:{id}` (`forClient`).
pub fn client(id: impl std::fmt::Display) -> String {
    format!("{CLIENT_PREFIX}{id}")
}

/// A user's channel, `ws:user:{id}` (`forUser`).
pub fn user(id: &str) -> String {
    format!("{USER_PREFIX}{id}")
}

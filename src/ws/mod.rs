//! The server side of RFC 6455, as small sans-I/O pieces.
//!
//! - [`frame`]: writing server frames and decoding masked client frames in place.
//! - [`handshake`]: validating an upgrade request and answering `101 Switching Protocols`.
//!
//! shardcast uses tungstenite's header parser and accept-key derivation but not its
//! `WebSocket` object: a fan-out writes one shared, pre-built frame to many sockets, and
//! tungstenite would copy each frame into a per-connection write buffer. The benches in
//! `benches/hot_paths.rs` (`fanout_walk`) measure that choice.

pub mod frame;
pub mod handshake;

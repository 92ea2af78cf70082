//! The server side of RFC 6455, as small sans-I/O pieces.
//!
//! - [`decode`]: client frames in — unmasking, reassembly, control frames, limits, UTF-8.
//! - [`frame`]: server frames out — headers, control and close frames, masking.
//! - [`utf8`]: streaming UTF-8 validation (fail fast, across frames and reads).
//! - [`handshake`]: validating an upgrade request and answering `101 Switching Protocols`.
//! - [`extension`]: negotiating permessage-deflate (RFC 7692) from the client's offers.
//! - [`deflate`]: compressing a payload into a frame, inflating a client's message.
//!
//! shardcast uses tungstenite's header parser and accept-key derivation but not its
//! `WebSocket` object: a fan-out writes one shared, pre-built frame to many sockets, and
//! tungstenite would copy each frame into a per-connection write buffer. The benches in
//! `benches/hot_paths.rs` (`fanout_walk`) measure that choice. Conformance: the Autobahn
//! TestSuite runs against the real connection path (`examples/autobahn_echo.rs`,
//! `scripts/autobahn`); its results are pinned in `tests/autobahn/`.

pub mod decode;
pub mod deflate;
pub mod extension;
pub mod frame;
pub mod handshake;
pub mod utf8;

//! The Ignis wire protocol: what a client sends, what the server answers, and how
//! servers talk to each other over Redis.
//!
//! - [`close`]: the one table of close codes and `error` event texts.
//! - [`inbound`]: parsing a client frame `{"event","data","id"}` without copying `data`.
//! - [`outbound`]: encoding `{"event","data"}` once into a complete WebSocket frame.
//! - [`envelope`]: the Redis envelope shared with Ignis nodes and emitters.

pub mod close;
pub mod envelope;
pub mod inbound;
pub mod outbound;

pub use close::{CloseReason, ErrorText};
pub use inbound::{Inbound, InboundMessage};
pub use outbound::{Frame, RawJson};

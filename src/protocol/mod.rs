//! The Ignis wire protocol, as types: what a client sends, what the server answers, who a
//! message is for, and how servers talk to each other over Redis. No I/O here.
//!
//! - [`close`]: the one table of close codes and `error` event texts.
//! - `inbound`: parsing a client frame `{"event","data","id"}` without copying `data`.
//! - [`Frame`] ([`frame`]): a server message encoded once into a complete WebSocket frame.
//! - `outbound`: the server's own `error` and `connected` events.
//! - [`Target`] ([`target`]): client, user, room or broadcast.
//! - [`envelope`]: the Redis envelope shared with Ignis nodes and emitters.
//! - [`forward`]: a client's custom event, and its `ws:inbound` payload.
//! - [`channel`]: the Redis channel names.

pub mod channel;
pub mod close;
pub mod envelope;
pub mod forward;
pub mod frame;
pub(crate) mod inbound;
pub(crate) mod outbound;
pub mod target;

pub use close::{CloseReason, ErrorText};
pub use forward::ClientMessage;
pub use frame::{Frame, Position};
pub use serde_json::value::RawValue as RawJson;
pub use target::{Target, TargetError};

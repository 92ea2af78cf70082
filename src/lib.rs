//! # shardcast
//!
//! A shard-per-core WebSocket real-time server that speaks the wire protocol of the
//! Ignis WebSocket component, so Ignis clients, servers and emitters can be mixed with
//! shardcast nodes. This crate is the engine; the `shardcast` binary (`src/main.rs`,
//! `src/cli/`) is the standalone server built on it.
//!
//! ## Architecture
//!
//! ```text
//!   the engine's listening socket, accepted by every shard  ─┐
//!   or an application's router (`mount`): upgraded, handed ─┤
//!  clients ──▶ shard 0 ─┐  own thread, runtime, connections and local indexes:
//!              shard 1 ─┤  client → conn, user → conns, room → conns
//!                …     ─┘
//!  Handle / HTTP API / Redis bridge ──▶ routing: encode once (Frame = Bytes) ──▶ shard inboxes
//!  control thread: the Redis bridge and the ordered shutdown
//! ```
//!
//! The modules, lowest layer first; each depends only on those above it in this list
//! (a test, `tests/it/architecture.rs`, fails on any import cycle):
//!
//! | layer | modules | owns |
//! |---|---|---|
//! | wire | [`build_info`], `id`, `ws`, [`protocol`], [`crypto`], [`auth`], [`rooms`], [`presence`], [`history`], `interest`, [`config`], [`metrics`], [`tls`] | version, commit and build date; ids; RFC 6455 framing and handshake, permessage-deflate; the Ignis protocol (close table, frames, targets, envelope); ECDH; JWT; room rules; who is in a room; a room's history (positions, recovery rules, the in-memory store); the Redis channels this process needs; settings; counters; TLS certificates and their reload |
//! | routing | `routing` | the [`Handle`], the broker, shard inbox commands, placement |
//! | hooks | [`hooks`] | every embedder hook: traits and what they receive |
//! | connection | `conn` | one connection without its socket: every protocol, close, liveness and backpressure rule |
//! | edges | `admission`, `http`, [`redis`] | connection caps and the failed-authentication throttle; HTTP/1.1 on the engine's port; the Redis bridge and [`redis::Emitter`] |
//! | shard | `shard` | the thread, the acceptor, the connection task, the delivery walk, flushing |
//! | engine | `engine` | [`EngineBuilder`] wires it all; [`Engine`] owns the threads |
//! | integration | `mount` (feature `axum`) | the engine on an application's axum router: the WebSocket route and the built-in endpoints as handlers |
//!
//! - **Shards**: each an OS thread pinned to a core, running a single-threaded tokio
//!   runtime, accepting on the shared listener (when the engine has one) and adopting
//!   sockets an application's router upgraded. A connection lives on shard
//!   `hash(client_id) % shards` for its whole life (the shard that takes it picks an id
//!   that hashes to itself); the shard owns it and its indexes, so the per-message path
//!   takes no lock.
//! - **Routing**: every outbound message becomes one immutable WebSocket frame
//!   ([`protocol::Frame`]) and the same buffer goes to every shard that may have
//!   recipients, over bounded crossbeam queues with an async wake-up.
//! - **Delivery**: a shard walks its local members, queues the shared frame on each
//!   (a refcount increment; with permessage-deflate, the frame's one shared compressed
//!   form), and writes each dirty socket once per batch with a vectored write, paced
//!   under heavy fan-out so each write carries many frames; a slow reader is bounded by
//!   `backpressure_limit`.
//! - **Remote**: one Redis bridge per process carries Ignis envelopes between instances;
//!   an envelope is parsed once, straight into the frame its recipients get.
//!
//! ## Embedding: two ways to run the engine
//!
//! Either way the application pushes data through the [`Handle`] (`Clone + Send +
//! Sync`, from any thread or runtime), and a connection behaves the same and keeps the
//! same state: same shard, socket, task and delivery path (a mounted connect costs the
//! application's HTTP parsing; measured in `PERF.md`).
//!
//! **On its own listener** (its own port; the built-in endpoints on it):
//!
//! ```no_run
//! use shardcast::Engine;
//! use shardcast::hooks::Identity;
//!
//! let engine = Engine::builder()
//!     .configure(|c| c.listen = "127.0.0.1:0".parse().unwrap())
//!     .authenticate(|req| async move {
//!         // Accept any token as the user id (do real checks here).
//!         Ok(req.token().map(|t| Identity { user_id: Some(t), ..Default::default() }))
//!     })
//!     .validate_rooms(|req| async move { req.rooms })
//!     .start()
//!     .expect("engine starts");
//! let handle = engine.handle();
//! handle.send_to_room("prices", "tick", &serde_json::json!({"btc": 1}), &[]).unwrap();
//! engine.shutdown();
//! ```
//!
//! **Mounted on an application's axum router** (feature `axum`; one port and one
//! origin for the page, its API and the WebSocket; the application's own session
//! authenticates the socket, from the upgrade request's cookie):
//!
#![cfg_attr(feature = "axum", doc = "```no_run")]
#![cfg_attr(not(feature = "axum"), doc = "```ignore")]
//! use std::net::SocketAddr;
//!
//! use axum::{Router, routing::get};
//! use shardcast::{Engine, hooks::Identity, mount};
//!
//! # fn user_of_session(_token: &str) -> Option<String> { None }
//! # async fn app() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder()
//!     .without_listener()
//!     .authenticate(|req| {
//!         let user = req.upgrade.cookie("session").and_then(user_of_session);
//!         async move { Ok(user.map(|u| Identity { user_id: Some(u), ..Default::default() })) }
//!     })
//!     .start()?;
//! let app = Router::new()
//!     .route("/", get(|| async { "the application's page" }))
//!     .route("/ws", mount::websocket(&engine))
//!     .merge(mount::endpoints(&engine));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! `examples/axum_dashboard.rs` is a complete application built this way (a page with a
//! live chart, a login, a publishing route); `mount`'s documentation has the contract.

mod admission;
pub mod auth;
pub mod build_info;
pub mod config;
mod conn;
pub mod crypto;
mod engine;
pub mod history;
pub mod hooks;
mod http;
mod id;
mod interest;
pub mod metrics;
#[cfg(feature = "axum")]
pub mod mount;
pub mod presence;
pub mod protocol;
pub mod redis;
pub mod rooms;
mod routing;
mod shard;
pub mod tls;
mod ws;

pub use config::{Endpoints, EngineConfig};
pub use engine::{Engine, EngineBuilder, EngineError};
pub use id::{ClientId, InvalidClientId, ServerId};
pub use routing::{ClientInfo, Handle, Publication, RoomCount, RoomSummary, SendError};

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Not part of the API: internal pieces re-exported for this crate's own benchmarks and
/// integration tests (`benches/`, `tests/`). No stability promise of any kind.
#[doc(hidden)]
pub mod internals {
    pub use crate::conn::outbox::Outbox;
    /// Parsing a client frame (`benches/hot_paths.rs`).
    pub mod inbound {
        pub use crate::protocol::inbound::{Inbound, parse};
    }
    pub use crate::routing::placement::shard_for;
    pub use crate::shard::index::LocalIndex;

    /// The Autobahn TestSuite's echo server (`examples/autobahn_echo.rs`).
    pub mod conformance {
        use std::net::SocketAddr;
        use std::time::Duration;

        use crate::{Engine, EngineBuilder, EngineError};

        /// An engine on `listen` (WebSocket path `/`) that runs the real acceptor,
        /// connection task, frame decoder and close handshake, and echoes every message
        /// back with its opcode instead of running the Ignis protocol; limits raised for
        /// the suite (16 MiB messages, 65,536 fragments). With `compression`, it
        /// negotiates permessage-deflate and compresses every echo that shrinks.
        pub fn echo_engine(
            listen: SocketAddr,
            shards: usize,
            compression: bool,
        ) -> Result<Engine, EngineError> {
            let mut builder = EngineBuilder::new()
                .configure(|c| {
                    c.compression = compression;
                    c.compression_min_size = 0;
                    c.listen = listen;
                    c.path = "/".into();
                    c.shards = shards;
                    c.max_payload_length = 16 << 20;
                    c.max_fragments = 65_536;
                    c.backpressure_limit = 64 << 20;
                    c.max_buffered_bytes = 1 << 30;
                    c.auth_timeout = Duration::from_secs(3600);
                    c.idle_timeout = Duration::ZERO;
                })
                .authenticator(crate::hooks::DevAuthenticator);
            builder.echo = true;
            builder.start()
        }
    }

    /// The WebSocket frame decoder (`fuzz/fuzz_targets/ws_frame_decoder.rs`).
    pub mod ws {
        /// A data message (text or binary).
        pub use crate::ws::decode::Data;
        /// Why decoding stopped the connection.
        pub use crate::ws::decode::DecodeError;
        /// Whether the decoder's callback wants more events.
        pub use crate::ws::decode::Flow;
        /// Reassembles client frames into messages.
        pub use crate::ws::decode::FrameDecoder;
        /// What a connection accepts.
        pub use crate::ws::decode::Limits;
        /// One decoded client event.
        pub use crate::ws::decode::WsEvent;
        /// Compresses payloads into permessage-deflate frames.
        pub use crate::ws::deflate::Deflater;
        /// Inflates a client's compressed messages, within a bound.
        pub use crate::ws::deflate::Inflater;
        /// What the server agreed to for permessage-deflate.
        pub use crate::ws::extension::PerMessageDeflate;
        /// Negotiates permessage-deflate from `Sec-WebSocket-Extensions` values.
        pub use crate::ws::extension::negotiate as negotiate_deflate;
        /// A server frame's opcode.
        pub use crate::ws::frame::OpCode;
    }

    /// The HTTP request head parser (`fuzz/fuzz_targets/http_head.rs`).
    pub mod http {
        /// Why a request could not be read.
        pub use crate::http::request::RequestError;
        /// A parsed request head.
        pub use crate::http::request::RequestHead;
        /// Parses a request head at the front of a buffer.
        pub use crate::http::request::parse_head;
    }

    /// The joinable room names in a `join`/`leave` `data` (`fuzz/fuzz_targets/inbound_message.rs`).
    pub fn requested_rooms(data: Option<&serde_json::value::RawValue>) -> Option<Vec<String>> {
        crate::rooms::requested_rooms(data)
    }

    /// Decrypts an inbound `encrypted` event's `data` (`fuzz/fuzz_targets/encrypted_payload.rs`).
    pub use crate::conn::encryption::decrypt as decrypt_inbound;

    /// The Redis bridge, driven directly by `tests/it/redis_*.rs`.
    pub mod redis {
        pub use crate::redis::bridge::{EnvelopeSink, PublishError, RedisBridge};
        pub use crate::redis::link::{BridgeStatus, LinkState};
    }
}

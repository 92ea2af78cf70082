//! # shardcast
//!
//! A shard-per-core WebSocket real-time server that speaks the wire protocol of the
//! Ignis WebSocket component, so Ignis clients, servers and emitters can be mixed with
//! shardcast nodes.
//!
//! ## Architecture
//!
//! ```text
//!                    one listening socket, accepted by every shard
//!  clients ──▶ shard 0 ─┐  own thread, runtime, connections and local indexes:
//!              shard 1 ─┤  client → conn, user → conns, room → conns
//!                …     ─┘
//!  Handle ──▶ broker (encode once: Frame = Bytes) ──▶ shard inboxes
//!  control thread: the Redis bridge and the ordered shutdown
//! ```
//!
//! - **Shards** ([`shard`]): each an OS thread pinned to a core, running a single-threaded
//!   tokio runtime, accepting on the shared listener. A connection lives on shard
//!   `hash(client_id) % shards` for its whole life (the accepting shard picks an id that
//!   hashes to itself); the shard owns it and its indexes, so the per-message path takes
//!   no lock.
//! - **Broker** ([`broker`]): every outbound message becomes one immutable WebSocket frame
//!   ([`protocol::Frame`]) and the same buffer goes to every shard that may have
//!   recipients, over bounded crossbeam queues with an async wake-up.
//! - **Delivery**: a shard walks its local members, queues the shared frame on each
//!   (a refcount increment), and writes each dirty socket once per batch with a
//!   vectored write, paced under heavy fan-out so each write carries many frames
//!   (`shard::pacing`); a slow reader is bounded by `backpressure_limit`.
//! - **Remote**: one Redis bridge per process ([`engine::Remote`], [`redis`]) carries
//!   Ignis envelopes between instances.
//!
//! ## Embedding
//!
//! ```no_run
//! use shardcast::{Engine, auth::Identity};
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

pub mod auth;
pub mod broker;
pub mod cli;
pub mod config;
pub mod conn;
pub mod crypto;
pub mod engine;
pub mod http;
pub mod id;
pub mod metrics;
pub mod protocol;
pub mod redis;
pub mod rooms;
pub mod serve;
pub mod shard;
pub mod ws;

pub use config::EngineConfig;
pub use engine::{Engine, EngineBuilder, Handle};
pub use id::{ClientId, ServerId};

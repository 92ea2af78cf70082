//! Routing: how a message gets from whoever produces it (an application thread through
//! the [`Handle`], the HTTP API, the Redis bridge, a shard resolving an Ignis `send`) to
//! the shards that hold its recipients and to the other instances.
//!
//! - [`Handle`] ([`handle`], [`query`]): the `Send + Sync` door: encode once, route,
//!   publish to the remote; queries and shutdown.
//! - [`broker`]: hands one encoded frame to every shard that may hold a recipient.
//! - [`command`] and [`inbox`]: the commands a shard receives, and the bounded queue that
//!   carries them (with an async wake-up).
//! - [`placement`]: which shard owns a client id.
//! - [`inspect`]: what the dashboard asks the shards (room summary, one client).
//! - [`remote`]: the trait the Redis bridge is wired in through.
//! - [`rooms`]: which rooms keep history and track presence, and where;
//!   [`recall`]: the handle's history and presence (publishing positioned messages,
//!   reading history and presence, announcing joins and leaves).
//!
//! # Contract
//!
//! [`Router`] is created once per engine, before any shard runs, and shared (`Arc`) by
//! every handle and shard; it holds no lock. The remote is set at most once, before
//! connections are accepted. This layer knows nothing of a shard's insides: it speaks to
//! shards only through [`command::Command`]s, and a full inbox drops the command and
//! counts it. Shutdown is a flag plus one wake-up of the engine's control thread.

pub(crate) mod broker;
pub(crate) mod command;
pub(crate) mod handle;
pub(crate) mod inbox;
pub(crate) mod inspect;
pub(crate) mod placement;
pub(crate) mod query;
pub(crate) mod recall;
pub(crate) mod remote;
pub(crate) mod rooms;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::Notify;

pub use handle::{Handle, Publication, SendError};
pub use inspect::{ClientInfo, RoomCount, RoomSummary};
pub use recall::RecallError;

use crate::id::ServerId;
use crate::interest::Interest;
use crate::metrics::Metrics;
use broker::Broker;
use remote::Remote;
use rooms::RoomFeatures;

/// What every handle and shard of one engine shares.
pub(crate) struct Router {
    /// This process's id in Redis envelopes.
    pub server_id: ServerId,
    /// The shard inboxes.
    pub broker: Broker,
    /// Every counter.
    pub metrics: Arc<Metrics>,
    /// The other instances, when Redis is configured.
    pub remote: OnceLock<Arc<dyn Remote>>,
    /// When the engine was created (its uptime).
    pub started: Instant,
    /// Which rooms keep history and track presence, and where.
    pub features: RoomFeatures,
    /// The Redis channels the shards' clients, users and rooms need, when the engine
    /// has Redis (the shards' indexes keep it, the bridge follows it).
    pub interest: Option<Arc<Interest>>,
    shutting_down: AtomicBool,
    shutdown_requested: Notify,
}

impl Router {
    /// A router over `broker`'s shards with a fresh server id.
    pub fn new(
        broker: Broker,
        metrics: Arc<Metrics>,
        features: RoomFeatures,
        interest: Option<Arc<Interest>>,
    ) -> Self {
        Router {
            interest,
            server_id: ServerId::random(),
            broker,
            metrics,
            remote: OnceLock::new(),
            started: Instant::now(),
            features,
            shutting_down: AtomicBool::new(false),
            shutdown_requested: Notify::new(),
        }
    }

    /// Whether shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Starts shutdown (once); wakes whoever waits in [`Router::shutdown_requested`].
    pub fn request_shutdown(&self) {
        if !self.shutting_down.swap(true, Ordering::AcqRel) {
            self.shutdown_requested.notify_one();
        }
    }

    /// Completes once shutdown is requested.
    pub async fn shutdown_requested(&self) {
        self.shutdown_requested.notified().await;
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.broker.shards().len()
    }
}

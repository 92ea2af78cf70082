//! The Redis layer: the one bridge per process (`RedisBridge`, wired into an engine by
//! [`crate::EngineBuilder::redis`]) and the [`Emitter`]. Wire-compatible with the Ignis
//! `WebSocketServerHelper` / `WebSocketEmitter` (see [`crate::protocol::envelope`]). It
//! speaks envelopes and channels only: it knows nothing of the engine.
//!
//! # Contract
//!
//! **Tasks and connections.** [`RedisBridge::start`] spawns exactly two tasks on the given
//! runtime, each owning exactly one Redis connection at a time:
//!
//! * the *subscriber* task owns the pub/sub connection. It SUBSCRIBEs `ws:broadcast` and its
//!   own probe channel `shardcast:probe:{serverId}` (outside `ws:*`, so Ignis nodes never see
//!   it), and then, by [`SubscribeMode`]:
//!   - *interest* (the default): `ws:room:{room}`, `ws:client:{id}` and `ws:user:{id}` of
//!     the rooms, clients and users this process hosts, following the process's
//!     [`Interest`] (kept by the shards' indexes; `crate::redis::subscriptions` has the
//!     batching rules): one SUBSCRIBE or UNSUBSCRIBE in flight at a time, carrying every
//!     change that came meanwhile (at most 1,024 channels), SUBSCRIBEs first. A node hears
//!     only what it hosts, so Redis traffic per node grows with what the node serves, not
//!     with the fleet.
//!   - *patterns*: PSUBSCRIBE `ws:room:*`, `ws:client:*`, `ws:user:*`, as Ignis does:
//!     every node hears every message of the fleet.
//!   - *sharded* (Redis Cluster 7+): the channels of interest mode, broadcast and probe
//!     included, SSUBSCRIBEd on the masters that own their slots through one cluster
//!     connection (`crate::redis::sharded` has the rules); see **Redis Cluster** below.
//!
//!   Publishing is the same in interest and patterns mode (one channel per room, client
//!   and user, as Ignis publishes), so Ignis nodes and emitters mix with shardcast nodes
//!   in either.
//!   It parses every message
//!   with [`Envelope::parse`](crate::protocol::envelope::Envelope::parse) and calls
//!   `EnvelopeSink::deliver` itself, one message after the other, so the order Redis
//!   delivers in (per channel, and in fact per connection) is the order the sink sees.
//!   Envelopes carrying our own `serverId` are counted (`ignored_own`) and skipped; malformed
//!   ones are counted (`malformed`) and logged at most once per 10 s with the number of
//!   suppressed ones; messages on a channel nobody here wants are counted (`unwanted`).
//! * the *publisher* task owns the command connection. It drains the publish queue in
//!   batches (pipelined PUBLISHes, order kept; in sharded mode one pipeline of SPUBLISHes
//!   per slot, order kept per channel) and sends the subscriber's liveness probes ahead of
//!   queued messages.
//!
//! * the *reader* (not a task) owns a third, command connection, made on first use: history
//!   and presence reads (`crate::redis::scripts`), answered at once rather than queued
//!   behind the publisher's backlog. History and presence *writes* are scripts queued like
//!   PUBLISHes, in order with them, under the same bounds; both connections load the
//!   scripts when they connect.
//!
//! The [`RedisBridge`] handle itself holds no connection: it is a cheap `Clone + Send + Sync`
//! handle (queue sender, shared atomics) usable from any thread, inside a runtime or not.
//!
//! **Faults.** A connection that cannot be made or is lost is retried by its task alone with
//! jittered, capped exponential backoff ([`RedisSettings::backoff_min`] →
//! [`RedisSettings::backoff_max`]); the first attempt after losing an established connection
//! is immediate. Every reconnect of the subscriber re-issues every SUBSCRIBE and PSUBSCRIBE
//! (in interest mode: every channel wanted at that moment, in batches) before it reports
//! ready again. Redis being down at start is not an error: the bridge keeps
//! retrying and [`RedisBridge::is_ready`] stays false until everything is subscribed. Each
//! state change (up → down, down → up, first failure) is logged once, never per retry or per
//! message.
//!
//! **Liveness probe.** A pub/sub connection can be "up" and deliver nothing (a half-open TCP
//! socket after a network cut, a paused or wedged server). When the subscriber has heard
//! nothing for [`RedisSettings::probe_interval`], it asks the publisher to PUBLISH to its
//! probe channel; if nothing at all arrives within [`RedisSettings::probe_timeout`] it drops
//! the connection and reconnects (counted in `probe_timeouts` and `reconnects`). The
//! publisher uses `probe_timeout` as its command timeout too, so a wedged publisher is
//! replaced the same way.
//!
//! **The join-to-subscription window (interest mode).** Neither a connection nor a join
//! waits for Redis: the shard records the change and the subscriber sends it at once (its
//! subscription work goes ahead of queued messages). Until Redis has the SUBSCRIBE, what
//! other nodes publish to that room, client or user does not reach this node. The window
//! is one SUBSCRIBE round trip plus the command in flight ahead of it, plus however long
//! the bridge's task waits for a core: under 1 ms on an idle loopback node
//! (`tests/it/redis_interest.rs` measures it from Redis' side), up to ~100 ms at p99
//! while a saturated core connects thousands of clients (PERF.md, "Fleet traffic";
//! `shardcast_redis_subscribe_window_seconds`). A client's own channels are subscribed when its socket
//! is admitted, so authentication usually covers them. History and presence reads of a
//! joining member wait for the room's subscription first ([`RedisBridge::settled`]), so
//! recovery never loses a message to the window; `Handle::wait_subscribed` lets any
//! caller wait likewise. In patterns mode there is no window.
//!
//! **Overflow.** [`RedisBridge::publish`] never blocks and never allocates beyond the queue
//! bounds: the queue holds at most [`RedisSettings::publish_queue`] messages *and* at most
//! [`RedisSettings::publish_queue_bytes`] bytes (channel + payload), counting messages that
//! are in flight. Beyond either bound the *new* message is refused with
//! `PublishError::QueueFull` and counted in `publish_dropped` (tail drop: what is queued
//! keeps its order and goes out when Redis is back; a warning is logged at most once per
//! 10 s). While Redis is down messages therefore wait, up to the bounds, and are published
//! late rather than never. The batch in flight when a connection fails is re-sent after the
//! reconnect, so a message can, rarely, be published twice (at-least-once for that batch,
//! like ioredis' resend of unfulfilled commands); nothing else is retried.
//!
//! The subscriber side has no queue of its own: redis-rs reads the socket into an unbounded
//! channel that this task drains as fast as `EnvelopeSink::deliver` returns, which is why
//! `deliver` must be cheap (hand off to bounded broker queues and return).
//!
//! **Close.** [`RedisBridge::shutdown`] stops both tasks: the subscriber unsubscribes and
//! drops its connection; the publisher stops accepting (later `publish` calls get
//! `PublishError::Closed`), flushes what is queued for at most 2 s if it is connected
//! (the rest is counted as dropped), sends QUIT and exits. Dropping every handle without
//! calling `shutdown` has the same effect, minus the wait.
//!
//! **Redis Cluster.** Several URLs name the nodes of a Redis Cluster. Classic (non-sharded)
//! PUBLISH is propagated by the cluster bus to every node, and SUBSCRIBE/PSUBSCRIBE/PUBLISH
//! carry no key, so no node ever redirects them: the subscriber listens on one reachable
//! node and the publisher publishes through one reachable node (not necessarily the same).
//! Each fails over to the next URL in the list when its node fails; list every node you want
//! used (nodes added later are not discovered). Ignis' ioredis `Cluster` client does the
//! same thing for pub/sub, so both interoperate on one cluster.
//!
//! *Sharded mode* ([`SubscribeMode::Sharded`]) uses the cluster the other way: each
//! channel lives on the master that owns its slot, so a message crosses one shard instead
//! of the whole cluster bus. The subscriber holds one RESP3 cluster connection (one
//! connection per master; a command per slot, as SSUBSCRIBE takes one slot's channels),
//! and the publisher SPUBLISHes every envelope, `ws:inbound` and its probes. Differences:
//! - Nobody classic hears a sharded publish, nor the other way round: Ignis nodes and
//!   emitters, and shardcast nodes in the other modes, are out of such a fleet.
//!   [`check_sharded`] finds classic listeners (and a non-cluster or pre-7 Redis);
//!   `shardcast serve` refuses to start on it and the subscriber logs it as an error on
//!   its first connection. Classic *publishers* cannot be seen from Redis.
//! - Order holds per channel, not across channels (they travel through different
//!   masters): a room message and a user message published in that order may arrive the
//!   other way round.
//! - When a slot moves, Redis itself SUNSUBSCRIBEs its channels; the subscriber takes
//!   that notice as a change and subscribes them again (redis-rs follows the MOVED to the
//!   new owner). A closed connection to any master is a lost connection: a new cluster
//!   connection is made and everything resubscribed before the bridge is ready again.
//! - The liveness probe travels through the master that owns the probe channel: a
//!   silently dead connection to another master goes unnoticed until TCP gives up.
//! - History and presence are refused (`EngineError::HistoryOnCluster`), as on any cluster.

mod backoff;
pub(crate) mod bridge;
mod emitter;
pub(crate) mod link;
mod nodes;
mod publisher;
mod reader;
pub(crate) mod scripts;
mod sharded;
mod subscriber;
mod subscriptions;

use std::time::Duration;

pub use crate::interest::Interest;
pub(crate) use bridge::RedisBridge;
pub use emitter::{Emitter, EmitterError};
pub(crate) use link::LinkState;
pub use sharded::{ShardedCheckError, check_sharded};

/// Channel prefix of the liveness probe; the full channel is `shardcast:probe:{serverId}`.
pub(crate) const PROBE_CHANNEL_PREFIX: &str = "shardcast:probe:";

/// How the bridge reaches Redis and how it copes with faults.
///
/// ```
/// let settings = shardcast::redis::RedisSettings::new(["redis://127.0.0.1:6379"]);
/// assert_eq!(settings.backoff_max, std::time::Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port[/db]` URLs. One URL = a single Redis; several = the
    /// nodes of a Redis Cluster (see the module doc). Default: empty (must be set).
    pub urls: Vec<String>,
    /// First reconnect delay after a failed attempt. Default 100 ms.
    pub backoff_min: Duration,
    /// Cap of the exponential backoff (each delay is jittered within its upper half).
    /// Default 2 s (ioredis' default cap, as used by Ignis): after a long outage the bridge
    /// is back within ~2 s of Redis answering, at the cost of one connection attempt per
    /// 1–2 s per connection while Redis is down.
    pub backoff_max: Duration,
    /// Silence after which the subscriber probes its connection. Default 5 s. Smaller finds
    /// a dead subscriber sooner at the cost of one tiny PUBLISH per interval when idle.
    pub probe_interval: Duration,
    /// How long a probe (and any publisher command or connection attempt) may take before
    /// the connection is declared dead and replaced. Default 3 s.
    pub probe_timeout: Duration,
    /// Most messages the publish queue holds (in flight included). Default 10 000.
    pub publish_queue: usize,
    /// Most bytes (channel + payload) the publish queue holds. Default 64 MiB.
    pub publish_queue_bytes: usize,
    /// How the subscriber listens for other nodes' envelopes. Default
    /// [`SubscribeMode::Interest`].
    pub subscribe: SubscribeMode,
}

/// How a node listens for the envelopes other nodes and emitters publish.
///
/// ```
/// use shardcast::redis::SubscribeMode;
/// assert_eq!("patterns".parse::<SubscribeMode>(), Ok(SubscribeMode::Patterns));
/// assert_eq!(SubscribeMode::default().as_str(), "interest");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SubscribeMode {
    /// SUBSCRIBE `ws:room:{room}` while a local client is in the room, and
    /// `ws:client:{id}` / `ws:user:{id}` of the local clients and users: a node hears only
    /// what it hosts. Publishers are unchanged, so Ignis nodes and emitters mix freely.
    #[default]
    Interest,
    /// PSUBSCRIBE `ws:room:*`, `ws:client:*` and `ws:user:*`, as Ignis does: every node
    /// hears (and parses, and drops) every message of the fleet.
    Patterns,
    /// Redis Cluster sharded pub/sub (Redis 7): SSUBSCRIBE the same channels as interest
    /// mode, each on the master that owns its slot, and SPUBLISH everything (probe and
    /// broadcast included). Pub/sub traffic then stays on one shard of the cluster instead
    /// of crossing the cluster bus to every node. **Only for fleets where every node and
    /// emitter is shardcast in this mode**: Ignis nodes and emitters (and shardcast in the
    /// other modes) use classic PUBLISH/SUBSCRIBE, which never meets sharded channels.
    /// [`check_sharded`] finds classic listeners; history and presence are refused (as on
    /// any cluster).
    Sharded,
}

impl SubscribeMode {
    /// The mode's name, as `--redis-subscribe` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscribeMode::Interest => "interest",
            SubscribeMode::Patterns => "patterns",
            SubscribeMode::Sharded => "sharded",
        }
    }

    /// Whether the subscriber follows the interest channel by channel (interest and
    /// sharded), rather than hearing everything through patterns.
    pub(crate) fn per_channel(self) -> bool {
        self != SubscribeMode::Patterns
    }
}

impl std::fmt::Display for SubscribeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `--redis-subscribe` value that is none of the modes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Redis subscribe mode `{0}`: use interest, patterns or sharded")]
pub struct UnknownSubscribeMode(pub String);

impl std::str::FromStr for SubscribeMode {
    type Err = UnknownSubscribeMode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "interest" => Ok(SubscribeMode::Interest),
            "patterns" => Ok(SubscribeMode::Patterns),
            "sharded" => Ok(SubscribeMode::Sharded),
            _ => Err(UnknownSubscribeMode(text.to_owned())),
        }
    }
}

impl RedisSettings {
    /// The defaults, for the Redis (one URL) or Redis Cluster nodes (several) at `urls`.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        RedisSettings {
            urls: urls.into_iter().map(Into::into).collect(),
            ..RedisSettings::default()
        }
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            urls: Vec::new(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            publish_queue: 10_000,
            publish_queue_bytes: 64 * 1024 * 1024,
            subscribe: SubscribeMode::Interest,
        }
    }
}

/// Why [`RedisBridge::start`] refused the settings. Redis being unreachable is never one of
/// these: the bridge retries that by itself.
#[derive(Debug, thiserror::Error)]
pub enum RedisConfigError {
    /// No URL was given. Pass at least one `redis://host:port` (several for a cluster).
    #[error("no Redis URL configured: pass at least one redis://host:port")]
    NoUrls,
    /// A URL could not be parsed. Fix its syntax: `redis://[user:password@]host:port[/db]`.
    #[error("invalid Redis URL `{url}`: {source}")]
    InvalidUrl {
        /// The offending URL, password removed.
        url: String,
        /// What redis-rs objected to.
        source: redis::RedisError,
    },
    /// A setting is out of range (zero queue, zero probe timing, min backoff above max).
    #[error("invalid Redis setting `{name}`: {reason}")]
    InvalidSetting {
        /// The [`RedisSettings`] field.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

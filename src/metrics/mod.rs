//! Counters, gauges and histograms, written lock-free where they happen and summed on
//! scrape.
//!
//! Contract: shard counters have a single writer (their shard thread) and use plain
//! load/store ([`OwnedCounter`], [`Histogram`], [`DisconnectCounts`]); engine-wide
//! counters written from several threads use atomic adds ([`Counter`], [`HttpCounts`]).
//! Nothing here takes a lock or allocates when counting. A scrape reads them all with
//! relaxed loads: each value is exact, the set is not a single snapshot (fine for
//! monitoring). What only exists at scrape time (inbox depths, the Redis bridge's state,
//! `/proc/self`) is read then and handed to [`Metrics::render_prometheus`] as a [`Live`].
//!
//! **Delivery latency.** The broker stamps each message once with [`stamp_now`] (a
//! process-wide monotonic clock in µs) when it takes it; each connection remembers the
//! stamp of the oldest delivery frame it has not yet fully written (one compare per
//! delivery); each socket write that carries delivery frames records one sample: now −
//! that stamp. So `shardcast_delivery_latency_seconds` counts socket writes, not
//! messages, and each sample is the age of the oldest frame the write carried: broker →
//! shard inbox → delivery walk → write pacing → the `writev`. The stamp is cleared when
//! the connection's queue drains; a write the socket only partly took is followed by
//! another sample (from the same stamp) when the rest goes out. "Now" is the flush pass'
//! own clock (read at its start and every 16 writes, on the same epoch), so a sample
//! costs no clock read of its own and may understate by the time of up to 15 writes of
//! that pass (tens of µs, only in passes that write that many sockets).

mod histogram;
mod labelled;
mod process;
mod render;

pub use histogram::{BOUNDS_US, Histogram, HistogramSnapshot};
pub use labelled::{
    CLOSE_CODES, DISCONNECT_LABELS, DisconnectCounts, HTTP_STATUSES, HttpCounts, HttpRoute,
};
pub use process::ProcessStats;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Microseconds since the first call in this process, plus one (so 0 can mean "no
/// stamp"): the clock delivery and connect latencies are measured on. Any thread; one
/// monotonic clock read.
pub fn stamp_now() -> u64 {
    stamp_of(clock_epoch().elapsed())
}

/// The instant [`stamp_now`] counts from (fixed at the first call). Shards run their
/// write-pacing clock on the same epoch, so a flush turns the time it already read into
/// a stamp ([`stamp_of`]) instead of reading the clock again for each latency sample.
pub fn clock_epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The stamp of `since_epoch` (time since [`clock_epoch`]).
pub fn stamp_of(since_epoch: std::time::Duration) -> u64 {
    u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX - 1) + 1
}

/// Microseconds from `stamp` (a [`stamp_now`] value) to `now` (another), 0 if reversed.
pub fn micros_between(stamp: u64, now: u64) -> u64 {
    now.saturating_sub(stamp)
}

/// A counter any thread may increment.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A counter with one writing thread (its shard): increments are a load and a store.
#[derive(Debug, Default)]
pub struct OwnedCounter(AtomicU64);

impl OwnedCounter {
    /// Adds `n`; must only be called from the owning thread.
    pub fn add(&self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
    /// Adds one; must only be called from the owning thread.
    pub fn inc(&self) {
        self.add(1);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge with one writing thread.
#[derive(Debug, Default)]
pub struct OwnedGauge(AtomicI64);

impl OwnedGauge {
    /// Sets the value; owning thread only.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Adds `d` (may be negative); owning thread only.
    pub fn add(&self, d: i64) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + d, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One shard's counters.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    /// Open connections (any state).
    pub connections: OwnedGauge,
    /// Authenticated connections.
    pub authenticated: OwnedGauge,
    /// Non-empty local rooms.
    pub rooms: OwnedGauge,
    /// Connections adopted since start.
    pub accepted: OwnedCounter,
    /// Inbound data frames.
    pub frames_in: OwnedCounter,
    /// Frames queued to clients (one per recipient).
    pub deliveries: OwnedCounter,
    /// Frames not queued because a client's queue was past `backpressure_limit`.
    pub backpressure_dropped: OwnedCounter,
    /// Clients closed for passing `backpressure_limit` (when configured to close).
    pub slow_consumers_closed: OwnedCounter,
    /// Authentications rejected or failed.
    pub auth_failures: OwnedCounter,
    /// Connections closed for auth or heartbeat timeouts.
    pub timeouts: OwnedCounter,
    /// Connections closed for protocol violations or oversized frames.
    pub protocol_closes: OwnedCounter,
    /// Connections closed with 1013 because unfinished frames took all the memory the
    /// shard allows (`max_buffered_bytes`).
    pub overloaded_closes: OwnedCounter,
    /// Accepts that failed (out of file descriptors, most often).
    pub accept_errors: OwnedCounter,
    /// Joins dropped because the client was in `max_rooms_per_client` rooms already.
    pub rooms_refused: OwnedCounter,
    /// Clients closed with 1008 for sending faster than `client_message_rate`.
    pub rate_limited: OwnedCounter,
    /// Encrypted deliveries (one per encrypted recipient).
    pub encrypted_deliveries: OwnedCounter,
    /// Messages this shard compressed (permessage-deflate): once per shared message,
    /// whatever its recipients, plus each compressed reply to one client.
    pub compressions: OwnedCounter,
    /// Deliveries and replies queued compressed (one per recipient).
    pub compressed_deliveries: OwnedCounter,
    /// Compressed client messages this shard inflated.
    pub inflated_messages: OwnedCounter,
    /// Joins to history rooms answered with `ws:joined`.
    pub history_joins: OwnedCounter,
    /// Of those that asked to recover (`since`): recovered.
    pub history_recovered: OwnedCounter,
    /// Of those that asked to recover: not recovered (past the window, another epoch).
    pub history_not_recovered: OwnedCounter,
    /// History reads (joins, `ws:history`) that failed (Redis did not answer).
    pub history_read_failures: OwnedCounter,
    /// Writes to client sockets by the shard's flushes (deliveries / writes = frames per
    /// write: what write pacing buys).
    pub socket_writes: OwnedCounter,
    /// Delivery latency: from the broker taking a message to the socket write that
    /// carries it to a client of this shard.
    pub delivery_latency: Histogram,
    /// Connect + authenticate latency: from accepting the TCP connection to the
    /// `authenticated` reply.
    pub connect_latency: Histogram,
    /// WebSocket bytes read from client sockets (after the upgrade; TLS: plaintext).
    pub bytes_received: OwnedCounter,
    /// WebSocket bytes written to client sockets (TLS: plaintext handed to rustls).
    pub bytes_sent: OwnedCounter,
    /// Connections removed, by the close code the server sent them.
    pub disconnects: DisconnectCounts,
}

/// Engine-wide counters plus every shard's.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages handed to the broker (one per message, whatever the fan-out).
    pub published: Counter,
    /// Deliveries dropped because a shard inbox was full.
    pub inbox_dropped: Counter,
    /// HTTP requests answered, by route and status (upgrades included, as route
    /// `upgrade`).
    pub http: HttpCounts,
    /// Upgrade requests refused (bad handshake, shutting down, full shard, `Origin`).
    pub upgrades_refused: Counter,
    /// Upgrades refused because their `Origin` matched no `allowed_origins` pattern (also
    /// counted in `upgrades_refused`).
    pub origin_refused: Counter,
    /// Envelopes received from Redis and delivered.
    pub redis_received: Counter,
    /// Interest mode: from a channel first becoming wanted (a room's first local
    /// member, a client's connection) to Redis confirming its SUBSCRIBE. Written by the
    /// bridge's subscriber task only.
    pub redis_subscribe_window: Histogram,
    /// Envelopes handed to the bridge's bounded publish queue (not yet published: the
    /// bridge's own count, in [`RedisStats`], says what Redis accepted).
    pub redis_queued: Counter,
    /// Client events not forwarded to `ws:inbound` because their client had
    /// `max_forwarded_per_client` waiting already.
    pub inbound_dropped: Counter,
    /// Upgrades refused (503) at `max_connections` or `max_connections_per_ip`.
    pub connections_refused: Counter,
    /// Upgrades refused (429) from addresses past `max_auth_failures_per_ip`.
    pub auth_throttled: Counter,
    shards: OnceLock<Vec<Arc<ShardMetrics>>>,
}

/// A point-in-time summary, as served by `/api/stats` and the dashboard.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StatsSnapshot {
    /// Open connections.
    pub connections: i64,
    /// Authenticated connections.
    pub authenticated: i64,
    /// Local rooms summed over shards (a room with members on two shards counts twice).
    pub rooms: i64,
    /// Messages handed to the broker.
    pub published: u64,
    /// Frames queued to clients.
    pub deliveries: u64,
    /// Writes to client sockets by shard flushes.
    pub socket_writes: u64,
    /// Frames dropped by backpressure.
    pub backpressure_dropped: u64,
    /// Deliveries dropped by full shard inboxes.
    pub inbox_dropped: u64,
    /// Upgrades refused for their `Origin`.
    pub origin_refused: u64,
    /// Per shard: connections.
    pub shard_connections: Vec<i64>,
    /// WebSocket bytes read from clients.
    pub bytes_received: u64,
    /// WebSocket bytes written to clients.
    pub bytes_sent: u64,
    /// Delivery latency over every shard (see the module doc for what one sample is).
    pub delivery_latency: HistogramSnapshot,
    /// Connect + authenticate latency over every shard.
    pub connect_latency: HistogramSnapshot,
}

impl Metrics {
    /// Registers the shards' counters (once, at start).
    pub(crate) fn set_shards(&self, shards: Vec<Arc<ShardMetrics>>) {
        let _ = self.shards.set(shards);
    }

    /// The shards' counters.
    pub fn shards(&self) -> &[Arc<ShardMetrics>] {
        self.shards.get().map_or(&[], Vec::as_slice)
    }

    fn sum(&self, f: impl Fn(&ShardMetrics) -> u64) -> u64 {
        self.shards().iter().map(|s| f(s)).sum()
    }

    fn sum_gauge(&self, f: impl Fn(&ShardMetrics) -> i64) -> i64 {
        self.shards().iter().map(|s| f(s)).sum()
    }

    /// Current totals.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections: self.sum_gauge(|s| s.connections.get()),
            authenticated: self.sum_gauge(|s| s.authenticated.get()),
            rooms: self.sum_gauge(|s| s.rooms.get()),
            published: self.published.get(),
            deliveries: self.sum(|s| s.deliveries.get()),
            socket_writes: self.sum(|s| s.socket_writes.get()),
            backpressure_dropped: self.sum(|s| s.backpressure_dropped.get()),
            inbox_dropped: self.inbox_dropped.get(),
            origin_refused: self.origin_refused.get(),
            shard_connections: self.shards().iter().map(|s| s.connections.get()).collect(),
            bytes_received: self.sum(|s| s.bytes_received.get()),
            bytes_sent: self.sum(|s| s.bytes_sent.get()),
            delivery_latency: self.histogram(|s| &s.delivery_latency),
            connect_latency: self.histogram(|s| &s.connect_latency),
        }
    }

    /// One histogram summed over every shard.
    pub fn histogram(&self, f: impl Fn(&ShardMetrics) -> &Histogram) -> HistogramSnapshot {
        let mut total = HistogramSnapshot::default();
        for shard in self.shards() {
            total.add(f(shard));
        }
        total
    }
}

/// The Redis bridge as the scrape sees it (filled from `RedisBridge::status()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// The subscriber connection is up and subscribed.
    pub subscriber_up: bool,
    /// The publisher connection is up.
    pub publisher_up: bool,
    /// Subscriber connections lost (each followed by a reconnect).
    pub subscriber_reconnects: u64,
    /// Publisher connections lost.
    pub publisher_reconnects: u64,
    /// Liveness probes that went unanswered.
    pub probe_timeouts: u64,
    /// Messages from Redis that were not acceptable envelopes.
    pub malformed: u64,
    /// Messages waiting in (or in flight from) the publish queue.
    pub queue_depth: u64,
    /// Bytes (channel + payload) waiting in the publish queue.
    pub queue_bytes: u64,
    /// Messages Redis accepted (PUBLISH answered).
    pub published: u64,
    /// Messages dropped: queue full, refused by Redis, or abandoned at shutdown.
    pub publish_dropped: u64,
    /// How the subscriber listens: `interest` or `patterns`.
    pub subscribe_mode: &'static str,
    /// Channels the subscriber holds (`ws:broadcast` and its probe channel included).
    pub channels: u64,
    /// Patterns the subscriber holds.
    pub patterns: u64,
    /// Channels subscribed since start (reconnect restores included).
    pub subscribed: u64,
    /// Channels unsubscribed since start.
    pub unsubscribed: u64,
    /// SUBSCRIBE / UNSUBSCRIBE commands sent to follow the interest.
    pub subscribe_commands: u64,
    /// Messages from Redis on channels nobody here wanted when they arrived.
    pub unwanted: u64,
}

/// What a scrape reads at scrape time, besides the counters.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Commands waiting in each shard's inbox, in shard order.
    pub inbox_depths: Vec<usize>,
    /// The Redis bridge, when the engine has one.
    pub redis: Option<RedisStats>,
    /// `/proc/self`, when readable.
    pub process: Option<ProcessStats>,
}

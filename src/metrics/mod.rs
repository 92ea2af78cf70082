//! Counters and gauges, written lock-free where they happen and summed on scrape.
//!
//! Shard counters have a single writer (their shard thread) and use plain load/store
//! ([`OwnedCounter`]); engine-wide counters written from several threads use atomic adds
//! ([`Counter`]). A scrape reads them all with relaxed loads: each value is exact, the set
//! is not a single snapshot (fine for monitoring).

mod histogram;
pub mod process;

pub use histogram::{BOUNDS_US, Histogram, HistogramSnapshot};

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

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
    /// Writes to client sockets by the shard's flushes (deliveries / writes = frames per
    /// write: what write pacing buys).
    pub socket_writes: OwnedCounter,
    /// Delivery latency: from the broker taking a message to the socket write that
    /// carries it to a client of this shard.
    pub delivery_latency: Histogram,
    /// Connect + authenticate latency: from accepting the TCP connection to the
    /// `authenticated` reply.
    pub connect_latency: Histogram,
}

/// Engine-wide counters plus every shard's.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages handed to the broker (one per message, whatever the fan-out).
    pub published: Counter,
    /// Deliveries dropped because a shard inbox was full.
    pub inbox_dropped: Counter,
    /// HTTP requests served (not counting upgrades).
    pub http_requests: Counter,
    /// Upgrade requests refused (bad handshake, shutting down, full shard, `Origin`).
    pub upgrades_refused: Counter,
    /// Upgrades refused because their `Origin` matched no `allowed_origins` pattern (also
    /// counted in `upgrades_refused`).
    pub origin_refused: Counter,
    /// Envelopes received from Redis and delivered.
    pub redis_received: Counter,
    /// Envelopes queued for Redis (accepted by the bridge's bounded publish queue).
    pub redis_published: Counter,
    /// Publishes to Redis dropped (queue full while Redis was down).
    pub redis_publish_dropped: Counter,
    /// Client events not forwarded to `ws:inbound` because their client had
    /// `max_forwarded_per_client` waiting already.
    pub inbound_dropped: Counter,
    /// Upgrades refused (503) at `max_connections` or `max_connections_per_ip`.
    pub connections_refused: Counter,
    /// Upgrades refused (429) from addresses past `max_auth_failures_per_ip`.
    pub auth_throttled: Counter,
    shards: OnceLock<Vec<Arc<ShardMetrics>>>,
}

/// Name, help text and reader of a per-shard gauge.
type GaugeRow = (&'static str, &'static str, fn(&ShardMetrics) -> i64);
/// Name, help text and reader of a per-shard counter.
type CounterRow = (&'static str, &'static str, fn(&ShardMetrics) -> u64);

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
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        for (name, help, get) in SHARD_GAUGES {
            self.render_per_shard(&mut out, name, help, "gauge", |s| get(s).to_string());
        }
        for (name, help, get) in SHARD_COUNTERS {
            self.render_per_shard(&mut out, name, help, "counter", |s| get(s).to_string());
        }
        for (name, help, get) in ENGINE_COUNTERS {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                get(self).get()
            );
        }
        out
    }

    /// One metric with a `shard` label per shard.
    fn render_per_shard(
        &self,
        out: &mut String,
        name: &str,
        help: &str,
        kind: &str,
        value: impl Fn(&ShardMetrics) -> String,
    ) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (i, shard) in self.shards().iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", value(shard));
        }
    }
}

/// Per-shard gauges: name, help, reader.
const SHARD_GAUGES: [GaugeRow; 3] = [
    (
        "shardcast_connections",
        "Open WebSocket connections.",
        |s| s.connections.get(),
    ),
    (
        "shardcast_authenticated_connections",
        "Authenticated connections.",
        |s| s.authenticated.get(),
    ),
    ("shardcast_rooms", "Non-empty rooms per shard.", |s| {
        s.rooms.get()
    }),
];

/// Per-shard counters: name, help, reader.
const SHARD_COUNTERS: [CounterRow; 14] = [
    ("shardcast_accepted_total", "Connections accepted.", |s| {
        s.accepted.get()
    }),
    ("shardcast_frames_in_total", "Inbound data frames.", |s| {
        s.frames_in.get()
    }),
    (
        "shardcast_deliveries_total",
        "Frames queued to clients.",
        |s| s.deliveries.get(),
    ),
    (
        "shardcast_socket_writes_total",
        "Writes to client sockets by shard flushes.",
        |s| s.socket_writes.get(),
    ),
    (
        "shardcast_backpressure_dropped_total",
        "Frames dropped by backpressure.",
        |s| s.backpressure_dropped.get(),
    ),
    (
        "shardcast_slow_consumers_closed_total",
        "Clients closed by backpressure.",
        |s| s.slow_consumers_closed.get(),
    ),
    (
        "shardcast_auth_failures_total",
        "Authentications rejected or failed.",
        |s| s.auth_failures.get(),
    ),
    (
        "shardcast_timeouts_total",
        "Auth and heartbeat timeouts.",
        |s| s.timeouts.get(),
    ),
    (
        "shardcast_protocol_closes_total",
        "Protocol violations and oversize.",
        |s| s.protocol_closes.get(),
    ),
    (
        "shardcast_overloaded_closes_total",
        "Connections closed 1013: unfinished frames reached max_buffered_bytes.",
        |s| s.overloaded_closes.get(),
    ),
    (
        "shardcast_accept_errors_total",
        "Accepts that failed (out of descriptors, most often).",
        |s| s.accept_errors.get(),
    ),
    (
        "shardcast_rooms_refused_total",
        "Joins dropped past max_rooms_per_client.",
        |s| s.rooms_refused.get(),
    ),
    (
        "shardcast_rate_limited_total",
        "Clients closed 1008 for sending faster than client_message_rate.",
        |s| s.rate_limited.get(),
    ),
    (
        "shardcast_encrypted_deliveries_total",
        "Encrypted deliveries.",
        |s| s.encrypted_deliveries.get(),
    ),
];

/// Name, help text and counter of an engine-wide counter.
type EngineRow = (&'static str, &'static str, fn(&Metrics) -> &Counter);

/// Engine-wide counters: name, help, counter.
const ENGINE_COUNTERS: [EngineRow; 11] = [
    (
        "shardcast_published_total",
        "Messages handed to the broker.",
        |m| &m.published,
    ),
    (
        "shardcast_inbox_dropped_total",
        "Deliveries dropped by full shard inboxes.",
        |m| &m.inbox_dropped,
    ),
    (
        "shardcast_http_requests_total",
        "HTTP requests served.",
        |m| &m.http_requests,
    ),
    (
        "shardcast_upgrades_refused_total",
        "Upgrade requests refused.",
        |m| &m.upgrades_refused,
    ),
    (
        "shardcast_origin_refused_total",
        "Upgrades refused because their Origin is not allowed.",
        |m| &m.origin_refused,
    ),
    (
        "shardcast_redis_received_total",
        "Envelopes received from Redis.",
        |m| &m.redis_received,
    ),
    (
        "shardcast_redis_published_total",
        "Envelopes published to Redis.",
        |m| &m.redis_published,
    ),
    (
        "shardcast_connections_refused_total",
        "Upgrades refused 503 at max_connections or max_connections_per_ip.",
        |m| &m.connections_refused,
    ),
    (
        "shardcast_auth_throttled_total",
        "Upgrades refused 429 from addresses past max_auth_failures_per_ip.",
        |m| &m.auth_throttled,
    ),
    (
        "shardcast_inbound_dropped_total",
        "Client events not forwarded: their client had max_forwarded_per_client waiting.",
        |m| &m.inbound_dropped,
    ),
    (
        "shardcast_redis_publish_dropped_total",
        "Redis publishes dropped.",
        |m| &m.redis_publish_dropped,
    ),
];

//! The Prometheus text exposition (format 0.0.4) of every metric family: `# HELP` and
//! `# TYPE` exactly once per family, then its samples; label values escaped.

use std::fmt::Write as _;

use super::{DISCONNECT_LABELS, Histogram, Live, Metrics, RedisStats, ShardMetrics};
use crate::build_info;

/// Name, help text and reader of a per-shard gauge.
type GaugeRow = (&'static str, &'static str, fn(&ShardMetrics) -> i64);
/// Name, help text and reader of a per-shard counter.
type CounterRow = (&'static str, &'static str, fn(&ShardMetrics) -> u64);
/// Name, help text and reader of an engine-wide counter.
type EngineRow = (&'static str, &'static str, fn(&Metrics) -> u64);
/// Name, help text and reader of a per-shard histogram.
type HistogramRow = (&'static str, &'static str, fn(&ShardMetrics) -> &Histogram);

impl Metrics {
    /// The Prometheus text exposition of every metric, with `live` read at scrape time.
    pub fn render_prometheus(&self, live: &Live) -> String {
        let mut out = String::with_capacity(16 * 1024);
        render_build_info(&mut out);
        for (name, help, get) in SHARD_GAUGES {
            self.per_shard(&mut out, name, help, "gauge", |s| get(s).to_string());
        }
        self.render_inbox_depth(&mut out, &live.inbox_depths);
        for (name, help, get) in SHARD_COUNTERS {
            self.per_shard(&mut out, name, help, "counter", |s| get(s).to_string());
        }
        self.render_disconnects(&mut out);
        for (name, help, get) in SHARD_HISTOGRAMS {
            header(&mut out, name, help, "histogram");
            for (i, shard) in self.shards().iter().enumerate() {
                get(shard)
                    .snapshot()
                    .render_prometheus(&mut out, name, &format!("shard=\"{i}\""));
            }
        }
        for (name, help, get) in ENGINE_COUNTERS {
            header(&mut out, name, help, "counter");
            let _ = writeln!(out, "{name} {}", get(self));
        }
        self.render_http(&mut out);
        if let Some(redis) = &live.redis {
            render_redis(&mut out, redis);
            render_subscriptions(&mut out, redis);
            let name = "shardcast_redis_subscribe_window_seconds";
            header(
                &mut out,
                name,
                "Interest mode: time from a channel first being wanted here (a room's first \
                 local member, a client connecting) to Redis confirming its SUBSCRIBE.",
                "histogram",
            );
            self.redis_subscribe_window
                .snapshot()
                .render_prometheus(&mut out, name, "");
        }
        if let Some(process) = &live.process {
            process.render(&mut out);
        }
        out
    }

    /// One family with a `shard` label per shard.
    fn per_shard(
        &self,
        out: &mut String,
        name: &str,
        help: &str,
        kind: &str,
        value: impl Fn(&ShardMetrics) -> String,
    ) {
        header(out, name, help, kind);
        for (i, shard) in self.shards().iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", value(shard));
        }
    }

    fn render_inbox_depth(&self, out: &mut String, depths: &[usize]) {
        let name = "shardcast_shard_inbox_depth";
        header(
            out,
            name,
            "Commands waiting in the shard's inbox (capacity shard_inbox_capacity; full drops).",
            "gauge",
        );
        for (i, depth) in depths.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {depth}");
        }
    }

    fn render_disconnects(&self, out: &mut String) {
        let name = "shardcast_disconnects_total";
        header(
            out,
            name,
            "Connections ended, by the close code the server sent (its echo when the client \
             closed first); none: ended without a close frame from the server.",
            "counter",
        );
        for (i, shard) in self.shards().iter().enumerate() {
            for (slot, code) in DISCONNECT_LABELS.iter().enumerate() {
                let n = shard.disconnects.get(slot);
                let _ = writeln!(out, "{name}{{shard=\"{i}\",code=\"{code}\"}} {n}");
            }
        }
    }

    fn render_http(&self, out: &mut String) {
        let name = "shardcast_http_requests_total";
        header(
            out,
            name,
            "HTTP requests answered, by route and status (route upgrade: WebSocket upgrades).",
            "counter",
        );
        for (route, status, n) in self.http.nonzero() {
            let _ = writeln!(out, "{name}{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
    }
}

/// `# HELP` and `# TYPE` of one family.
fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {}\n# TYPE {name} {kind}",
        escape_help(help)
    );
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
pub(super) fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A help text as the text format wants it: `\` and newlines escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn render_build_info(out: &mut String) {
    let name = "shardcast_build_info";
    header(
        out,
        name,
        "Always 1; the labels say which build is running.",
        "gauge",
    );
    let _ = writeln!(
        out,
        "{name}{{version=\"{}\",commit=\"{}\",build_date=\"{}\"}} 1",
        escape_label(build_info::VERSION),
        escape_label(build_info::COMMIT),
        escape_label(build_info::BUILD_DATE),
    );
}

fn render_redis(out: &mut String, redis: &RedisStats) {
    let mut per_link = |name: &str, help: &str, kind: &str, sub: u64, publ: u64| {
        header(out, name, help, kind);
        let _ = writeln!(out, "{name}{{link=\"subscriber\"}} {sub}");
        let _ = writeln!(out, "{name}{{link=\"publisher\"}} {publ}");
    };
    per_link(
        "shardcast_redis_link_up",
        "1 when the Redis connection is up (subscriber: and subscribed to every channel).",
        "gauge",
        u64::from(redis.subscriber_up),
        u64::from(redis.publisher_up),
    );
    per_link(
        "shardcast_redis_reconnects_total",
        "Redis connections lost (each followed by a reconnect).",
        "counter",
        redis.subscriber_reconnects,
        redis.publisher_reconnects,
    );
    for (name, help, kind, value) in [
        (
            "shardcast_redis_probe_timeouts_total",
            "Liveness probes of the subscriber connection that went unanswered.",
            "counter",
            redis.probe_timeouts,
        ),
        (
            "shardcast_redis_malformed_total",
            "Messages from Redis that were not acceptable envelopes.",
            "counter",
            redis.malformed,
        ),
        (
            "shardcast_redis_publish_queue_depth",
            "Messages waiting in (or in flight from) the Redis publish queue.",
            "gauge",
            redis.queue_depth,
        ),
        (
            "shardcast_redis_publish_queue_bytes",
            "Bytes (channel + payload) waiting in the Redis publish queue.",
            "gauge",
            redis.queue_bytes,
        ),
        (
            "shardcast_redis_published_total",
            "Envelopes Redis accepted (PUBLISH answered); queued ones are not counted.",
            "counter",
            redis.published,
        ),
        (
            "shardcast_redis_publish_dropped_total",
            "Redis publishes dropped: queue full, refused by Redis, or abandoned at shutdown.",
            "counter",
            redis.publish_dropped,
        ),
    ] {
        header(out, name, help, kind);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// What the subscriber holds and how it got there.
fn render_subscriptions(out: &mut String, redis: &RedisStats) {
    let name = "shardcast_redis_subscriptions";
    header(
        out,
        name,
        "What the Redis subscriber holds now, by kind; mode says how it listens \
         (interest: a channel per local room, client and user; patterns: ws:room:* and co).",
        "gauge",
    );
    let mode = redis.subscribe_mode;
    for (kind, n) in [("channel", redis.channels), ("pattern", redis.patterns)] {
        let _ = writeln!(out, "{name}{{mode=\"{mode}\",kind=\"{kind}\"}} {n}");
    }
    let name = "shardcast_redis_subscription_changes_total";
    header(
        out,
        name,
        "Channels subscribed and unsubscribed to follow the local rooms, clients and users \
         (restores after a reconnect included).",
        "counter",
    );
    let _ = writeln!(out, "{name}{{op=\"subscribe\"}} {}", redis.subscribed);
    let _ = writeln!(out, "{name}{{op=\"unsubscribe\"}} {}", redis.unsubscribed);
    for (name, help, value) in [
        (
            "shardcast_redis_subscription_commands_total",
            "SUBSCRIBE and UNSUBSCRIBE commands sent (each carries a batch of channels).",
            redis.subscribe_commands,
        ),
        (
            "shardcast_redis_received_unwanted_total",
            "Messages from Redis for a channel no local room, client or user wanted when it \
             arrived: work a node does for others (patterns mode hears the whole fleet).",
            redis.unwanted,
        ),
    ] {
        header(out, name, help, "counter");
        let _ = writeln!(out, "{name} {value}");
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
const SHARD_COUNTERS: [CounterRow; 23] = [
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
        "shardcast_bytes_received_total",
        "WebSocket bytes read from client sockets (after the upgrade; TLS: plaintext).",
        |s| s.bytes_received.get(),
    ),
    (
        "shardcast_bytes_sent_total",
        "WebSocket bytes written to client sockets (TLS: plaintext).",
        |s| s.bytes_sent.get(),
    ),
    (
        "shardcast_backpressure_dropped_total",
        "Frames dropped by backpressure (backpressure_limit).",
        |s| s.backpressure_dropped.get(),
    ),
    (
        "shardcast_slow_consumers_closed_total",
        "Clients closed by backpressure (close_on_backpressure_limit).",
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
        "Protocol violations and oversize (max_payload_length, max_fragments).",
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
        "shardcast_compressions_total",
        "Messages compressed with permessage-deflate (once per message, not per recipient).",
        |s| s.compressions.get(),
    ),
    (
        "shardcast_compressed_deliveries_total",
        "Frames queued compressed (one per recipient that negotiated permessage-deflate).",
        |s| s.compressed_deliveries.get(),
    ),
    (
        "shardcast_inflated_messages_total",
        "Compressed client messages inflated (permessage-deflate).",
        |s| s.inflated_messages.get(),
    ),
    (
        "shardcast_encrypted_deliveries_total",
        "Encrypted deliveries.",
        |s| s.encrypted_deliveries.get(),
    ),
    (
        "shardcast_history_joins_total",
        "Joins to history rooms answered with ws:joined.",
        |s| s.history_joins.get(),
    ),
    (
        "shardcast_history_recovered_total",
        "Joins with since that recovered every missed message.",
        |s| s.history_recovered.get(),
    ),
    (
        "shardcast_history_not_recovered_total",
        "Joins with since past the history window or in another epoch (recovered false).",
        |s| s.history_not_recovered.get(),
    ),
    (
        "shardcast_history_read_failures_total",
        "History reads (joins, ws:history) that failed: Redis did not answer.",
        |s| s.history_read_failures.get(),
    ),
];

/// Per-shard histograms: name, help, reader.
const SHARD_HISTOGRAMS: [HistogramRow; 2] = [
    (
        "shardcast_delivery_latency_seconds",
        "Per socket write carrying deliveries: time from the broker taking the oldest frame \
         the write carried to the write.",
        |s| &s.delivery_latency,
    ),
    (
        "shardcast_connect_latency_seconds",
        "Time from accepting the TCP connection to queueing the authenticated reply.",
        |s| &s.connect_latency,
    ),
];

/// Engine-wide counters: name, help, reader.
const ENGINE_COUNTERS: [EngineRow; 9] = [
    (
        "shardcast_published_total",
        "Messages handed to the broker.",
        |m| m.published.get(),
    ),
    (
        "shardcast_inbox_dropped_total",
        "Deliveries dropped by full shard inboxes (shard_inbox_capacity).",
        |m| m.inbox_dropped.get(),
    ),
    (
        "shardcast_upgrades_refused_total",
        "Upgrade requests refused.",
        |m| m.upgrades_refused.get(),
    ),
    (
        "shardcast_origin_refused_total",
        "Upgrades refused because their Origin is not allowed (allowed_origins).",
        |m| m.origin_refused.get(),
    ),
    (
        "shardcast_connections_refused_total",
        "Upgrades refused 503 at max_connections or max_connections_per_ip.",
        |m| m.connections_refused.get(),
    ),
    (
        "shardcast_auth_throttled_total",
        "Upgrades refused 429 from addresses past max_auth_failures_per_ip.",
        |m| m.auth_throttled.get(),
    ),
    (
        "shardcast_inbound_dropped_total",
        "Client events not forwarded: their client had max_forwarded_per_client waiting.",
        |m| m.inbound_dropped.get(),
    ),
    (
        "shardcast_redis_received_total",
        "Envelopes received from Redis and delivered.",
        |m| m.redis_received.get(),
    ),
    (
        "shardcast_redis_queued_total",
        "Envelopes handed to the Redis publish queue (published or not).",
        |m| m.redis_queued.get(),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_one_help_and_one_type() {
        let metrics = Metrics::default();
        metrics.set_shards(vec![Default::default(), Default::default()]);
        let live = Live {
            inbox_depths: vec![0, 3],
            redis: Some(RedisStats::default()),
            process: super::super::ProcessStats::read(),
        };
        let text = metrics.render_prometheus(&live);
        let mut seen = std::collections::HashSet::new();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split_whitespace().nth(2).expect("name");
            assert!(seen.insert(name.to_owned()), "{name} twice");
        }
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(helps, seen.len());
        assert!(text.contains("shardcast_shard_inbox_depth{shard=\"1\"} 3\n"));
        assert!(text.contains("shardcast_redis_link_up{link=\"publisher\"} 0\n"));
        assert!(text.contains("shardcast_disconnects_total{shard=\"1\",code=\"none\"} 0\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

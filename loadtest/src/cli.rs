//! Command-line definitions (clap derive) only. Validation and defaults that depend on
//! other options happen in [`crate::app`].

pub use crate::nodes::Placement;
pub use crate::payload::PayloadKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Serialize, Serializer};
use std::path::PathBuf;

/// Load tester for servers speaking the Ignis WebSocket protocol (shardcast or the Ignis
/// reference). Loopback targets only unless --allow-non-loopback.
#[derive(Debug, Parser)]
#[command(name = "shardcast-load", version)]
pub struct Cli {
    /// Scenario to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios.
#[derive(Debug, Subcommand, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// Ramp N connections, authenticate, hold with heartbeats, close; connect/auth
    /// latency, server RSS and CPU per connection.
    Connect(ConnectArgs),
    /// N clients in M rooms, a publisher at R msg/s; end-to-end latency, throughput,
    /// loss, duplicates, server CPU per delivery.
    Fanout(FanoutArgs),
    /// Clients send custom events at a rate; achieved send rate, server CPU, and (with
    /// --redis) the latency and loss of the server's forwarding to `ws:inbound`.
    Chat(ChatArgs),
    /// Connect/authenticate/disconnect storm; successes, failures, latencies, server
    /// CPU per connection and RSS growth.
    Churn(ChurnArgs),
    /// Bounded soak: steady members read fan-out in K rooms while a churn population
    /// connects, joins, leaves and closes; the server's RSS and descriptors are sampled
    /// into a series, with a verdict (RSS flat, no descriptor leak, no error, every
    /// message accounted for).
    Soak(SoakArgs),
    /// History and recovery under abrupt disconnects: N clients in K history rooms read
    /// a publisher's messages and drop their TCP connections at random, rejoining with
    /// `since`; every stream is checked offset by offset (gaps, duplicates, order), with
    /// recovered ratio, time to recover and latency. Fails on any gap, duplicate or
    /// out-of-order offset, or when no rejoin was confirmed.
    Recovery(RecoveryArgs),
    /// Measure the client alone: read frames from an in-process blaster (or from memory)
    /// as fast as possible, to check the reader is not the bottleneck.
    #[command(hide = true)]
    ClientBench(ClientBenchArgs),
}

fn redact<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if v.is_some() { "<redacted>" } else { "" })
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args, Serialize)]
pub struct CommonArgs {
    /// WebSocket URL of the server, e.g. ws://127.0.0.1:8080/ws.
    #[arg(long)]
    pub url: String,
    /// Mint an HS256 JWT per client with this secret (sub = load-{i}).
    #[arg(long, conflicts_with = "token")]
    #[serde(serialize_with = "redact")]
    pub jwt_secret: Option<String>,
    /// Send this token as is (dev-mode servers); `{i}` is replaced by the client index.
    #[arg(long)]
    #[serde(serialize_with = "redact")]
    pub token: Option<String>,
    /// Lifetime of minted tokens, seconds.
    #[arg(long, default_value_t = 86_400)]
    pub jwt_ttl_s: u64,
    /// Bind clients round-robin to 127.0.0.1 .. 127.0.0.N (past the ephemeral-port limit
    /// of one source address). 1 = let the kernel choose.
    #[arg(long, default_value_t = 1)]
    pub source_ips: u32,
    /// Worker threads driving connections (each its own single-threaded tokio runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Server process to sample (CPU time and RSS from `/proc/<pid>`).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the full report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Allow targets outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// wss://: trust the server certificates this PEM file's CAs signed.
    #[arg(long, conflicts_with = "tls_insecure")]
    pub tls_ca: Option<PathBuf>,
    /// wss://: accept any server certificate (self-signed test servers).
    #[arg(long)]
    pub tls_insecure: bool,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 1000.0)]
    pub connect_rate: f64,
    /// Most connection attempts in flight (connect + upgrade + auth) at once.
    #[arg(long, default_value_t = 256)]
    pub max_inflight: usize,
    /// Limit for TCP connect + upgrade, ms.
    #[arg(long, default_value_t = 10_000)]
    pub connect_timeout_ms: u64,
    /// Limit for `authenticate` → `connected`, ms.
    #[arg(long, default_value_t = 10_000)]
    pub auth_timeout_ms: u64,
    /// Never draw the progress line.
    #[arg(long)]
    pub no_progress: bool,
    /// Offer permessage-deflate (RFC 7692) on every connection: a server that agrees
    /// sends compressed messages, which the clients inflate before reading them (they
    /// send theirs uncompressed). Connections the server answers without it are counted
    /// and warned about, not failed.
    #[arg(long)]
    pub compression: bool,
    /// As --compression, and fail the run (exit 1) unless every connection agreed to it.
    #[arg(long)]
    pub require_compression: bool,
}

impl CommonArgs {
    /// Whether the clients offer permessage-deflate.
    pub fn offers_compression(&self) -> bool {
        self.compression || self.require_compression
    }
}

/// `connect` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ConnectArgs {
    /// Shared options.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub clients: u64,
    /// How long to hold all connections open, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub hold_s: f64,
    /// Heartbeat period while holding, seconds (0 = none).
    #[arg(long, default_value_t = 20.0)]
    pub heartbeat_s: f64,
    /// How long a graceful close may take, ms.
    #[arg(long, default_value_t = 3000)]
    pub close_timeout_ms: u64,
}

/// How the fan-out publisher reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishVia {
    /// `PUBLISH ws:room:<room>` envelopes with serverId "emitter" on Redis.
    Redis,
    /// `POST /api/publish` with the API key.
    Http,
}

/// Publisher options (fan-out).
#[derive(Debug, Clone, Args, Serialize)]
pub struct PublishArgs {
    /// Publish path; default: redis with --redis, else http with --api-key.
    #[arg(long, value_enum)]
    pub publish: Option<PublishVia>,
    /// Redis URL the server listens to, e.g. redis://127.0.0.1:6380.
    #[arg(long)]
    pub redis: Option<String>,
    /// API key for POST /api/publish.
    #[arg(long)]
    #[serde(serialize_with = "redact")]
    pub api_key: Option<String>,
    /// Publish URL; default http://<host:port of --url>/api/publish.
    #[arg(long)]
    pub api_url: Option<String>,
    /// Parallel keep-alive HTTP connections (more than 1 may reorder messages).
    #[arg(long, default_value_t = 1)]
    pub http_conns: usize,
}

/// `fanout` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct FanoutArgs {
    /// Shared options.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Publisher options.
    #[command(flatten)]
    #[serde(flatten)]
    pub publisher: PublishArgs,
    /// Clients (readers + stalled).
    #[arg(long, default_value_t = 1000)]
    pub clients: u64,
    /// Rooms; client i joins room i % M.
    #[arg(long, default_value_t = 1)]
    pub rooms: u64,
    /// Room name prefix (the server's room policy must allow it).
    #[arg(long, default_value = "public-")]
    pub room_prefix: String,
    /// Use the default room `ws-default` (no join; needs --rooms 1).
    #[arg(long)]
    pub default_room: bool,
    /// Messages published per second (spread round-robin over the rooms).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Approximate size of each frame a client receives, bytes (before compression).
    #[arg(long, default_value_t = 165)]
    pub frame_bytes: usize,
    /// What fills each message up to --frame-bytes: `pad` (one repeated character) or
    /// `json` (a realistic chat-history object that compresses like real JSON).
    #[arg(long, value_enum, default_value = "pad")]
    pub payload: PayloadKind,
    /// Lazy readers: read only every N ms (0 = read as soon as data arrives).
    #[arg(long, default_value_t = 0)]
    pub lazy_read_ms: u64,
    /// Clients that join but never read (slow-reader isolation test).
    #[arg(long, default_value_t = 0)]
    pub stalled: u64,
    /// Heartbeat period, seconds (0 = none).
    #[arg(long, default_value_t = 20.0)]
    pub heartbeat_s: f64,
    /// Longest wait for every reader to receive a warm-up message, seconds.
    #[arg(long, default_value_t = 15.0)]
    pub warmup_timeout_s: f64,
    /// Longest wait for in-flight messages after the last publish, ms (it ends sooner
    /// when all arrived, or none arrived for 3 s).
    #[arg(long, default_value_t = 10_000)]
    pub drain_ms: u64,
    /// The server nodes the clients are spread over.
    #[command(flatten)]
    #[serde(flatten)]
    pub nodes: NodeArgs,
    /// Plot, histogram export and pass/fail thresholds.
    #[command(flatten)]
    #[serde(flatten)]
    pub ci: CiArgs,
}

/// A fan-out over several server nodes sharing one Redis (`fanout`): where the clients
/// connect, and what is read from each node over the measured window.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct NodeArgs {
    /// Server nodes the clients connect to instead of --url (repeat, or comma-separate);
    /// --url stays required and still names the run and the default --api-url.
    #[arg(long = "node", value_name = "URL", value_delimiter = ',')]
    #[serde(rename = "nodes")]
    pub urls: Vec<String>,
    /// How clients are spread over the nodes: `disjoint` (room r's members all on node
    /// r % N) or `mixed` (member k of room r on node (r + k) % N).
    #[arg(long, value_enum, default_value = "disjoint")]
    pub placement: Placement,
    /// Server process of each node (repeat, or comma-separate; in --node order, or the
    /// one of --url): its CPU time over the measured window, per node.
    #[arg(long = "node-pid", value_name = "PID", value_delimiter = ',')]
    #[serde(rename = "node_pids")]
    pub pids: Vec<u32>,
    /// Prometheus metric read from each node's /metrics at publish start and drain end
    /// (repeat; the sum of its samples, absent when the node does not export it).
    #[arg(long = "node-metric", value_name = "NAME")]
    #[serde(rename = "node_metrics")]
    pub metrics: Vec<String>,
}

/// Exports of the delivery latency and thresholds that set the exit code (`fanout`,
/// `soak`): a breached threshold prints one line on stderr and exits 1.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct CiArgs {
    /// Draw the publish → receive latency over time (p50, p99, max per interval of send
    /// time) and by percentile into this PNG file.
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
    /// Write the latency histogram (µs) to this file in HdrHistogram's V2 binary format.
    #[arg(long, value_name = "FILE")]
    pub hdr: Option<PathBuf>,
    /// Write the latency percentile distribution (ms) to this file as HdrHistogram's text
    /// table.
    #[arg(long, value_name = "FILE")]
    pub percentiles: Option<PathBuf>,
    /// Fail when the median latency is above this, ms.
    #[arg(long, value_name = "MS")]
    pub max_p50_ms: Option<f64>,
    /// Fail when the 99th percentile latency is above this, ms.
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,
    /// Fail when the 99.9th percentile latency is above this, ms.
    #[arg(long, value_name = "MS")]
    pub max_p999_ms: Option<f64>,
    /// Fail when the share of expected deliveries that never arrived is above this
    /// (0 = none may be lost, 0.001 = 0.1%).
    #[arg(long, value_name = "RATIO")]
    pub max_loss: Option<f64>,
    /// Fail when more clients than this failed to connect or authenticate.
    #[arg(long, value_name = "N")]
    pub max_failed: Option<u64>,
}

/// `chat` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ChatArgs {
    /// Shared options.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Clients sending.
    #[arg(long, default_value_t = 100)]
    pub clients: u64,
    /// Messages per second, all clients together.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Approximate size of each frame sent, bytes.
    #[arg(long, default_value_t = 165)]
    pub frame_bytes: usize,
    /// What fills each message up to --frame-bytes: `pad` or `json` (as `fanout`).
    #[arg(long, value_enum, default_value = "pad")]
    pub payload: PayloadKind,
    /// Event name of the custom messages.
    #[arg(long, default_value = "chat")]
    pub event: String,
    /// Redis URL: subscribe to the inbound channel to measure forwarding latency and loss.
    #[arg(long)]
    pub redis: Option<String>,
    /// Channel the server forwards client events to.
    #[arg(long, default_value = "ws:inbound")]
    pub inbound_channel: String,
    /// Heartbeat period, seconds (0 = none).
    #[arg(long, default_value_t = 20.0)]
    pub heartbeat_s: f64,
    /// Longest wait for forwarded messages after the last send, ms (it ends sooner when
    /// all arrived, or none arrived for 3 s).
    #[arg(long, default_value_t = 5000)]
    pub drain_ms: u64,
}

/// `churn` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ChurnArgs {
    /// Shared options.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// New connections per second.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds of churning.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// How long each connection stays open after `connected`, ms.
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// How long a graceful close may take, ms.
    #[arg(long, default_value_t = 3000)]
    pub close_timeout_ms: u64,
}

/// `soak` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SoakArgs {
    /// Shared options.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Publisher options.
    #[command(flatten)]
    #[serde(flatten)]
    pub publisher: PublishArgs,
    /// Steady members: client i joins room i % K and stays for the whole run.
    #[arg(long, default_value_t = 1000)]
    pub clients: u64,
    /// Rooms (K).
    #[arg(long, default_value_t = 100)]
    pub rooms: u64,
    /// Room name prefix (the server's room policy must allow it).
    #[arg(long, default_value = "public-")]
    pub room_prefix: String,
    /// Fan-out messages published per second (spread round-robin over the rooms).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Churn cycles (connect, authenticate, join, leave, close) started per second.
    #[arg(long, default_value_t = 100.0)]
    pub churn_rate: f64,
    /// How long a churn client stays in its room before leaving, ms.
    #[arg(long, default_value_t = 1000)]
    pub churn_hold_ms: u64,
    /// Seconds of soak (publishing and churn).
    #[arg(long, default_value_t = 600.0)]
    pub duration_s: f64,
    /// Period of the server samples (RSS, descriptors), seconds.
    #[arg(long, default_value_t = 5.0)]
    pub sample_s: f64,
    /// Start of the soak left out of the RSS fit, seconds; default a third of
    /// --duration-s (the fit covers the last two thirds).
    #[arg(long)]
    pub rss_warmup_s: Option<f64>,
    /// Largest RSS slope (either sign) still called flat, MiB per minute.
    #[arg(long, default_value_t = 1.0)]
    pub rss_tolerance_mib_per_min: f64,
    /// Server descriptors beyond the held connections still called no leak.
    #[arg(long, default_value_t = 2)]
    pub fd_tolerance: u64,
    /// Approximate size of each frame a member receives, bytes (before compression).
    #[arg(long, default_value_t = 165)]
    pub frame_bytes: usize,
    /// What fills each message up to --frame-bytes: `pad` or `json` (as `fanout`).
    #[arg(long, value_enum, default_value = "pad")]
    pub payload: PayloadKind,
    /// Heartbeat period of the steady members, seconds (0 = none).
    #[arg(long, default_value_t = 20.0)]
    pub heartbeat_s: f64,
    /// Longest wait for every member to receive a warm-up message, seconds.
    #[arg(long, default_value_t = 15.0)]
    pub warmup_timeout_s: f64,
    /// Longest wait for in-flight messages after the last publish, ms.
    #[arg(long, default_value_t = 10_000)]
    pub drain_ms: u64,
    /// How long a graceful close may take, ms.
    #[arg(long, default_value_t = 3000)]
    pub close_timeout_ms: u64,
    /// Plot, histogram export and pass/fail thresholds.
    #[command(flatten)]
    #[serde(flatten)]
    pub ci: CiArgs,
}

/// `recovery` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct RecoveryArgs {
    /// Shared options.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Publisher options.
    #[command(flatten)]
    #[serde(flatten)]
    pub publisher: PublishArgs,
    /// Clients; client i joins room i % K.
    #[arg(long, default_value_t = 100)]
    pub clients: u64,
    /// History rooms (K).
    #[arg(long, default_value_t = 10)]
    pub rooms: u64,
    /// Room name prefix; rooms are named PREFIX0 … PREFIX{K-1}, and the server's
    /// --history-rooms glob (and room policy) must match them.
    #[arg(long, default_value = "rec-")]
    pub room_prefix: String,
    /// Messages published per second (spread round-robin over the rooms).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds of publishing, during which clients drop and rejoin.
    #[arg(long, alias = "duration", default_value_t = 30.0)]
    pub duration_s: f64,
    /// Mean time a client stays connected after its join is confirmed before it drops
    /// the connection abruptly, ms (each interval uniform in 0.5–1.5 × this).
    #[arg(long, default_value_t = 2000)]
    pub drop_every_ms: u64,
    /// Wait between a drop and the reconnect, ms.
    #[arg(long, default_value_t = 100)]
    pub reconnect_delay_ms: u64,
    /// Limit for join sent → `ws:joined` (the replay included), ms.
    #[arg(long, default_value_t = 10_000)]
    pub join_timeout_ms: u64,
    /// Approximate size of each published frame before the server adds the room, offset
    /// and epoch, bytes.
    #[arg(long, default_value_t = 165)]
    pub frame_bytes: usize,
    /// What fills each message up to --frame-bytes: `pad` or `json` (as `fanout`).
    #[arg(long, value_enum, default_value = "pad")]
    pub payload: PayloadKind,
    /// Heartbeat period, seconds (0 = none).
    #[arg(long, default_value_t = 20.0)]
    pub heartbeat_s: f64,
    /// Longest wait for in-flight messages after the last publish, ms (it ends sooner
    /// when none arrived for 3 s).
    #[arg(long, default_value_t = 10_000)]
    pub drain_ms: u64,
}

/// Where `client-bench` gets its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchSource {
    /// An in-process server thread writing frames over loopback TCP.
    Loopback,
    /// A prepared buffer in memory (codec + scan + histogram only).
    Memory,
}

/// `client-bench` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ClientBenchArgs {
    /// Frame source.
    #[arg(long, value_enum, default_value = "loopback")]
    pub source: BenchSource,
    /// Connections (loopback).
    #[arg(long, default_value_t = 100)]
    pub connections: u64,
    /// Seconds to run.
    #[arg(long, default_value_t = 5.0)]
    pub duration_s: f64,
    /// Frame size, bytes.
    #[arg(long, default_value_t = 165)]
    pub frame_bytes: usize,
    /// CPU to pin the reader thread to.
    #[arg(long)]
    pub reader_cpu: Option<usize>,
    /// CPU to pin the blaster thread to.
    #[arg(long)]
    pub blaster_cpu: Option<usize>,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl Command {
    /// The plot, export and threshold options, for the scenarios that take them.
    pub fn ci(&self) -> Option<&CiArgs> {
        match self {
            Command::Fanout(a) => Some(&a.ci),
            Command::Soak(a) => Some(&a.ci),
            _ => None,
        }
    }

    /// The scenario's name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Connect(_) => "connect",
            Command::Fanout(_) => "fanout",
            Command::Chat(_) => "chat",
            Command::Churn(_) => "churn",
            Command::Soak(_) => "soak",
            Command::Recovery(_) => "recovery",
            Command::ClientBench(_) => "client-bench",
        }
    }
}

//! Stage one of the command line: the raw clap arguments of every subcommand. Stage two
//! ([`super::config`]) merges `serve`'s with the environment, the TOML file and the
//! defaults into a validated configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// shardcast: a shard-per-core WebSocket real-time server (Ignis-compatible).
#[derive(Debug, Parser)]
#[command(name = "shardcast", version = shardcast::build_info::LONG_VERSION, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Publish one message to every node through Redis (like an Ignis WebSocketEmitter).
    Emit(EmitArgs),
    /// Mint an HS256/384/512 JWT for trying things out.
    Token(TokenArgs),
}

/// `shardcast serve` flags; each is also `SHARDCAST_<NAME>` and a TOML key.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys in snake_case).
    #[arg(long, env = "SHARDCAST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8081].
    #[arg(long, env = "SHARDCAST_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// WebSocket path [default: /ws].
    #[arg(long, env = "SHARDCAST_PATH")]
    pub path: Option<String>,
    /// Shards (threads) [default: one per core].
    #[arg(long, env = "SHARDCAST_SHARDS")]
    pub shards: Option<usize>,
    /// Redis URL; repeat (or comma-separate) to name the nodes of a Redis Cluster.
    #[arg(long, env = "SHARDCAST_REDIS", value_delimiter = ',')]
    pub redis: Vec<String>,
    /// Shared secret for HS256/384/512 JWTs.
    #[arg(long, env = "SHARDCAST_JWT_SECRET", conflicts_with_all = ["jwt_public_key", "dev"])]
    pub jwt_secret: Option<String>,
    /// PEM public key file for RS256/ES256 JWTs.
    #[arg(long, env = "SHARDCAST_JWT_PUBLIC_KEY", conflicts_with = "dev")]
    pub jwt_public_key: Option<PathBuf>,
    /// INSECURE: accept any token as the user id (development only).
    #[arg(long, env = "SHARDCAST_DEV")]
    pub dev: bool,
    /// JWT algorithm: HS256 (default with a secret), HS384, HS512, RS256, ES256.
    #[arg(long, env = "SHARDCAST_JWT_ALG")]
    pub jwt_alg: Option<String>,
    /// Bearer key for POST /api/publish and the /api/ queries.
    #[arg(long, env = "SHARDCAST_API_KEY")]
    pub api_key: Option<String>,
    /// Rooms clients may join, as globs (`public-*`, `user-{userId}-*`) [default: none].
    #[arg(long, env = "SHARDCAST_ALLOW_ROOMS", value_delimiter = ',')]
    pub allow_rooms: Vec<String>,
    /// Origins that may upgrade, as globs (`https://*.example.com`); others get 403, no
    /// Origin header passes [default: every origin].
    #[arg(long, env = "SHARDCAST_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Rooms joined on authentication [default: ws-default,ws-notification].
    #[arg(long, env = "SHARDCAST_DEFAULT_ROOMS", value_delimiter = ',')]
    pub default_rooms: Option<Vec<String>>,
    /// Time to authenticate before close 4001 [default: 5000].
    #[arg(long, env = "SHARDCAST_AUTH_TIMEOUT_MS")]
    pub auth_timeout_ms: Option<u64>,
    /// Heartbeat sweep period [default: 30000].
    #[arg(long, env = "SHARDCAST_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Silence before close 4002 [default: 90000].
    #[arg(long, env = "SHARDCAST_HEARTBEAT_TIMEOUT_MS")]
    pub heartbeat_timeout_ms: Option<u64>,
    /// Largest inbound message before close 1009 [default: 131072].
    #[arg(long, env = "SHARDCAST_MAX_PAYLOAD_LENGTH")]
    pub max_payload_length: Option<usize>,
    /// Transport idle timeout in seconds, 0 disables [default: 60].
    #[arg(long, env = "SHARDCAST_IDLE_TIMEOUT_S")]
    pub idle_timeout_s: Option<u64>,
    /// Bytes queued per client before dropping (or closing) [default: 1048576].
    #[arg(long, env = "SHARDCAST_BACKPRESSURE_LIMIT")]
    pub backpressure_limit: Option<usize>,
    /// Close slow clients (1008) instead of dropping their messages.
    #[arg(long, env = "SHARDCAST_CLOSE_ON_BACKPRESSURE_LIMIT")]
    pub close_on_backpressure_limit: bool,
    /// Require the ECDH encryption handshake from every client.
    #[arg(long, env = "SHARDCAST_REQUIRE_ENCRYPTION")]
    pub require_encryption: bool,
    /// Write pacing: under heavy fan-out a busy socket is written at most once per
    /// (1 + factor) × the time of a pass over all busy sockets; 0 = off [default: 3].
    #[arg(long, env = "SHARDCAST_WRITE_COALESCE_FACTOR")]
    pub write_coalesce_factor: Option<u32>,
    /// Cap on the latency write pacing adds, in milliseconds [default: 5].
    #[arg(long, env = "SHARDCAST_MAX_WRITE_DELAY_MS")]
    pub max_write_delay_ms: Option<u64>,
    /// Most frames one client message may arrive in; more closes 1009 [default: 1024].
    #[arg(long, env = "SHARDCAST_MAX_FRAGMENTS")]
    pub max_fragments: Option<u32>,
    /// Bytes all clients together may hold in unfinished frames; past it the growing
    /// connection is closed 1013 [default: 268435456].
    #[arg(long, env = "SHARDCAST_MAX_BUFFERED_BYTES")]
    pub max_buffered_bytes: Option<usize>,
    /// Connections the process holds at most; more get 503, 0 = no limit [default: 0].
    #[arg(long, env = "SHARDCAST_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections one IP address may hold; more get 503, 0 = no limit [default: 0].
    #[arg(long, env = "SHARDCAST_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Rooms one client may be in; joins past it are dropped [default: 1000].
    #[arg(long, env = "SHARDCAST_MAX_ROOMS_PER_CLIENT")]
    pub max_rooms_per_client: Option<usize>,
    /// Messages per second one client may send; over it, close 1008, 0 = off [default: 0].
    #[arg(long, env = "SHARDCAST_CLIENT_MESSAGE_RATE")]
    pub client_message_rate: Option<u32>,
    /// Messages a client may send at once above the rate, 0 = the rate [default: 0].
    #[arg(long, env = "SHARDCAST_CLIENT_MESSAGE_BURST")]
    pub client_message_burst: Option<u32>,
    /// Custom events of one client that may wait for ws:inbound; more are dropped
    /// [default: 64].
    #[arg(long, env = "SHARDCAST_MAX_FORWARDED_PER_CLIENT")]
    pub max_forwarded_per_client: Option<usize>,
    /// Failed authentications per IP address and window before its upgrades get 429,
    /// 0 = off [default: 20].
    #[arg(long, env = "SHARDCAST_MAX_AUTH_FAILURES_PER_IP")]
    pub max_auth_failures_per_ip: Option<u32>,
    /// The window of --max-auth-failures-per-ip, in seconds [default: 60].
    #[arg(long, env = "SHARDCAST_AUTH_FAILURE_WINDOW_S")]
    pub auth_failure_window_s: Option<u64>,
    /// Negotiate encryption with clients that offer a publicKey when it is not required
    /// (Ignis ignores the key).
    #[arg(long, env = "SHARDCAST_OPTIONAL_ENCRYPTION")]
    pub optional_encryption: bool,
    /// PEM certificate chain (leaf first): serve wss:// and https:// on the port; give
    /// --tls-key too. Re-read on SIGHUP [default: plain TCP].
    #[arg(long, env = "SHARDCAST_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1). Re-read on SIGHUP.
    #[arg(long, env = "SHARDCAST_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// `shardcast emit` arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["client", "user", "room", "broadcast"])))]
pub struct EmitArgs {
    /// Redis URL (repeat or comma-separate for a cluster).
    #[arg(long, env = "SHARDCAST_REDIS", value_delimiter = ',', required = true)]
    pub redis: Vec<String>,
    /// Event name.
    #[arg(long)]
    pub event: String,
    /// Data as JSON text (omitted when absent).
    #[arg(long)]
    pub data: Option<String>,
    /// Send to one client id.
    #[arg(long)]
    pub client: Option<String>,
    /// Send to every session of a user.
    #[arg(long)]
    pub user: Option<String>,
    /// Send to a room.
    #[arg(long)]
    pub room: Option<String>,
    /// Client ids to skip (room or broadcast).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Send to every client.
    #[arg(long)]
    pub broadcast: bool,
}

/// `shardcast token` arguments.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The HMAC secret the server verifies with.
    #[arg(long, env = "SHARDCAST_JWT_SECRET")]
    pub secret: String,
    /// The user id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// Lifetime in seconds (adds `exp`).
    #[arg(long)]
    pub ttl_s: Option<u64>,
    /// Extra claim `key=value` (value parsed as JSON when it is JSON).
    #[arg(long = "claim")]
    pub claims: Vec<String>,
    /// HS256, HS384 or HS512.
    #[arg(long, default_value = "HS256")]
    pub alg: String,
}

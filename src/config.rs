//! Engine settings with the Ignis defaults.
//!
//! [`EngineConfig`] holds what the engine itself needs. The standalone server's own
//! settings (JWT, API key, Redis, room policy) and its flags > env > file > defaults
//! merge belong to the `shardcast` binary (`src/cli/`); embedders set the rest on
//! [`crate::EngineBuilder`].

use std::net::SocketAddr;
use std::time::Duration;

use crate::rooms::glob::{PatternError, RoomPolicy};

/// Ignis `WebSocketDefaults`, kept in one place.
pub mod defaults {
    use std::time::Duration;

    /// `PATH`: the WebSocket endpoint.
    pub const PATH: &str = "/ws";
    /// `ROOM` and `NOTIFICATION_ROOM`: joined by every client on authentication.
    pub const DEFAULT_ROOMS: [&str; 2] = ["ws-default", "ws-notification"];
    /// `AUTH_TIMEOUT`.
    pub const AUTH_TIMEOUT: Duration = Duration::from_millis(5000);
    /// `HEARTBEAT_INTERVAL`.
    pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(30_000);
    /// `HEARTBEAT_TIMEOUT`.
    pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(90_000);
    /// `MAX_PAYLOAD_LENGTH`.
    pub const MAX_PAYLOAD_LENGTH: usize = 131_072;
    /// `IDLE_TIMEOUT` (seconds in Ignis).
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// `BACKPRESSURE_LIMIT`.
    pub const BACKPRESSURE_LIMIT: usize = 1_048_576;
    /// `SEND_PINGS`.
    pub const SEND_PINGS: bool = true;
    /// `ENCRYPTED_BATCH_LIMIT`.
    pub const ENCRYPTED_BATCH_LIMIT: usize = 10;
}

/// Everything the engine needs to run; every field documents its default.
///
/// ```
/// use std::time::Duration;
/// use shardcast::EngineConfig;
///
/// let config = EngineConfig {
///     listen: "0.0.0.0:9000".parse().unwrap(),
///     heartbeat_timeout: Duration::from_secs(45),
///     ..EngineConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// assert_eq!(config.path, "/ws");
/// ```
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Address to listen on. Default `127.0.0.1:8081`; use `0.0.0.0:8081` to serve others.
    pub listen: SocketAddr,
    /// WebSocket path. Default `/ws`. A plain GET there answers 426; an upgrade anywhere
    /// else answers 404.
    pub path: String,
    /// Number of shards (threads). Default 0 = one per available core.
    pub shards: usize,
    /// Pin shard threads to cores (best effort; a failure is logged). Default true.
    pub pin_shards: bool,
    /// Rooms every client joins on authentication. Default `ws-default`, `ws-notification`.
    pub default_rooms: Vec<String>,
    /// Time to send `authenticate` before close 4001; 3× while the authenticator runs.
    /// Default 5 s.
    pub auth_timeout: Duration,
    /// Period of the heartbeat sweep. Default 30 s.
    pub heartbeat_interval: Duration,
    /// An authenticated client silent this long is closed with 4002. Default 90 s.
    pub heartbeat_timeout: Duration,
    /// Largest inbound message; bigger closes with 1009. Default 131072 bytes. A
    /// compressed message is held to it twice: as received, and inflated.
    pub max_payload_length: usize,
    /// Negotiate permessage-deflate (RFC 7692) with clients that offer it. Each message
    /// is compressed at most once, shared by every recipient that negotiated it; no
    /// connection keeps a compression window (both sides agree to no context
    /// takeover). Default false.
    pub compression: bool,
    /// Messages whose payload is shorter than this go uncompressed (RSV1 clear), even
    /// to clients that negotiated compression. Default 256 bytes.
    pub compression_min_size: usize,
    /// The DEFLATE level, 1 (fastest) to 9 (smallest). A message fanned out is
    /// compressed once whatever its recipients, so the level costs per message, not per
    /// recipient. Default 6 (zlib's default); PERF.md has time and size per level.
    pub compression_level: u32,
    /// Transport idle timeout: a connection that sends nothing (not even a pong) this long
    /// is dropped. Zero disables it. Default 60 s.
    pub idle_timeout: Duration,
    /// Send a transport ping when a connection has been quiet for half the idle timeout,
    /// so live clients answer and stay. Default true.
    pub send_pings: bool,
    /// Bytes that may wait in one client's outbound queue; beyond it messages to that
    /// client are dropped and counted (or the client is closed, see below). Default 1 MiB.
    pub backpressure_limit: usize,
    /// Close a client with 1008 when its queue passes `backpressure_limit` instead of
    /// dropping messages. Default false.
    pub close_on_backpressure_limit: bool,
    /// Every client must complete the ECDH handshake in `authenticate`. Default false.
    pub require_encryption: bool,
    /// Per-shard limit of encryption operations in flight. Default 10.
    pub encrypted_batch_limit: usize,
    /// Time allowed for each HTTP request (head and body; slowloris protection) and for
    /// each HTTP response write (a client that never reads is dropped). An idle
    /// keep-alive connection is closed after it too. Default 10 s.
    pub request_timeout: Duration,
    /// Origins allowed to upgrade, as globs (`*` any run, `?` one character;
    /// `https://*.example.com`), compared with the `Origin` header as sent (browsers send
    /// lowercase scheme and host). An upgrade whose `Origin` matches none is refused with
    /// 403 before the handshake and counted in `shardcast_origin_refused_total`; an
    /// upgrade without `Origin` (a non-browser client) passes. Default empty: every
    /// origin may upgrade, as in Ignis, so any web page may open a socket to the server
    /// with its visitors' browsers (cross-site WebSocket hijacking, when cookies carry the
    /// authentication).
    pub allowed_origins: Vec<String>,
    /// Capacity of each shard's inbox; a full inbox drops deliveries (counted). Default 65536.
    pub shard_inbox_capacity: usize,
    /// Write pacing: while writes carry two or more frames each, a busy socket is written
    /// at most once per `(1 + factor) × t`, where `t` is the time one pass over every busy
    /// socket takes, so heavy fan-outs put many frames in each write. 0 disables.
    /// Default 3. See `shard::pacing`.
    pub write_coalesce_factor: u32,
    /// Caps the pacing interval at `t + max_write_delay` (bounds the latency pacing adds).
    /// Default 5 ms.
    pub max_write_delay: Duration,
    /// Most frames one client message may arrive in; more closes with 1009. Default 1,024.
    pub max_fragments: u32,
    /// Memory all connections together may hold in unfinished frames and fragmented
    /// messages (each up to `max_payload_length`); a connection that would take more is
    /// closed with 1013 "Try again later". Split evenly between shards. Default 256 MiB.
    pub max_buffered_bytes: usize,
    /// Connections the process holds at most (any state); past it an upgrade is answered
    /// 503 with `Retry-After`. 0 = no limit but the descriptor limit. Default 0.
    pub max_connections: usize,
    /// Connections one IP address may hold; past it its upgrades are answered 503 with
    /// `Retry-After`. 0 = no limit (clients behind one NAT share an address). Default 0.
    pub max_connections_per_ip: usize,
    /// Rooms one client may be in (default rooms and server-side joins included); joins
    /// past it are dropped, as a rejected join is, and counted. Default 1,000.
    pub max_rooms_per_client: usize,
    /// Messages per second one connection may send (token bucket, refilled continuously);
    /// a client over it is closed with 1008 "Rate limit exceeded". 0 = off. Default 0.
    pub client_message_rate: u32,
    /// The bucket's size: messages a client may send at once above the rate. 0 = the
    /// rate (one second's worth). Default 0.
    pub client_message_burst: u32,
    /// Custom events of one client that may wait to be forwarded to `ws:inbound` at once;
    /// more are dropped (that client's own, never another's) and counted. Default 64.
    pub max_forwarded_per_client: usize,
    /// Failed authentications one IP address may cause per `auth_failure_window`; past
    /// it, its upgrades are answered 429 with `Retry-After` until the window ends. 0 = no
    /// throttling. Default 20.
    pub max_auth_failures_per_ip: u32,
    /// The window of `max_auth_failures_per_ip`. Default 60 s.
    pub auth_failure_window: Duration,
    /// Negotiate the built-in ECDH encryption when a client offers a `publicKey` while
    /// `require_encryption` is off. Ignis ignores the key then; so does shardcast unless
    /// this is set. Default false.
    pub optional_encryption: bool,
    /// Who may see `/dashboard` and `GET /api/dashboard`. Default
    /// [`DashboardMode::Protected`]: the API key or the dashboard key
    /// ([`crate::EngineBuilder::dashboard_key`]).
    pub dashboard: DashboardMode,
    /// Which other built-in HTTP endpoints the engine serves (on its own port, and in
    /// `mount::endpoints` when mounted on an application's router). Default: all.
    pub endpoints: Endpoints,
    /// Rooms that keep history, as globs (`*`, `?`, `{userId}` standing for any user):
    /// their messages carry `room`, `offset` and `epoch`, a join may recover what it
    /// missed (`since`), and `ws:history` reads them. Default: none.
    pub history_rooms: Vec<String>,
    /// Messages each history room keeps (exactly its last N). Default 100.
    pub history_size: usize,
    /// How long a room's history lives after its last message. Default 300 s.
    pub history_ttl: Duration,
    /// Bytes the history of every room may take together, in memory (without Redis;
    /// with Redis the history lives there). Default 64 MiB.
    pub history_max_bytes: usize,
    /// Rooms whose members are tracked fleet-wide, as globs: `ws:presence` lists them,
    /// and joins and leaves are announced (`ws:join`, `ws:leave`). Default: none.
    pub presence_rooms: Vec<String>,
    /// With Redis: how long a node's presence entries outlive the node (each node
    /// refreshes its own at a third of it). Default 30 s.
    pub presence_ttl: Duration,
}

/// The built-in HTTP endpoints besides the dashboard (which has
/// [`EngineConfig::dashboard`]): each one that is off answers 404, whatever the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// `GET /health`.
    pub health: bool,
    /// `GET /ready`.
    pub ready: bool,
    /// `GET /metrics` (Prometheus).
    pub metrics: bool,
    /// `POST /api/publish`.
    pub publish: bool,
    /// The `/api/` queries and actions: `GET /api/stats`, `/api/rooms/{room}/clients`,
    /// `/api/users/{user}/clients`, `/api/clients/{id}`, and
    /// `POST /api/clients/{id}/disconnect`.
    pub api: bool,
}

impl Endpoints {
    /// Every endpoint (the default).
    pub const ALL: Endpoints = Endpoints {
        health: true,
        ready: true,
        metrics: true,
        publish: true,
        api: true,
    };
    /// None of them: the engine answers only WebSocket upgrades (and the dashboard, if
    /// [`EngineConfig::dashboard`] is on).
    pub const NONE: Endpoints = Endpoints {
        health: false,
        ready: false,
        metrics: false,
        publish: false,
        api: false,
    };
}

impl Endpoints {
    /// The names of the endpoints, as settings write them.
    pub const NAMES: [&'static str; 5] = ["health", "ready", "metrics", "publish", "api"];

    /// The endpoints named in `names` on, every other off; `none` alone turns them all
    /// off. Names are case-insensitive.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, ConfigError> {
        let mut on = Endpoints::NONE;
        for name in names {
            match name.trim().to_ascii_lowercase().as_str() {
                "health" => on.health = true,
                "ready" => on.ready = true,
                "metrics" => on.metrics = true,
                "publish" => on.publish = true,
                "api" => on.api = true,
                "none" => {}
                _ => return Err(ConfigError::UnknownEndpoint(name.to_owned())),
            }
        }
        Ok(on)
    }
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints::ALL
    }
}

/// Who may see the operator dashboard (`/dashboard` and `GET /api/dashboard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DashboardMode {
    /// No dashboard: both routes answer 404.
    Off,
    /// Everything (room names included) to a request with the API key or the dashboard
    /// key; 401 without one. The default.
    #[default]
    Protected,
    /// Aggregate numbers to anyone (no room names); a request with a key sees everything.
    Public,
}

impl DashboardMode {
    /// The setting's value as written in flags and files: `off`, `protected`, `public`.
    pub fn as_str(self) -> &'static str {
        match self {
            DashboardMode::Off => "off",
            DashboardMode::Protected => "protected",
            DashboardMode::Public => "public",
        }
    }
}

impl std::str::FromStr for DashboardMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(DashboardMode::Off),
            "protected" => Ok(DashboardMode::Protected),
            "public" => Ok(DashboardMode::Public),
            _ => Err(ConfigError::BadDashboardMode(s.to_owned())),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            path: defaults::PATH.to_owned(),
            shards: 0,
            pin_shards: true,
            default_rooms: defaults::DEFAULT_ROOMS
                .iter()
                .map(|r| r.to_string())
                .collect(),
            auth_timeout: defaults::AUTH_TIMEOUT,
            heartbeat_interval: defaults::HEARTBEAT_INTERVAL,
            heartbeat_timeout: defaults::HEARTBEAT_TIMEOUT,
            max_payload_length: defaults::MAX_PAYLOAD_LENGTH,
            compression: false,
            compression_min_size: 256,
            compression_level: 6,
            idle_timeout: defaults::IDLE_TIMEOUT,
            send_pings: defaults::SEND_PINGS,
            backpressure_limit: defaults::BACKPRESSURE_LIMIT,
            close_on_backpressure_limit: false,
            require_encryption: false,
            encrypted_batch_limit: defaults::ENCRYPTED_BATCH_LIMIT,
            request_timeout: Duration::from_secs(10),
            allowed_origins: Vec::new(),
            shard_inbox_capacity: 65_536,
            write_coalesce_factor: 3,
            max_write_delay: Duration::from_millis(5),
            max_fragments: 1024,
            max_buffered_bytes: 256 * 1024 * 1024,
            max_connections: 0,
            max_connections_per_ip: 0,
            max_rooms_per_client: 1000,
            client_message_rate: 0,
            client_message_burst: 0,
            max_forwarded_per_client: 64,
            max_auth_failures_per_ip: 20,
            auth_failure_window: Duration::from_secs(60),
            optional_encryption: false,
            dashboard: DashboardMode::Protected,
            endpoints: Endpoints::ALL,
            history_rooms: Vec::new(),
            history_size: 100,
            history_ttl: Duration::from_secs(300),
            history_max_bytes: 64 * 1024 * 1024,
            presence_rooms: Vec::new(),
            presence_ttl: Duration::from_secs(30),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The WebSocket path must start with `/`.
    #[error("path `{0}` must start with `/`")]
    BadPath(String),
    /// A duration or size that must be positive was zero.
    #[error("`{0}` must be greater than zero")]
    Zero(&'static str),
    /// A default room breaks the room-name rules.
    #[error("default room `{0}` is invalid: 1 to 256 characters, not starting with `ws:`")]
    BadDefaultRoom(String),
    /// An `allowed_origins` pattern cannot be compiled: fix or remove it.
    #[error("invalid `allowed_origins` pattern (origins use the room glob grammar): {0}")]
    BadOriginPattern(PatternError),
    /// An `allowed_origins` pattern uses `{userId}`, which an origin never has: use only
    /// `*` and `?`.
    #[error(
        "`allowed_origins` pattern `{0}` uses {{userId}}; origin patterns take only `*` and `?`"
    )]
    OriginPlaceholder(String),
    /// The dashboard mode is not one of `off`, `protected`, `public`.
    #[error("dashboard `{0}` is not a mode: use off, protected or public")]
    BadDashboardMode(String),
    /// An endpoint name that is not one of [`Endpoints::NAMES`].
    #[error(
        "endpoint `{0}` is unknown: name some of health, ready, metrics, publish, api (or none)"
    )]
    UnknownEndpoint(String),
    /// The DEFLATE level is not 1 to 9.
    #[error("compression level {0} is not one of 1 (fastest) to 9 (smallest)")]
    CompressionLevel(u32),
    /// A `history_rooms` or `presence_rooms` pattern cannot be compiled: fix or remove it.
    #[error("invalid `{setting}` pattern (the room glob grammar): {error}")]
    BadRoomPattern {
        /// `history_rooms` or `presence_rooms`.
        setting: &'static str,
        /// What is wrong with the pattern.
        error: PatternError,
    },
}

impl EngineConfig {
    /// Checks the settings that would otherwise fail at run time.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.path.starts_with('/') {
            return Err(ConfigError::BadPath(self.path.clone()));
        }
        let positive = [
            ("auth_timeout", self.auth_timeout.is_zero()),
            ("heartbeat_interval", self.heartbeat_interval.is_zero()),
            ("heartbeat_timeout", self.heartbeat_timeout.is_zero()),
            ("max_payload_length", self.max_payload_length == 0),
            ("backpressure_limit", self.backpressure_limit == 0),
            ("encrypted_batch_limit", self.encrypted_batch_limit == 0),
            ("shard_inbox_capacity", self.shard_inbox_capacity == 0),
            ("max_fragments", self.max_fragments == 0),
            ("max_buffered_bytes", self.max_buffered_bytes == 0),
            ("max_rooms_per_client", self.max_rooms_per_client == 0),
            (
                "max_forwarded_per_client",
                self.max_forwarded_per_client == 0,
            ),
            ("auth_failure_window", self.auth_failure_window.is_zero()),
            ("history_size", self.history_size == 0),
            ("history_ttl", self.history_ttl.is_zero()),
            ("history_max_bytes", self.history_max_bytes == 0),
            ("presence_ttl", self.presence_ttl.is_zero()),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, zero)| *zero) {
            return Err(ConfigError::Zero(name));
        }
        if let Some(bad) = self
            .default_rooms
            .iter()
            .find(|r| !crate::rooms::is_valid_room_name(r))
        {
            return Err(ConfigError::BadDefaultRoom(bad.clone()));
        }
        if !(1..=9).contains(&self.compression_level) {
            return Err(ConfigError::CompressionLevel(self.compression_level));
        }
        self.history_policy()?;
        self.presence_policy()?;
        self.origin_policy().map(drop)
    }

    /// The compiled `history_rooms`: `None` when empty (no room keeps history).
    pub fn history_policy(&self) -> Result<Option<RoomPolicy>, ConfigError> {
        room_list("history_rooms", &self.history_rooms)
    }

    /// The compiled `presence_rooms`: `None` when empty (no presence is tracked).
    pub fn presence_policy(&self) -> Result<Option<RoomPolicy>, ConfigError> {
        room_list("presence_rooms", &self.presence_rooms)
    }

    /// The history bounds.
    pub fn history_settings(&self) -> crate::history::HistorySettings {
        crate::history::HistorySettings {
            size: self.history_size,
            ttl: self.history_ttl,
            max_bytes: self.history_max_bytes,
        }
    }

    /// The compiled `allowed_origins`: `None` when empty (every origin may upgrade).
    pub fn origin_policy(&self) -> Result<Option<RoomPolicy>, ConfigError> {
        if let Some(bad) = self.allowed_origins.iter().find(|p| p.contains("{userId}")) {
            return Err(ConfigError::OriginPlaceholder(bad.clone()));
        }
        match self.allowed_origins.is_empty() {
            true => Ok(None),
            false => RoomPolicy::new(&self.allowed_origins)
                .map(Some)
                .map_err(ConfigError::BadOriginPattern),
        }
    }

    /// The shard count after resolving 0 to the number of available cores.
    pub fn resolved_shards(&self) -> usize {
        if self.shards > 0 {
            return self.shards;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// A room list setting compiled (`None` when empty).
fn room_list(
    setting: &'static str,
    patterns: &[String],
) -> Result<Option<RoomPolicy>, ConfigError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    RoomPolicy::new(patterns)
        .map(Some)
        .map_err(|error| ConfigError::BadRoomPattern { setting, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origins(origins: &[&str]) -> EngineConfig {
        EngineConfig {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..EngineConfig::default()
        }
    }

    #[test]
    fn the_compression_level_is_one_to_nine() {
        for (level, ok) in [(0, false), (1, true), (9, true), (10, false)] {
            let config = EngineConfig {
                compression_level: level,
                ..EngineConfig::default()
            };
            match ok {
                true => assert_eq!(config.validate(), Ok(())),
                false => assert_eq!(config.validate(), Err(ConfigError::CompressionLevel(level))),
            }
        }
    }

    #[test]
    fn allowed_origins_are_validated_with_a_clear_error() {
        assert!(with_origins(&[]).origin_policy().unwrap().is_none());
        let policy = with_origins(&["https://*.example.com"]).origin_policy();
        assert!(
            policy
                .unwrap()
                .unwrap()
                .allows("https://a.example.com", None)
        );
        let err = with_origins(&["https://{app}.example.com"])
            .validate()
            .unwrap_err();
        assert!(matches!(err, ConfigError::BadOriginPattern(_)), "{err}");
        assert!(err.to_string().contains("allowed_origins"), "{err}");
        let err = with_origins(&["ok", ""]).validate().unwrap_err();
        assert!(matches!(err, ConfigError::BadOriginPattern(_)), "{err}");
        let err = with_origins(&["https://{userId}.example.com"])
            .validate()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::OriginPlaceholder("https://{userId}.example.com".into())
        );
    }
}

//! Every `serve` setting, declared once: key, type, default, value name and doc. The one
//! table feeds the clap flags (`--key-name`) and `--help`, the environment variables
//! (`SHARDCAST_KEY_NAME`), the TOML keys (`key_name`), `shardcast config example`, the
//! README's table (`shardcast config table`, checked by a test) and `check-config`.
//!
//! A default is written as text and parsed like a flag value; an empty default means
//! unset (or an empty list). A test checks that the defaults are [`EngineConfig`]'s.
//!
//! [`EngineConfig`]: shardcast::EngineConfig

use std::path::PathBuf;

use super::layers::{Layers, SettingError, Source, Sourced};
pub use super::value::Kind;
use super::value::{HostPort, LogFilter, LogFormat, SettingType};
use shardcast::config::DashboardMode;
use shardcast::redis::SubscribeMode;

/// No special property.
const PLAIN: u8 = 0;
/// A secret: shown as `***` by `check-config` and in messages.
const SECRET: u8 = 1;
/// Applied live when the config file changes and SIGHUP arrives.
const LIVE: u8 = 2;
/// Not a key of the file (only a flag and an environment variable).
const NO_FILE: u8 = 4;

/// One setting's description.
#[derive(Debug)]
pub struct Meta {
    /// snake_case key (the TOML key).
    pub key: &'static str,
    /// The value's placeholder in `--help` (`HOST:PORT`).
    pub value_name: &'static str,
    /// The default as text (empty: unset).
    pub default: &'static str,
    /// The doc, one string per source line.
    pub doc: &'static [&'static str],
    /// How the flag takes its value.
    pub kind: Kind,
    flags: u8,
}

impl Meta {
    /// `--key-name`.
    pub fn flag(&self) -> String {
        flag_name(self.key)
    }

    /// `SHARDCAST_KEY_NAME`.
    pub fn env_name(&self) -> String {
        format!("SHARDCAST_{}", self.key.to_ascii_uppercase())
    }

    /// The doc as one paragraph.
    pub fn doc(&self) -> String {
        let lines = self.doc.iter().map(|line| line.trim());
        lines.collect::<Vec<_>>().join(" ")
    }

    /// Shown as `***`.
    pub fn is_secret(&self) -> bool {
        self.flags & SECRET != 0
    }

    /// Applied on SIGHUP.
    pub fn is_live(&self) -> bool {
        self.flags & LIVE != 0
    }

    /// A key of the config file.
    pub fn in_file(&self) -> bool {
        self.flags & NO_FILE == 0
    }
}

/// `--key-name` for `key_name`.
pub fn flag_name(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// The description of `key`.
pub fn meta(key: &str) -> Option<&'static Meta> {
    TABLE.iter().find(|m| m.key == key)
}

/// One resolved value as text, for `check-config` and the SIGHUP comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: &'static str,
    /// The value as TOML (`None`: unset).
    pub toml: Option<String>,
    /// Where it came from.
    pub source: Source,
}

impl<T: SettingType> Sourced<T> {
    fn entry(&self) -> Entry {
        Entry {
            key: self.key,
            toml: self.value.to_toml(),
            source: self.source.clone(),
        }
    }
}

macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $key:ident : $ty:ty = $default:literal, $value_name:literal, $flags:expr; )+) => {
        /// Every setting, resolved, with where each value came from.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $key: Sourced<$ty>, )+
        }

        /// Every setting's description, in `--help` order.
        pub static TABLE: &[Meta] = &[$(Meta {
            key: stringify!($key),
            value_name: $value_name,
            default: $default,
            doc: &[$($doc),+],
            kind: <$ty as SettingType>::KIND,
            flags: $flags,
        }),+];

        impl Settings {
            /// Each setting from the highest layer that has it, else its default.
            pub fn resolve(layers: &Layers) -> Result<Settings, SettingError> {
                Ok(Settings { $( $key: layers.get(stringify!($key), $default)?, )+ })
            }

            /// Every value as text, in table order.
            pub fn entries(&self) -> Vec<Entry> {
                vec![$( self.$key.entry() ),+]
            }
        }
    };
}

settings! {
    /// TOML file with any of the settings below (keys in snake_case); only the flag and
    /// `SHARDCAST_CONFIG` can name it. Re-read on SIGHUP.
    config: Option<PathBuf> = "", "FILE", NO_FILE;
    /// Address to listen on; a host name (`localhost:8081`) is resolved at start, and
    /// `0.0.0.0:8081` serves other machines.
    listen: HostPort = "127.0.0.1:8081", "HOST:PORT", PLAIN;
    /// WebSocket path; a plain GET there answers 426, an upgrade elsewhere 404.
    path: String = "/ws", "PATH", PLAIN;
    /// Shard threads; 0 = one per available core.
    shards: usize = "0", "N", PLAIN;
    /// Redis URL; repeat or comma-separate to name the nodes of a Redis Cluster. Unset:
    /// a single node without Redis.
    redis: Vec<String> = "", "URL", PLAIN;
    /// How a node hears other nodes through Redis: `interest` (SUBSCRIBE only the rooms,
    /// clients and users it hosts), `patterns` (PSUBSCRIBE `ws:room:*` and co: every node
    /// hears every message, as Ignis does) or `sharded` (Redis Cluster 7+: SSUBSCRIBE and
    /// SPUBLISH by slot; only when every node and emitter is shardcast in this mode, as
    /// Ignis never hears sharded messages; checked at start).
    redis_subscribe: SubscribeMode = "interest", "MODE", PLAIN;
    /// Shared secret for HS256/384/512 JWTs.
    jwt_secret: Option<String> = "", "SECRET", SECRET;
    /// PEM public key file for RS256/ES256 JWTs.
    jwt_public_key: Option<PathBuf> = "", "PEM", PLAIN;
    /// The one accepted JWT algorithm: HS256 (the default with a secret), HS384, HS512,
    /// RS256 (the default with a PEM key) or ES256; `none` is refused. In dev mode it is
    /// ignored with a warning.
    jwt_alg: Option<String> = "", "ALG", PLAIN;
    /// INSECURE: accept any token as the user id (development only, logged loudly). Of
    /// jwt_secret, jwt_public_key and dev, the one set at the highest level (flag > env >
    /// file) wins; two at the same level are refused.
    dev: bool = "false", "BOOL", PLAIN;
    /// Bearer key for `POST /api/publish` and the `/api/` queries (401 without).
    /// Re-read on SIGHUP.
    api_key: Option<String> = "", "KEY", SECRET | LIVE;
    /// Who may see `/dashboard`: `off` (404), `protected` (the API key or dashboard_key)
    /// or `public` (aggregate numbers to anyone; room names and actions with a key).
    dashboard: DashboardMode = "protected", "MODE", PLAIN;
    /// Bearer key that shows the whole dashboard and nothing else (no publish, no
    /// disconnect); the API key always works.
    dashboard_key: Option<String> = "", "KEY", SECRET;
    /// The built-in endpoints served besides the WebSocket and the dashboard: some of
    /// `health`, `ready`, `metrics`, `publish` and `api` (the `/api/` queries), or
    /// `none`; the others answer 404.
    endpoints: Vec<String> = "health,ready,metrics,publish,api", "NAME", PLAIN;
    /// Rooms clients may join, as globs (`*`, `?`, `{userId}`: `public-*`,
    /// `user-{userId}-*`); unset, every join is rejected. Re-read on SIGHUP.
    allow_rooms: Vec<String> = "", "GLOB", LIVE;
    /// Rooms that keep history, as globs (`{userId}` matches any user): their messages
    /// carry `room`, `offset` and `epoch`; a join may recover what it missed (`since`);
    /// `ws:history` and `GET /api/rooms/{room}/history` read it. In memory on a single
    /// node, in Redis with Redis.
    history_rooms: Vec<String> = "", "GLOB", PLAIN;
    /// Messages each history room keeps (exactly the last N).
    history_size: usize = "100", "N", PLAIN;
    /// Seconds a room's history lives after its last message.
    history_ttl_s: u64 = "300", "S", PLAIN;
    /// Bytes every room's history may take together in memory (single node).
    history_max_bytes: usize = "67108864", "BYTES", PLAIN;
    /// Rooms whose members are tracked fleet-wide, as globs: `ws:presence` and `GET
    /// /api/rooms/{room}/presence` list them; joins and leaves are announced to the
    /// room (`ws:join`, `ws:leave`).
    presence_rooms: Vec<String> = "", "GLOB", PLAIN;
    /// With Redis: seconds a node's presence entries outlive it (a dead node's clients
    /// leave within this plus a third).
    presence_ttl_s: u64 = "30", "S", PLAIN;
    /// Origins that may upgrade, as globs (`https://*.example.com`); others get 403
    /// before the handshake, a request without `Origin` passes. Unset: every origin, as
    /// in Ignis.
    allowed_origins: Vec<String> = "", "GLOB", PLAIN;
    /// Rooms every client joins on authentication.
    default_rooms: Vec<String> = "ws-default,ws-notification", "ROOM", PLAIN;
    /// Time to authenticate before close 4001, in milliseconds.
    auth_timeout_ms: u64 = "5000", "MS", PLAIN;
    /// Heartbeat sweep period, in milliseconds.
    heartbeat_interval_ms: u64 = "30000", "MS", PLAIN;
    /// Silence before close 4002, in milliseconds.
    heartbeat_timeout_ms: u64 = "90000", "MS", PLAIN;
    /// Largest inbound message in bytes; bigger closes 1009.
    max_payload_length: usize = "131072", "BYTES", PLAIN;
    /// Negotiate permessage-deflate with clients that offer it (browsers do): each
    /// message is compressed once for all such recipients, and no connection keeps a
    /// compression window.
    compression: bool = "false", "BOOL", PLAIN;
    /// With compression: messages shorter than this many bytes go uncompressed.
    compression_min_size: usize = "256", "BYTES", PLAIN;
    /// With compression: the DEFLATE level, 1 (fastest) to 9 (smallest); each message
    /// is compressed once, whatever its recipients.
    compression_level: u32 = "6", "LEVEL", PLAIN;
    /// Transport idle timeout in seconds; 0 disables it.
    idle_timeout_s: u64 = "60", "S", PLAIN;
    /// Bytes queued per client before its messages are dropped (or it is closed, see
    /// close_on_backpressure_limit).
    backpressure_limit: usize = "1048576", "BYTES", PLAIN;
    /// Close slow clients with 1008 instead of dropping their messages.
    close_on_backpressure_limit: bool = "false", "BOOL", PLAIN;
    /// Require the ECDH encryption handshake from every client (P-256, HKDF-SHA256,
    /// AES-256-GCM, as Ignis; `error` events are sealed too).
    require_encryption: bool = "false", "BOOL", PLAIN;
    /// Negotiate encryption with clients that offer a `publicKey` when it is not
    /// required (Ignis ignores the key).
    optional_encryption: bool = "false", "BOOL", PLAIN;
    /// Write pacing: while writes carry two or more frames each, a busy socket is written
    /// at most once per (1 + N) × t, t = one pass over the busy sockets; 0 = off.
    write_coalesce_factor: u32 = "3", "N", PLAIN;
    /// Caps the pacing interval at t + this many milliseconds (the latency pacing adds).
    max_write_delay_ms: u64 = "5", "MS", PLAIN;
    /// Frames one client message may arrive in; more closes 1009.
    max_fragments: u32 = "1024", "N", PLAIN;
    /// Bytes all clients together may hold in unfinished frames; the connection that
    /// would pass it is closed 1013.
    max_buffered_bytes: usize = "268435456", "BYTES", PLAIN;
    /// Connections the process holds; more upgrades get 503 + Retry-After; 0 = no limit.
    max_connections: usize = "0", "N", PLAIN;
    /// Connections one IP address holds; more get 503 + Retry-After; 0 = no limit.
    max_connections_per_ip: usize = "0", "N", PLAIN;
    /// Rooms one client is in (default rooms included); joins past it are dropped and
    /// counted.
    max_rooms_per_client: usize = "1000", "N", PLAIN;
    /// Messages per second one client may send (token bucket); over it, close 1008
    /// "Rate limit exceeded"; 0 = off.
    client_message_rate: u32 = "0", "N", PLAIN;
    /// Messages a client may send at once above the rate; 0 = the rate.
    client_message_burst: u32 = "0", "N", PLAIN;
    /// Custom events of one client waiting for `ws:inbound`; more are dropped (its own
    /// only) and counted.
    max_forwarded_per_client: usize = "64", "N", PLAIN;
    /// Failed authentications per IP address and window; past it its upgrades get 429 +
    /// Retry-After; 0 = off.
    max_auth_failures_per_ip: u32 = "20", "N", PLAIN;
    /// The window of max_auth_failures_per_ip, in seconds.
    auth_failure_window_s: u64 = "60", "S", PLAIN;
    /// PEM certificate chain, leaf first: serve wss:// and https:// on the port (rustls,
    /// TLS 1.2/1.3); needs tls_key. Both files are re-read on SIGHUP. Unset: plain TCP.
    tls_cert: Option<PathBuf> = "", "PEM", PLAIN;
    /// PEM private key of tls_cert (PKCS#8, PKCS#1 or SEC1); needs tls_cert.
    tls_key: Option<PathBuf> = "", "PEM", PLAIN;
    /// Log filter in the RUST_LOG syntax (`info`, `warn,shardcast=debug`); RUST_LOG is
    /// used when SHARDCAST_LOG is unset (flag > SHARDCAST_LOG > RUST_LOG > file).
    /// Re-read on SIGHUP.
    log: LogFilter = "info", "FILTER", LIVE;
    /// Log lines as `text` (coloured only on a terminal, never with NO_COLOR set) or
    /// `json` (one object per line: timestamp, level, message, fields, target).
    log_format: LogFormat = "text", "FORMAT", PLAIN;
}

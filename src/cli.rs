//! The command line: raw clap arguments (stage one) and their merge with the TOML file
//! and defaults into a validated [`ServeConfig`] (stage two).
//!
//! Precedence for `serve`: flags > `SHARDCAST_*` environment > `--config` file > defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::auth::jwt::{JwtAlgorithm, JwtConfigError, JwtVerifier};
use crate::config::{ConfigError, EngineConfig};
use crate::rooms::glob::{PatternError, RoomPolicy};

/// shardcast: a shard-per-core WebSocket real-time server (Ignis-compatible).
#[derive(Debug, Parser)]
#[command(name = "shardcast", version, about)]
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

/// The `--config` file: the same settings as the flags.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<SocketAddr>,
    path: Option<String>,
    shards: Option<usize>,
    redis: Option<StringOrList>,
    jwt_secret: Option<String>,
    jwt_public_key: Option<PathBuf>,
    dev: Option<bool>,
    jwt_alg: Option<String>,
    api_key: Option<String>,
    allow_rooms: Option<StringOrList>,
    default_rooms: Option<StringOrList>,
    auth_timeout_ms: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
    heartbeat_timeout_ms: Option<u64>,
    max_payload_length: Option<usize>,
    idle_timeout_s: Option<u64>,
    backpressure_limit: Option<usize>,
    close_on_backpressure_limit: Option<bool>,
    require_encryption: Option<bool>,
    write_coalesce_factor: Option<u32>,
    max_write_delay_ms: Option<u64>,
}

/// A TOML value given either as `"a,b"` or `["a", "b"]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => split_list(&s),
            Self::Many(v) => v,
        }
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// How clients authenticate.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// JWT with one algorithm.
    Jwt(Box<JwtVerifier>),
    /// INSECURE: any token is the user id.
    Dev,
}

/// The validated `serve` configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Engine settings.
    pub engine: EngineConfig,
    /// Authentication.
    pub auth: AuthMode,
    /// Bearer key of the HTTP API.
    pub api_key: Option<String>,
    /// Room allow-list.
    pub rooms: RoomPolicy,
    /// Redis URLs (empty: single node).
    pub redis: Vec<String>,
}

/// A `serve` configuration that cannot work, with what to change.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("invalid config file {path}: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key).
        message: String,
    },
    /// Neither JWT nor dev mode is configured.
    #[error(
        "no authentication configured: pass --jwt-secret (HS256/384/512) or --jwt-public-key with --jwt-alg RS256|ES256 for JWT, or --dev for the insecure development mode"
    )]
    NoAuth,
    /// Two authentication modes at once.
    #[error("choose one authentication: --jwt-secret, --jwt-public-key or --dev")]
    ConflictingAuth,
    /// A JWT setting is wrong.
    #[error("{0}")]
    Jwt(#[from] JwtConfigError),
    /// The PEM file could not be read.
    #[error("cannot read --jwt-public-key {path}: {source}")]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A room pattern is malformed.
    #[error("invalid --allow-rooms pattern: {0}")]
    Pattern(#[from] PatternError),
    /// An engine setting is invalid.
    #[error("{0}")]
    Engine(#[from] ConfigError),
}

impl ServeArgs {
    /// Merges flags/env with the file and defaults, and validates the result.
    pub fn resolve(self) -> Result<ServeConfig, CliError> {
        let file = match &self.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let defaults = EngineConfig::default();
        let ms = |flag: Option<u64>, file: Option<u64>, default: Duration| {
            flag.or(file).map_or(default, Duration::from_millis)
        };
        let engine = EngineConfig {
            listen: self.listen.or(file.listen).unwrap_or(defaults.listen),
            path: self.path.or(file.path).unwrap_or(defaults.path),
            shards: self.shards.or(file.shards).unwrap_or(defaults.shards),
            default_rooms: self
                .default_rooms
                .or(file.default_rooms.map(StringOrList::into_vec))
                .unwrap_or(defaults.default_rooms),
            auth_timeout: ms(
                self.auth_timeout_ms,
                file.auth_timeout_ms,
                defaults.auth_timeout,
            ),
            heartbeat_interval: ms(
                self.heartbeat_interval_ms,
                file.heartbeat_interval_ms,
                defaults.heartbeat_interval,
            ),
            heartbeat_timeout: ms(
                self.heartbeat_timeout_ms,
                file.heartbeat_timeout_ms,
                defaults.heartbeat_timeout,
            ),
            max_payload_length: self
                .max_payload_length
                .or(file.max_payload_length)
                .unwrap_or(defaults.max_payload_length),
            idle_timeout: self
                .idle_timeout_s
                .or(file.idle_timeout_s)
                .map_or(defaults.idle_timeout, Duration::from_secs),
            backpressure_limit: self
                .backpressure_limit
                .or(file.backpressure_limit)
                .unwrap_or(defaults.backpressure_limit),
            close_on_backpressure_limit: self.close_on_backpressure_limit
                || file.close_on_backpressure_limit.unwrap_or(false),
            require_encryption: self.require_encryption || file.require_encryption.unwrap_or(false),
            write_coalesce_factor: self
                .write_coalesce_factor
                .or(file.write_coalesce_factor)
                .unwrap_or(defaults.write_coalesce_factor),
            max_write_delay: ms(
                self.max_write_delay_ms,
                file.max_write_delay_ms,
                defaults.max_write_delay,
            ),
            ..defaults
        };
        engine.validate()?;
        let jwt_secret = self.jwt_secret.or(file.jwt_secret);
        let jwt_public_key = self.jwt_public_key.or(file.jwt_public_key);
        let dev = self.dev || file.dev.unwrap_or(false);
        let alg = self.jwt_alg.or(file.jwt_alg);
        let auth = resolve_auth(jwt_secret, jwt_public_key, dev, alg)?;
        let allow_rooms = if self.allow_rooms.is_empty() {
            file.allow_rooms
                .map(StringOrList::into_vec)
                .unwrap_or_default()
        } else {
            self.allow_rooms
        };
        let redis = if self.redis.is_empty() {
            file.redis.map(StringOrList::into_vec).unwrap_or_default()
        } else {
            self.redis
        };
        Ok(ServeConfig {
            engine,
            auth,
            api_key: self.api_key.or(file.api_key),
            rooms: RoomPolicy::new(&allow_rooms)?,
            redis,
        })
    }
}

fn load_file(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| CliError::ParseFile {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn resolve_auth(
    secret: Option<String>,
    public_key: Option<PathBuf>,
    dev: bool,
    alg: Option<String>,
) -> Result<AuthMode, CliError> {
    let alg = match alg {
        Some(a) => a.parse::<JwtAlgorithm>()?,
        None if public_key.is_some() => JwtAlgorithm::Rs256,
        None => JwtAlgorithm::Hs256,
    };
    match (secret, public_key, dev) {
        (Some(secret), None, false) => {
            let verifier = JwtVerifier::from_secret(alg, secret.as_bytes())?;
            Ok(AuthMode::Jwt(Box::new(verifier)))
        }
        (None, Some(path), false) => {
            let pem = std::fs::read(&path).map_err(|source| CliError::ReadKey { path, source })?;
            let verifier = JwtVerifier::from_public_key_pem(alg, &pem)?;
            Ok(AuthMode::Jwt(Box::new(verifier)))
        }
        (None, None, true) => Ok(AuthMode::Dev),
        (None, None, false) => Err(CliError::NoAuth),
        _ => Err(CliError::ConflictingAuth),
    }
}

//! Stage two of `serve`'s command line: flags and `SHARDCAST_*` environment (already
//! merged by clap) over the `--config` TOML file over the defaults, validated into a
//! [`ServeConfig`].
//!
//! Precedence: flags > environment > file > defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shardcast::auth::jwt::{JwtAlgorithm, JwtConfigError, JwtVerifier};
use shardcast::config::{ConfigError, EngineConfig};
use shardcast::rooms::glob::{PatternError, RoomPolicy};
use shardcast::tls::TlsConfig;

use super::args::ServeArgs;

/// The `--config` file: the same settings as the flags.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    path: Option<String>,
    shards: Option<usize>,
    redis: Option<StringOrList>,
    jwt_secret: Option<String>,
    jwt_public_key: Option<PathBuf>,
    dev: Option<bool>,
    jwt_alg: Option<String>,
    api_key: Option<String>,
    dashboard: Option<shardcast::config::DashboardMode>,
    dashboard_key: Option<String>,
    allow_rooms: Option<StringOrList>,
    allowed_origins: Option<StringOrList>,
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
    max_fragments: Option<u32>,
    max_buffered_bytes: Option<usize>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    max_rooms_per_client: Option<usize>,
    client_message_rate: Option<u32>,
    client_message_burst: Option<u32>,
    max_forwarded_per_client: Option<usize>,
    max_auth_failures_per_ip: Option<u32>,
    auth_failure_window_s: Option<u64>,
    optional_encryption: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
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
    /// Bearer key of the dashboard alone.
    pub dashboard_key: Option<String>,
    /// Room allow-list.
    pub rooms: RoomPolicy,
    /// Redis URLs (empty: single node).
    pub redis: Vec<String>,
    /// TLS certificate and key (`None`: plain TCP).
    pub tls: Option<TlsConfig>,
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
    #[error(transparent)]
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
    #[error(transparent)]
    Engine(#[from] ConfigError),
    /// Only one of the TLS certificate and key was given.
    #[error(
        "{given} is set but {missing} is missing: TLS needs both the certificate chain and its private key (or neither, for plain TCP)"
    )]
    TlsIncomplete {
        /// The setting that was given.
        given: &'static str,
        /// The setting to add.
        missing: &'static str,
    },
}

impl ServeArgs {
    /// Merges flags/env with the file and defaults, and validates the result.
    pub fn resolve(self) -> Result<ServeConfig, CliError> {
        let file = match &self.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let engine = self.engine_config(&file);
        engine.validate()?;
        let auth = resolve_auth(
            self.jwt_secret.clone().or(file.jwt_secret.clone()),
            self.jwt_public_key.clone().or(file.jwt_public_key.clone()),
            self.dev || file.dev.unwrap_or(false),
            self.jwt_alg.clone().or(file.jwt_alg.clone()),
        )?;
        let allow_rooms = list_or(self.allow_rooms, file.allow_rooms);
        let tls = resolve_tls(
            self.tls_cert.clone().or(file.tls_cert.clone()),
            self.tls_key.clone().or(file.tls_key.clone()),
        )?;
        Ok(ServeConfig {
            tls,
            engine,
            auth,
            api_key: self.api_key.or(file.api_key),
            dashboard_key: self.dashboard_key.or(file.dashboard_key),
            rooms: RoomPolicy::new(&allow_rooms)?,
            redis: list_or(self.redis, file.redis),
        })
    }

    /// The engine settings: each flag (or env) over the file over the default.
    fn engine_config(&self, file: &FileConfig) -> EngineConfig {
        let d = EngineConfig::default();
        let default_rooms =
            (self.default_rooms.clone()).or(file.default_rooms.clone().map(StringOrList::into_vec));
        let limits = self.limits(file, &d);
        EngineConfig {
            listen: pick(self.listen, file.listen, d.listen),
            path: pick(self.path.clone(), file.path.clone(), d.path),
            shards: pick(self.shards, file.shards, d.shards),
            default_rooms: default_rooms.unwrap_or(d.default_rooms),
            allowed_origins: list_or(self.allowed_origins.clone(), file.allowed_origins.clone()),
            auth_timeout: ms(self.auth_timeout_ms, file.auth_timeout_ms, d.auth_timeout),
            heartbeat_interval: ms(
                self.heartbeat_interval_ms,
                file.heartbeat_interval_ms,
                d.heartbeat_interval,
            ),
            heartbeat_timeout: ms(
                self.heartbeat_timeout_ms,
                file.heartbeat_timeout_ms,
                d.heartbeat_timeout,
            ),
            idle_timeout: (self.idle_timeout_s.or(file.idle_timeout_s))
                .map_or(d.idle_timeout, Duration::from_secs),
            close_on_backpressure_limit: self.close_on_backpressure_limit
                || file.close_on_backpressure_limit.unwrap_or(false),
            require_encryption: self.require_encryption || file.require_encryption.unwrap_or(false),
            optional_encryption: self.optional_encryption
                || file.optional_encryption.unwrap_or(false),
            write_coalesce_factor: pick(
                self.write_coalesce_factor,
                file.write_coalesce_factor,
                d.write_coalesce_factor,
            ),
            max_write_delay: ms(
                self.max_write_delay_ms,
                file.max_write_delay_ms,
                d.max_write_delay,
            ),
            dashboard: pick(self.dashboard, file.dashboard, d.dashboard),
            ..limits
        }
    }

    /// The size, rate and count limits: each flag (or env) over the file over `d`'s.
    fn limits(&self, file: &FileConfig, d: &EngineConfig) -> EngineConfig {
        let window = (self.auth_failure_window_s.or(file.auth_failure_window_s))
            .map_or(d.auth_failure_window, Duration::from_secs);
        EngineConfig {
            max_payload_length: pick(
                self.max_payload_length,
                file.max_payload_length,
                d.max_payload_length,
            ),
            backpressure_limit: pick(
                self.backpressure_limit,
                file.backpressure_limit,
                d.backpressure_limit,
            ),
            max_fragments: pick(self.max_fragments, file.max_fragments, d.max_fragments),
            max_buffered_bytes: pick(
                self.max_buffered_bytes,
                file.max_buffered_bytes,
                d.max_buffered_bytes,
            ),
            max_connections: pick(
                self.max_connections,
                file.max_connections,
                d.max_connections,
            ),
            max_connections_per_ip: pick(
                self.max_connections_per_ip,
                file.max_connections_per_ip,
                d.max_connections_per_ip,
            ),
            max_rooms_per_client: pick(
                self.max_rooms_per_client,
                file.max_rooms_per_client,
                d.max_rooms_per_client,
            ),
            client_message_rate: pick(
                self.client_message_rate,
                file.client_message_rate,
                d.client_message_rate,
            ),
            client_message_burst: pick(
                self.client_message_burst,
                file.client_message_burst,
                d.client_message_burst,
            ),
            max_forwarded_per_client: pick(
                self.max_forwarded_per_client,
                file.max_forwarded_per_client,
                d.max_forwarded_per_client,
            ),
            max_auth_failures_per_ip: pick(
                self.max_auth_failures_per_ip,
                file.max_auth_failures_per_ip,
                d.max_auth_failures_per_ip,
            ),
            auth_failure_window: window,
            ..d.clone()
        }
    }
}

/// The flag (or env) when given, else the file's, else `default`.
fn pick<T>(flag: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(file).unwrap_or(default)
}

/// Milliseconds from the flag, else the file, else `default`.
fn ms(flag: Option<u64>, file: Option<u64>, default: Duration) -> Duration {
    flag.or(file).map_or(default, Duration::from_millis)
}

/// The flag's list when given, else the file's, else empty.
fn list_or(flag: Vec<String>, file: Option<StringOrList>) -> Vec<String> {
    match flag.is_empty() {
        true => file.map(StringOrList::into_vec).unwrap_or_default(),
        false => flag,
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

/// Both TLS files, or neither; one alone names the other.
fn resolve_tls(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<TlsConfig>, CliError> {
    const CERT: &str = "the TLS certificate (--tls-cert, SHARDCAST_TLS_CERT, tls_cert)";
    const KEY: &str = "the TLS key (--tls-key, SHARDCAST_TLS_KEY, tls_key)";
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsConfig::new(cert, key))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(CliError::TlsIncomplete {
            given: CERT,
            missing: KEY,
        }),
        (None, Some(_)) => Err(CliError::TlsIncomplete {
            given: KEY,
            missing: CERT,
        }),
    }
}

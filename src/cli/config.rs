//! Stage two of `serve`'s command line: the [`Settings`] (flags > environment > file >
//! defaults, each value with where it came from) validated into the [`ServeConfig`] the
//! server is built from. Every error names the setting as the user wrote it and where
//! (`--shards`, `SHARDCAST_SHARDS=abc`, `shardcast.toml:12: shards = …`) and what to do.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use shardcast::config::ConfigError;
use shardcast::rooms::glob::{PatternError, RoomPolicy};
use shardcast::tls::TlsConfig;
use shardcast::{Endpoints, EngineConfig};

use super::auth::{self, AuthMode};
use super::layers::{FileLayer, Layers, SettingError, Sourced, describe};
use super::settings::Settings;
use super::value::{HostPort, LogFormat};

/// The validated `serve` configuration: the one thing the server is built from.
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
    /// How the Redis subscriber listens.
    pub redis_subscribe: shardcast::redis::SubscribeMode,
    /// TLS certificate and key (`None`: plain TCP).
    pub tls: Option<TlsConfig>,
    /// The log filter (`RUST_LOG` syntax).
    pub log_filter: String,
    /// The log line format.
    pub log_format: LogFormat,
    /// What was accepted but deserves a warning (a setting ignored, and why).
    pub warnings: Vec<String>,
    /// Every setting with its source (for `check-config` and SIGHUP).
    pub settings: Settings,
}

/// A `serve` configuration that cannot work, with what to change.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A value cannot be read (bad text, unknown key, unreadable file).
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// Neither JWT nor dev mode is configured.
    #[error(
        "no authentication configured: set jwt_secret (--jwt-secret, SHARDCAST_JWT_SECRET) for HS256/384/512, or jwt_public_key (--jwt-public-key) with jwt_alg RS256|ES256, or dev (--dev) for the insecure development mode"
    )]
    NoAuth,
    /// Two authentication modes at the same precedence level.
    #[error(
        "two authentication modes at the same level: {first} and {second}; remove one (a flag beats the environment, which beats the file)"
    )]
    ConflictingAuth {
        /// The first, with its source.
        first: String,
        /// The second, with its source.
        second: String,
    },
    /// A JWT setting is wrong.
    #[error("{error} (from {from}){hint}", hint = jwt_hint(error))]
    Jwt {
        /// What is wrong.
        error: shardcast::auth::jwt::JwtConfigError,
        /// The JWT settings with their sources.
        from: String,
    },
    /// The PEM file could not be read.
    #[error(
        "cannot read the JWT public key {path} (from {from}): {error}; check the path and its permissions"
    )]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// The setting with its source.
        from: String,
        /// Why.
        error: std::io::Error,
    },
    /// A room pattern is malformed.
    #[error("invalid allow_rooms pattern (from {from}): {error}")]
    Pattern {
        /// What is wrong.
        error: PatternError,
        /// The setting with its source.
        from: String,
    },
    /// A value is out of range or malformed for the engine.
    #[error("{at}: {problem}")]
    Invalid {
        /// The setting with its value and source.
        at: String,
        /// What is wrong and what it must be.
        problem: String,
    },
    /// The listen address does not resolve.
    #[error(
        "cannot resolve the listen address ({at}): {error}; use an IP address or a host name this machine resolves"
    )]
    Resolve {
        /// The setting with its value and source.
        at: String,
        /// Why.
        error: std::io::Error,
    },
    /// Only one of the TLS certificate and key was given.
    #[error(
        "{given} is set but {missing} is missing: TLS needs both the certificate chain and its private key (or neither, for plain TCP)"
    )]
    TlsIncomplete {
        /// The setting that was given, with its source.
        given: String,
        /// The setting to add.
        missing: &'static str,
    },
}

/// What to do about a JWT setting, when its message does not say it already.
fn jwt_hint(error: &shardcast::auth::jwt::JwtConfigError) -> &'static str {
    match error {
        shardcast::auth::jwt::JwtConfigError::InvalidPublicKey { .. } => {
            "; give the PEM public key (`-----BEGIN PUBLIC KEY-----`) of the jwt_alg type"
        }
        _ => "",
    }
}

/// Reads the file `base`'s flags or environment name (if any) and validates everything.
pub fn load(base: &Layers) -> Result<ServeConfig, CliError> {
    let config = base.get::<Option<PathBuf>>("config", "")?;
    let file = match &config.value {
        Some(path) => Some(FileLayer::load(path, config.source.clone())?),
        None => None,
    };
    ServeConfig::from_settings(Settings::resolve(&base.with_file(file))?)
}

impl ServeConfig {
    /// Validates `settings` into a configuration.
    pub fn from_settings(settings: Settings) -> Result<ServeConfig, CliError> {
        let engine = engine_config(&settings)?;
        let (auth, warnings) = auth::resolve(&settings)?;
        let rooms =
            RoomPolicy::new(&settings.allow_rooms.value).map_err(|error| CliError::Pattern {
                error,
                from: settings.allow_rooms.at(),
            })?;
        Ok(ServeConfig {
            engine,
            auth,
            api_key: settings.api_key.value.clone(),
            dashboard_key: settings.dashboard_key.value.clone(),
            rooms,
            redis: settings.redis.value.clone(),
            redis_subscribe: settings.redis_subscribe.value,
            tls: resolve_tls(&settings)?,
            log_filter: settings.log.value.0.clone(),
            log_format: settings.log_format.value,
            warnings,
            settings,
        })
    }
}

/// The engine settings, validated.
fn engine_config(s: &Settings) -> Result<EngineConfig, CliError> {
    let config = EngineConfig {
        listen: resolve_listen(&s.listen)?,
        path: s.path.value.clone(),
        shards: s.shards.value,
        default_rooms: s.default_rooms.value.clone(),
        allowed_origins: s.allowed_origins.value.clone(),
        close_on_backpressure_limit: s.close_on_backpressure_limit.value,
        require_encryption: s.require_encryption.value,
        optional_encryption: s.optional_encryption.value,
        write_coalesce_factor: s.write_coalesce_factor.value,
        dashboard: s.dashboard.value,
        endpoints: Endpoints::from_names(s.endpoints.value.iter().map(String::as_str))
            .map_err(|e| engine_error(s, &e))?,
        history_rooms: s.history_rooms.value.clone(),
        history_size: s.history_size.value,
        history_max_bytes: s.history_max_bytes.value,
        presence_rooms: s.presence_rooms.value.clone(),
        ..limits(s, timing(s))
    };
    config.validate().map_err(|e| engine_error(s, &e))?;
    Ok(config)
}

/// The durations, over the defaults.
fn timing(s: &Settings) -> EngineConfig {
    let ms = Duration::from_millis;
    EngineConfig {
        auth_timeout: ms(s.auth_timeout_ms.value),
        heartbeat_interval: ms(s.heartbeat_interval_ms.value),
        heartbeat_timeout: ms(s.heartbeat_timeout_ms.value),
        idle_timeout: Duration::from_secs(s.idle_timeout_s.value),
        max_write_delay: ms(s.max_write_delay_ms.value),
        auth_failure_window: Duration::from_secs(s.auth_failure_window_s.value),
        history_ttl: Duration::from_secs(s.history_ttl_s.value),
        presence_ttl: Duration::from_secs(s.presence_ttl_s.value),
        ..EngineConfig::default()
    }
}

/// The size, rate and count limits, over `base`.
fn limits(s: &Settings, base: EngineConfig) -> EngineConfig {
    EngineConfig {
        max_payload_length: s.max_payload_length.value,
        compression: s.compression.value,
        compression_min_size: s.compression_min_size.value,
        compression_level: s.compression_level.value,
        backpressure_limit: s.backpressure_limit.value,
        max_fragments: s.max_fragments.value,
        max_buffered_bytes: s.max_buffered_bytes.value,
        max_connections: s.max_connections.value,
        max_connections_per_ip: s.max_connections_per_ip.value,
        max_rooms_per_client: s.max_rooms_per_client.value,
        client_message_rate: s.client_message_rate.value,
        client_message_burst: s.client_message_burst.value,
        max_forwarded_per_client: s.max_forwarded_per_client.value,
        max_auth_failures_per_ip: s.max_auth_failures_per_ip.value,
        ..base
    }
}

/// `err` with the setting it concerns, as the user wrote it.
fn engine_error(s: &Settings, err: &ConfigError) -> CliError {
    let key = match err {
        ConfigError::BadPath(_) => "path",
        ConfigError::Zero(field) => setting_of_field(field),
        ConfigError::BadDefaultRoom(_) => "default_rooms",
        ConfigError::BadOriginPattern(_) | ConfigError::OriginPlaceholder(_) => "allowed_origins",
        ConfigError::BadDashboardMode(_) => "dashboard",
        ConfigError::UnknownEndpoint(_) => "endpoints",
        ConfigError::CompressionLevel(_) => "compression_level",
        ConfigError::BadRoomPattern { setting, .. } => setting,
    };
    let entry = s.entries().into_iter().find(|e| e.key == key);
    let at = match entry {
        Some(e) => describe(key, &e.source, e.toml.as_deref().unwrap_or("\"\"")),
        None => key.to_owned(),
    };
    let problem = match err {
        ConfigError::Zero(_) => "must be greater than zero".to_owned(),
        other => other.to_string(),
    };
    CliError::Invalid { at, problem }
}

/// The setting behind an [`EngineConfig`] field (durations carry their unit).
fn setting_of_field(field: &str) -> &str {
    match field {
        "auth_timeout" => "auth_timeout_ms",
        "heartbeat_interval" => "heartbeat_interval_ms",
        "heartbeat_timeout" => "heartbeat_timeout_ms",
        "auth_failure_window" => "auth_failure_window_s",
        "history_ttl" => "history_ttl_s",
        "presence_ttl" => "presence_ttl_s",
        other => other,
    }
}

/// The address `listen` names; a host name's first IPv4 address, else its first.
fn resolve_listen(listen: &Sourced<HostPort>) -> Result<SocketAddr, CliError> {
    let error = |error| CliError::Resolve {
        at: listen.at(),
        error,
    };
    let addrs: Vec<SocketAddr> = listen.value.0.to_socket_addrs().map_err(error)?.collect();
    let first = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first());
    first
        .copied()
        .ok_or_else(|| error(std::io::Error::other("the name has no address")))
}

/// Both TLS files, or neither; one alone names the other.
fn resolve_tls(s: &Settings) -> Result<Option<TlsConfig>, CliError> {
    const CERT: &str = "the TLS certificate (--tls-cert, SHARDCAST_TLS_CERT or tls_cert)";
    const KEY: &str = "the TLS key (--tls-key, SHARDCAST_TLS_KEY or tls_key)";
    match (&s.tls_cert.value, &s.tls_key.value) {
        (Some(cert), Some(key)) => Ok(Some(TlsConfig::new(cert.clone(), key.clone()))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(CliError::TlsIncomplete {
            given: s.tls_cert.at(),
            missing: KEY,
        }),
        (None, Some(_)) => Err(CliError::TlsIncomplete {
            given: s.tls_key.at(),
            missing: CERT,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's defaults are the engine's: nothing set but `dev` gives
    /// `EngineConfig::default()`, field for field.
    #[test]
    fn the_settings_defaults_are_the_engine_defaults() {
        let mut layers = Layers::default();
        layers.flags.insert("dev", "true".to_owned());
        let config = ServeConfig::from_settings(Settings::resolve(&layers).unwrap()).unwrap();
        let expected = format!("{:?}", EngineConfig::default());
        assert_eq!(format!("{:?}", config.engine), expected);
        assert!(config.api_key.is_none() && config.redis.is_empty() && config.tls.is_none());
        assert_eq!(
            (config.log_filter.as_str(), config.log_format),
            ("info", LogFormat::Text)
        );
    }
}

//! The binary's logging: `tracing` lines on stderr, as text (ANSI colour only when stderr
//! is a terminal and `NO_COLOR` is unset or empty) or as one JSON object per line, behind
//! a filter that SIGHUP can replace ([`Logging::set_filter`]).
//!
//! Installed once per process, after the configuration is known (`serve`), or with the
//! defaults (`RUST_LOG`, else `info`) for the other subcommands.

use std::io::IsTerminal as _;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use super::value::LogFormat;

/// The installed subscriber's filter, replaceable while running.
pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
}

impl Logging {
    /// Installs the global subscriber; `filter` must parse (settings are validated).
    pub fn install(filter: &str, format: LogFormat) -> Logging {
        let (layer, handle) = reload::Layer::new(parse_or_info(filter));
        let registry = tracing_subscriber::registry().with(layer);
        let stderr = std::io::stderr;
        // A second install (never done by the binary) would fail; nothing to report then.
        let _ = match format {
            LogFormat::Text => registry
                .with(fmt::layer().with_writer(stderr).with_ansi(colour()))
                .try_init(),
            LogFormat::Json => registry
                .with(fmt::layer().json().flatten_event(true).with_writer(stderr))
                .try_init(),
        };
        Logging { filter: handle }
    }

    /// Installs text logging with `RUST_LOG`, else `info` (the subcommands but `serve`).
    pub fn install_default() -> Logging {
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
        Self::install(&filter, LogFormat::Text)
    }

    /// Replaces the filter; the message says why a filter was refused.
    pub fn set_filter(&self, filter: &str) -> Result<(), String> {
        let parsed = EnvFilter::builder()
            .parse(filter)
            .map_err(|e| e.to_string())?;
        self.filter.reload(parsed).map_err(|e| e.to_string())
    }
}

/// `filter`, or `info` if it does not parse.
fn parse_or_info(filter: &str) -> EnvFilter {
    EnvFilter::builder()
        .parse(filter)
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Colour only on a terminal, and never with `NO_COLOR` set to something
/// (<https://no-color.org>).
fn colour() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}

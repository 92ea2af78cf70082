//! SIGHUP: the config file is read again (the flags and the environment stay as given at
//! start) and validated whole; what can change live is applied — the API key, the room
//! allow-list, the log filter — and the TLS certificate and key files are re-read. One
//! log line per change; a setting that needs a restart is named, not applied. A file that
//! does not validate changes nothing and the reason is logged. The server never stops.
//!
//! Runs on the signal thread only; the room policy is shared with the shards through a
//! `RwLock` read once per join request.

use std::sync::{Arc, PoisonError, RwLock};

use shardcast::Engine;
use shardcast::hooks::{JoinRequest, LocalFuture, RoomValidator};
use shardcast::rooms::glob::RoomPolicy;
use shardcast::tls::TlsError;

use super::config::{self, ServeConfig};
use super::layers::Layers;
use super::logging::Logging;
use super::settings::{self, Entry, Meta, Settings};

/// The `--allow-rooms` policy, replaceable while running.
#[derive(Clone)]
pub struct LiveRooms(Arc<RwLock<RoomPolicy>>);

impl LiveRooms {
    /// A policy cell holding `policy`.
    pub fn new(policy: RoomPolicy) -> Self {
        LiveRooms(Arc::new(RwLock::new(policy)))
    }

    fn set(&self, policy: RoomPolicy) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = policy;
    }
}

impl RoomValidator for LiveRooms {
    fn validate(&self, request: JoinRequest) -> LocalFuture<Vec<String>> {
        let policy = self.0.read().unwrap_or_else(PoisonError::into_inner);
        policy.validate(request)
    }
}

/// What SIGHUP needs: the start's flags and environment, the settings in force, and the
/// handles of what changes live.
pub struct Live {
    /// Flags and environment as given at start.
    pub base: Layers,
    /// The settings in force (live ones updated on each reload).
    pub running: Settings,
    /// The room policy the shards use.
    pub rooms: LiveRooms,
    /// The log filter.
    pub logging: Logging,
}

impl Live {
    /// Reloads the file and applies what changed; logs each change, or why nothing did.
    pub fn on_hangup(&mut self, engine: &Engine) {
        match config::load(&self.base) {
            Ok(new) => {
                self.apply(engine, &new);
                reload_tls(engine);
            }
            Err(err) => tracing::error!(
                "SIGHUP: the configuration is refused, nothing changed (fix it and send SIGHUP again): {err}"
            ),
        }
    }

    fn apply(&mut self, engine: &Engine, new: &ServeConfig) {
        let changed = changes(&self.running.entries(), &new.settings.entries());
        if changed.is_empty() {
            tracing::info!("SIGHUP: configuration unchanged");
        }
        for (old, now) in changed {
            self.apply_one(engine, new, &old, &now);
        }
    }

    fn apply_one(&mut self, engine: &Engine, new: &ServeConfig, old: &Entry, now: &Entry) {
        if !settings::meta(now.key).is_some_and(Meta::is_live) {
            tracing::warn!("SIGHUP: {} changed in the file; restart to apply", now.key);
            return;
        }
        match now.key {
            "api_key" => {
                tracing::info!("SIGHUP: api key changed");
                engine.set_api_key(new.api_key.clone());
                self.running.api_key = new.settings.api_key.clone();
            }
            "allow_rooms" => {
                tracing::info!(
                    "SIGHUP: allow_rooms changed: {} -> {}",
                    shown(old),
                    shown(now)
                );
                self.rooms.set(new.rooms.clone());
                self.running.allow_rooms = new.settings.allow_rooms.clone();
            }
            _ => self.set_log(new),
        }
    }

    /// Applies the new filter, then logs the change (seen when the new filter lets
    /// info lines through).
    fn set_log(&mut self, new: &ServeConfig) {
        match self.logging.set_filter(&new.log_filter) {
            Ok(()) => {
                self.running.log = new.settings.log.clone();
                tracing::info!("SIGHUP: log filter changed: {}", new.log_filter);
            }
            Err(why) => tracing::error!("SIGHUP: cannot change the log filter: {why}"),
        }
    }
}

/// The entries whose value differs (a value that only moved in the file is no change).
fn changes(old: &[Entry], new: &[Entry]) -> Vec<(Entry, Entry)> {
    let differs = |(a, b): &(&Entry, &Entry)| a.toml != b.toml;
    let pairs = old.iter().zip(new).filter(differs);
    pairs.map(|(a, b)| (a.clone(), b.clone())).collect()
}

fn shown(entry: &Entry) -> &str {
    entry.toml.as_deref().unwrap_or("(unset)")
}

/// Re-reads the TLS files; one log line says what happened.
fn reload_tls(engine: &Engine) {
    match engine.reload_tls() {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded; new connections use it"),
        Err(TlsError::NotEnabled) => {}
        Err(err) => tracing::error!(
            "SIGHUP: TLS reload failed, still serving the previous certificate: {err}"
        ),
    }
}

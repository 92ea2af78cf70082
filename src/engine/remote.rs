//! The Redis bridge wired into the engine: as the router's [`Remote`] (publishing local
//! messages and inbound client events) and as the bridge's [`EnvelopeSink`] (envelopes
//! from other instances delivered locally, never re-published).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::EngineConfig;
use crate::history::{HistorySettings, Publication, Query, Snapshot, new_epoch};
use crate::presence::PresenceEntry;
use crate::protocol::envelope::write_json_string;
use crate::redis::scripts::{self, LuaScript};
use crate::routing::remote::{PresenceRead, RemoteAnswer, RemoteError};

use crate::metrics::RedisStats;
use crate::protocol::channel::{self, INBOUND};
use crate::protocol::envelope::Envelope;
use crate::protocol::forward::ForwardSlot;
use crate::protocol::{Frame, Target};
use crate::redis::bridge::{EnvelopeSink, Release};
use crate::redis::{LinkState, RedisBridge, RedisConfigError, RedisSettings};
use crate::routing::Handle;
use crate::routing::remote::{Remote, ShutdownFuture};

/// Starts the bridge on `runtime` and wires it to `handle`'s router.
pub(super) fn start(
    settings: RedisSettings,
    config: &EngineConfig,
    handle: &Handle,
    runtime: &tokio::runtime::Handle,
) -> Result<Arc<dyn Remote>, RedisConfigError> {
    let server_id = handle.server_id().as_str().to_owned();
    // The remote keeps no Handle: it would make the router own itself through
    // `Router::remote` and never be freed. The sink's handle is released when the
    // bridge's subscriber task ends at shutdown.
    let sink = Arc::new(EngineSink(handle.clone()));
    let interest = handle.router.interest.clone().unwrap_or_default();
    let bridge =
        RedisBridge::start_with_interest(settings, server_id.clone(), sink, interest, runtime)?;
    let features = &handle.router.features;
    let history = features.history.as_ref().map(|h| h.settings);
    let presence_ttl = features.presence.as_ref().map(|_| config.presence_ttl);
    Ok(Arc::new(EngineRemote {
        bridge,
        server_id,
        history,
        presence_ttl: presence_ttl.unwrap_or_default(),
    }))
}

/// Envelopes from other instances → local delivery.
struct EngineSink(Handle);

impl EnvelopeSink for EngineSink {
    fn deliver(&self, envelope: Envelope) {
        self.0.metrics().redis_received.inc();
        self.0.deliver_remote(envelope);
    }

    fn subscription_window(&self, window: Duration) {
        let micros = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
        self.0.metrics().redis_subscribe_window.record(micros);
    }
}

/// The bridge seen through the router's [`Remote`] trait.
struct EngineRemote {
    bridge: RedisBridge,
    server_id: String,
    /// The history bounds, when rooms keep history.
    history: Option<HistorySettings>,
    /// How long presence entries outlive their node.
    presence_ttl: Duration,
}

impl EngineRemote {
    fn queue(&self, channel: String, payload: Vec<u8>, release: Option<Release>) -> bool {
        let payload = Bytes::from(payload);
        // A refusal is counted by the bridge (`publish_dropped`).
        self.bridge.publish_with(channel, payload, release).is_ok()
    }
}

impl EngineRemote {
    /// Queues a script (counted like a PUBLISH when refused).
    fn script(&self, script: &'static LuaScript, keys: [String; 2], args: Vec<Bytes>) -> bool {
        self.bridge.run_script(script, keys, args).is_ok()
    }

    /// Runs a read script of `room` on the query connection once the room's subscription
    /// is in effect: for a joining member, every message after the read reaches this node
    /// (a room with no local member reads at once).
    fn read_settled(
        &self,
        room: &str,
        script: &'static LuaScript,
        keys: [String; 2],
        args: Vec<Bytes>,
    ) -> impl std::future::Future<Output = Result<redis::Value, RemoteError>> + Send + 'static {
        let settled = self.bridge.settled(&channel::room(room));
        let bridge = self.bridge.clone();
        let room = room.to_owned();
        async move {
            if !settled.await {
                return Err(unsettled(&room));
            }
            let value = bridge.query_script(script, keys, args).await;
            value.map_err(RemoteError::Unavailable)
        }
    }

    /// A presence client's `ws:join` / `ws:leave` envelope (exclude: the client itself).
    fn presence_envelope(&self, room: &str, id: &str, announce: &Frame) -> Bytes {
        let target = Target::room(room);
        Bytes::from(Envelope::write(
            &self.server_id,
            &target,
            announce,
            &[id.to_owned()],
        ))
    }
}

/// Text as a script argument.
fn arg(text: impl Into<Vec<u8>>) -> Bytes {
    Bytes::from(text.into())
}

/// A room whose subscription Redis did not confirm within `probe_timeout`.
fn unsettled(room: &str) -> RemoteError {
    RemoteError::Unavailable(format!(
        "the subscription to room {room} was not confirmed in time"
    ))
}

/// Decodes the history read script's answer `{epoch, top, covered, envelopes}`.
fn snapshot_of(room: &str, value: redis::Value) -> Result<Snapshot, RemoteError> {
    let bad = |what: &str| RemoteError::Unavailable(format!("unexpected history answer: {what}"));
    let redis::Value::Array(items) = value else {
        return Err(bad("not an array"));
    };
    let [epoch, top, covered, envelopes] =
        <[redis::Value; 4]>::try_from(items).map_err(|_| bad("not four items"))?;
    let epoch: String = redis::from_redis_value(epoch).map_err(|_| bad("epoch"))?;
    let top: u64 = redis::from_redis_value(top).map_err(|_| bad("top"))?;
    let covered: i64 = redis::from_redis_value(covered).map_err(|_| bad("covered"))?;
    let envelopes: Vec<Vec<u8>> = redis::from_redis_value(envelopes).map_err(|_| bad("list"))?;
    let mut publications = Vec::with_capacity(envelopes.len());
    for mut raw in envelopes {
        let envelope = Envelope::parse(&mut raw).map_err(|e| bad(&e.to_string()))?;
        let position = envelope
            .position
            .ok_or_else(|| bad("an entry without offset"))?;
        publications.push(Publication {
            offset: position.offset,
            frame: envelope
                .message
                .with_position(room, position.offset, &position.epoch),
        });
    }
    Ok(Snapshot {
        epoch: Arc::from(epoch),
        top,
        publications,
        covered: covered == 1,
    })
}

/// Decodes the presence read script's answer `{expired…, "", current…}`.
fn presence_of(value: redis::Value) -> Result<PresenceRead, RemoteError> {
    let bad = |what: &str| RemoteError::Unavailable(format!("unexpected presence answer: {what}"));
    let items: Vec<Vec<u8>> = redis::from_redis_value(value).map_err(|_| bad("not a list"))?;
    let mut read = PresenceRead::default();
    let mut expired = true;
    for item in items {
        if item.is_empty() {
            expired = false;
            continue;
        }
        let entry: PresenceEntry = serde_json::from_slice(&item).map_err(|_| bad("an entry"))?;
        match expired {
            true => read.expired.push(entry),
            false => read.current.push(entry),
        }
    }
    read.current.sort();
    Ok(read)
}

impl Remote for EngineRemote {
    fn publish(&self, target: &Target, message: &Frame, exclude: &[String]) -> bool {
        let payload = Envelope::write(&self.server_id, target, message, exclude);
        self.queue(target.channel(), payload, None)
    }

    fn publish_positioned(&self, room: &str, message: &Frame, exclude: &[String]) -> bool {
        let Some(history) = self.history else {
            return false;
        };
        let target = Target::room(room);
        let mut head = Envelope::write(&self.server_id, &target, message, exclude);
        head.pop(); // its closing brace: the script appends offset and epoch
        let args = vec![
            arg(history.size.to_string()),
            arg(history.ttl.as_secs().max(1).to_string()),
            arg(new_epoch().as_bytes()),
            arg(target.channel()),
            Bytes::from(head),
        ];
        self.script(&scripts::PUBLISH, scripts::history_keys(room), args)
    }

    fn read_history(&self, room: &str, query: &Query) -> RemoteAnswer<Snapshot> {
        let Some(history) = self.history else {
            return Box::pin(async { Err(RemoteError::Unavailable("no history".into())) });
        };
        let (since_offset, since_epoch) = match &query.since {
            Some(since) => (since.offset.to_string(), since.epoch.clone()),
            None => (String::new(), String::new()),
        };
        let args = vec![
            arg(history.ttl.as_secs().max(1).to_string()),
            arg(new_epoch().as_bytes()),
            arg(since_offset),
            arg(since_epoch),
            arg(query.limit.min(history.size).to_string()),
        ];
        let read = self.read_settled(room, &scripts::READ, scripts::history_keys(room), args);
        let room = room.to_owned();
        Box::pin(async move { snapshot_of(&room, read.await?) })
    }

    fn presence_join(&self, room: &str, entry: &PresenceEntry, announce: &Frame) -> bool {
        let ttl = self.presence_ttl.as_millis();
        let data = announce.data_json().unwrap_or(b"{}").to_vec();
        let args = vec![
            arg(entry.id.as_str()),
            Bytes::from(data),
            arg(ttl.to_string()),
            arg((ttl * 2).to_string()),
            arg(channel::room(room)),
            self.presence_envelope(room, &entry.id, announce),
        ];
        self.script(&scripts::PRESENCE_JOIN, scripts::presence_keys(room), args)
    }

    fn presence_leave(&self, room: &str, id: &str, announce: &Frame) -> bool {
        let args = vec![
            arg(id),
            arg(channel::room(room)),
            self.presence_envelope(room, id, announce),
        ];
        self.script(&scripts::PRESENCE_LEAVE, scripts::presence_keys(room), args)
    }

    fn presence_refresh(&self, room: &str, members: &[(String, Vec<u8>)]) -> bool {
        let ttl = self.presence_ttl.as_millis();
        // A `ws:join` envelope up to its data: the script completes it for a client it
        // has to add back.
        let mut head = b"{\"serverId\":".to_vec();
        write_json_string(&mut head, &self.server_id);
        head.extend_from_slice(b",\"type\":\"room\",\"target\":");
        write_json_string(&mut head, room);
        head.extend_from_slice(b",\"event\":\"ws:join\",\"data\":");
        let mut args = vec![
            arg(ttl.to_string()),
            arg((ttl * 2).to_string()),
            arg(channel::room(room)),
            Bytes::from(head),
        ];
        for (id, data) in members {
            args.push(arg(id.as_str()));
            args.push(Bytes::from(data.clone()));
        }
        self.script(
            &scripts::PRESENCE_REFRESH,
            scripts::presence_keys(room),
            args,
        )
    }

    fn read_presence(&self, room: &str) -> RemoteAnswer<PresenceRead> {
        let mut room_json = Vec::new();
        write_json_string(&mut room_json, room);
        let args = vec![
            arg("0"),
            arg(channel::room(room)),
            arg(self.server_id.as_str()),
            Bytes::from(room_json),
        ];
        let keys = scripts::presence_keys(room);
        let read = self.read_settled(room, &scripts::PRESENCE_READ, keys, args);
        Box::pin(async move { presence_of(read.await?) })
    }

    fn publish_inbound(&self, payload: Vec<u8>, slot: Option<ForwardSlot>) -> bool {
        let release = slot.map(|slot| Box::new(slot) as Release);
        self.queue(INBOUND.to_owned(), payload, release)
    }

    fn is_ready(&self) -> bool {
        self.bridge.is_ready()
    }

    fn stats(&self) -> RedisStats {
        let status = self.bridge.status();
        RedisStats {
            subscriber_up: status.subscriber == LinkState::Up,
            publisher_up: status.publisher == LinkState::Up,
            subscriber_reconnects: status.reconnects,
            publisher_reconnects: status.publisher_reconnects,
            probe_timeouts: status.probe_timeouts,
            malformed: status.malformed,
            queue_depth: status.queued as u64,
            queue_bytes: status.queued_bytes as u64,
            published: status.published,
            publish_dropped: status.publish_dropped,
            subscribe_mode: self.bridge.subscribe_mode().as_str(),
            channels: status.channels as u64,
            patterns: status.patterns as u64,
            subscribed: status.subscribed,
            unsubscribed: status.unsubscribed,
            subscribe_commands: status.subscribe_commands,
            unwanted: status.unwanted,
        }
    }

    fn shutdown(&self) -> ShutdownFuture {
        let bridge = self.bridge.clone();
        Box::pin(async move { bridge.shutdown().await })
    }
}

//! Engine glue: the bridge as the engine's [`Remote`], envelopes from Redis into
//! [`Handle::deliver_from_remote`], and the `shardcast emit` command.
//!
//! The sink runs on the bridge's subscriber task (the engine's control runtime): it turns an
//! envelope into a [`Publication`] and hands it to the broker, which serializes the client
//! frame once and queues it for the shards — cheap and non-blocking, as
//! [`EnvelopeSink::deliver`] requires.

use std::sync::Arc;

use super::{Emitter, EnvelopeSink, INBOUND_CHANNEL, RedisBridge, RedisSettings};
use crate::auth::LocalFuture;
use crate::cli::EmitArgs;
use crate::engine::{Destination, EngineBuilder, Handle, Publication, Remote};
use crate::metrics::Metrics;
use crate::protocol::RawJson;
use crate::protocol::envelope::{Envelope, EnvelopeTarget};

/// Attaches the Redis bridge when URLs are given (one URL: single Redis; several: the nodes
/// of a Redis Cluster). Without URLs the engine runs as a single node.
pub fn attach(builder: EngineBuilder, urls: &[String]) -> EngineBuilder {
    if urls.is_empty() {
        return builder;
    }
    let settings = RedisSettings {
        urls: urls.to_vec(),
        ..RedisSettings::default()
    };
    builder.remote(Box::new(
        move |handle: Handle, runtime: &tokio::runtime::Handle| {
            let server_id = handle.server_id().as_str().to_owned();
            // The remote keeps only the metrics: a Handle here would make the engine state own
            // itself through `EngineShared::remote` and never be freed.
            let metrics = handle.shared.metrics.clone();
            let sink = Arc::new(EngineSink(handle));
            let bridge = RedisBridge::start(settings, server_id, sink, runtime)
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(EngineRemote { bridge, metrics }) as Arc<dyn Remote>)
        },
    ))
}

/// Envelopes from other instances → local delivery (never re-published). The handle it
/// holds is released when the bridge's subscriber task ends at shutdown.
struct EngineSink(Handle);

impl EnvelopeSink for EngineSink {
    fn deliver(&self, envelope: Envelope) {
        let data = match envelope.data.map(RawJson::from_string).transpose() {
            Ok(data) => data,
            Err(e) => {
                // Unreachable in practice: Envelope::parse only yields valid JSON text.
                tracing::warn!("redis: envelope data rejected by the frame encoder: {e}");
                return;
            }
        };
        let destination = match &envelope.target {
            EnvelopeTarget::Client(id) => Destination::Client(id),
            EnvelopeTarget::User(id) => Destination::User(id),
            EnvelopeTarget::Room(room) => Destination::Room(room),
            EnvelopeTarget::Broadcast => Destination::Broadcast,
        };
        self.0.metrics().redis_received.inc();
        self.0.deliver_from_remote(Publication {
            destination,
            event: &envelope.event,
            data: data.as_deref(),
            exclude: &envelope.exclude,
        });
    }
}

/// The bridge seen through the engine's [`Remote`] trait.
struct EngineRemote {
    bridge: RedisBridge,
    metrics: Arc<Metrics>,
}

impl Remote for EngineRemote {
    fn publish_envelope(&self, envelope: &Envelope) -> bool {
        let queued = self.bridge.publish_envelope(envelope).is_ok();
        if !queued {
            self.metrics.redis_publish_dropped.inc();
        }
        queued
    }

    fn publish_inbound(&self, payload: Vec<u8>) {
        if self
            .bridge
            .publish(INBOUND_CHANNEL.to_owned(), payload.into())
            .is_err()
        {
            self.metrics.redis_publish_dropped.inc();
        }
    }

    fn is_ready(&self) -> bool {
        self.bridge.is_ready()
    }

    fn shutdown(&self) -> LocalFuture<()> {
        let bridge = self.bridge.clone();
        Box::pin(async move { bridge.shutdown().await })
    }
}

/// Publishes one envelope for `shardcast emit`; the error text is printed by `main`
/// (exit code non-zero), e.g. "cannot reach Redis at 127.0.0.1:6379: …".
pub fn emit_once(args: EmitArgs) -> Result<(), String> {
    if !args.exclude.is_empty() && (args.client.is_some() || args.user.is_some()) {
        return Err("--exclude applies to --room and --broadcast only".to_owned());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let emitter = Emitter::connect(&args.redis)
            .await
            .map_err(|e| e.to_string())?;
        let data = args.data.as_deref();
        let event = args.event.as_str();
        let sent = if let Some(client) = &args.client {
            emitter.to_client(client, event, data).await
        } else if let Some(user) = &args.user {
            emitter.to_user(user, event, data).await
        } else if let Some(room) = &args.room {
            emitter.to_room(room, event, data, &args.exclude).await
        } else {
            emitter.broadcast(event, data, &args.exclude).await
        };
        emitter.shutdown().await;
        sent.map_err(|e| e.to_string())
    })
}

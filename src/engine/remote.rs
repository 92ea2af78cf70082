//! The Redis bridge wired into the engine: as the router's [`Remote`] (publishing local
//! messages and inbound client events) and as the bridge's [`EnvelopeSink`] (envelopes
//! from other instances delivered locally, never re-published).

use std::sync::Arc;

use bytes::Bytes;

use crate::metrics::Metrics;
use crate::protocol::channel::INBOUND;
use crate::protocol::envelope::Envelope;
use crate::protocol::forward::ForwardSlot;
use crate::protocol::{Frame, Target};
use crate::redis::bridge::{EnvelopeSink, Release};
use crate::redis::{RedisBridge, RedisConfigError, RedisSettings};
use crate::routing::Handle;
use crate::routing::remote::{Remote, RemoteLink, RemoteStatus, ShutdownFuture};

/// Starts the bridge on `runtime` and wires it to `handle`'s router.
pub(super) fn start(
    settings: RedisSettings,
    handle: &Handle,
    runtime: &tokio::runtime::Handle,
) -> Result<Arc<dyn Remote>, RedisConfigError> {
    let server_id = handle.server_id().as_str().to_owned();
    // The remote keeps only the metrics: a Handle here would make the router own itself
    // through `Router::remote` and never be freed. The sink's handle is released when the
    // bridge's subscriber task ends at shutdown.
    let metrics = handle.router.metrics.clone();
    let sink = Arc::new(EngineSink(handle.clone()));
    let bridge = RedisBridge::start(settings, server_id.clone(), sink, runtime)?;
    Ok(Arc::new(EngineRemote {
        bridge,
        server_id,
        metrics,
    }))
}

/// Envelopes from other instances → local delivery.
struct EngineSink(Handle);

impl EnvelopeSink for EngineSink {
    fn deliver(&self, envelope: Envelope) {
        self.0.metrics().redis_received.inc();
        self.0.deliver_remote(envelope);
    }
}

/// The bridge seen through the router's [`Remote`] trait.
struct EngineRemote {
    bridge: RedisBridge,
    server_id: String,
    metrics: Arc<Metrics>,
}

impl EngineRemote {
    fn queue(&self, channel: String, payload: Vec<u8>, release: Option<Release>) -> bool {
        let payload = Bytes::from(payload);
        let queued = self.bridge.publish_with(channel, payload, release).is_ok();
        if !queued {
            self.metrics.redis_publish_dropped.inc();
        }
        queued
    }
}

impl Remote for EngineRemote {
    fn publish(&self, target: &Target, message: &Frame, exclude: &[String]) -> bool {
        let payload = Envelope::write(&self.server_id, target, message, exclude);
        self.queue(target.channel(), payload, None)
    }

    fn publish_inbound(&self, payload: Vec<u8>, slot: Option<ForwardSlot>) -> bool {
        let release = slot.map(|slot| Box::new(slot) as Release);
        self.queue(INBOUND.to_owned(), payload, release)
    }

    fn is_ready(&self) -> bool {
        self.bridge.is_ready()
    }

    fn status(&self) -> RemoteStatus {
        let status = self.bridge.status();
        let link = |name, state: crate::redis::link::LinkState| RemoteLink {
            name,
            state: state.as_str(),
        };
        RemoteStatus {
            links: vec![
                link("subscriber", status.subscriber),
                link("publisher", status.publisher),
            ],
            queued: status.queued,
            reconnects: status.reconnects + status.publisher_reconnects,
            probe_timeouts: status.probe_timeouts,
        }
    }

    fn shutdown(&self) -> ShutdownFuture {
        let bridge = self.bridge.clone();
        Box::pin(async move { bridge.shutdown().await })
    }
}

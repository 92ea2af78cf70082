//! The control thread: one small runtime that runs the remote (Redis) bridge and performs
//! the ordered shutdown. (Shards accept and serve HTTP themselves.)
//!
//! Shutdown order: every shard stops accepting, closes its clients with 1001 and drains
//! → the remote disconnects → the thread ends (the shards end on their own).

use std::sync::Arc;
use std::thread::JoinHandle;

use super::builder::{EngineError, RemoteFactory};
use super::{EngineShared, Handle};
use crate::shard::inbox::Command;

pub(crate) fn spawn(
    shared: Arc<EngineShared>,
    remote: Option<RemoteFactory>,
) -> Result<JoinHandle<()>, EngineError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError::Runtime(e.to_string()))?;
    if let Some(factory) = remote {
        let handle = Handle {
            shared: shared.clone(),
        };
        let bridge = factory(handle, runtime.handle()).map_err(EngineError::Remote)?;
        let _ = shared.remote.set(bridge);
    }
    std::thread::Builder::new()
        .name("shardcast-control".into())
        .spawn(move || {
            runtime.block_on(async move {
                shared.shutdown_requested.notified().await;
                stop_shards(&shared);
                if let Some(remote) = shared.remote.get() {
                    remote.shutdown().await;
                }
            });
        })
        .map_err(|e| EngineError::Runtime(e.to_string()))
}

/// Asks every shard to close its clients and stop; waits for room in full inboxes.
fn stop_shards(shared: &EngineShared) {
    for shard in shared.broker.shards() {
        let mut command = Command::Shutdown;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Err(back) = shard.send(command) {
            if std::time::Instant::now() > deadline {
                tracing::error!(shard = %shard.shard(), "shard inbox stayed full during shutdown");
                break;
            }
            command = back;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

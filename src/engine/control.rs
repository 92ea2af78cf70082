//! The control thread: one small runtime that runs the Redis bridge and the upkeep of
//! history and presence ([`super::upkeep`]), and performs the ordered shutdown. (Shards accept and serve HTTP themselves.)
//!
//! Shutdown order: every shard stops accepting, closes its clients with 1001 and drains
//! → the remote disconnects → the thread ends (the shards end on their own).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::EngineError;
use crate::config::EngineConfig;
use crate::redis::RedisSettings;
use crate::routing::command::Command;
use crate::routing::{Handle, Router};

/// How long shutdown waits for room in a full shard inbox.
const SHUTDOWN_SEND: Duration = Duration::from_secs(5);

/// Builds the control runtime, wires the remote into the router (before any connection
/// is accepted), and starts the thread that waits for shutdown.
pub(super) fn spawn(
    router: Arc<Router>,
    redis: Option<RedisSettings>,
    config: &EngineConfig,
) -> Result<JoinHandle<()>, EngineError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError::Runtime(e.to_string()))?;
    if let Some(settings) = redis {
        let handle = Handle::new(router.clone());
        let remote = super::remote::start(settings, config, &handle, runtime.handle())?;
        let _ = router.remote.set(remote);
    }
    super::upkeep::start(&router, config.presence_ttl, runtime.handle());
    std::thread::Builder::new()
        .name("shardcast-control".into())
        .spawn(move || runtime.block_on(shut_down_when_asked(router)))
        .map_err(|e| EngineError::Runtime(e.to_string()))
}

/// Waits for shutdown, stops the shards, then the remote.
async fn shut_down_when_asked(router: Arc<Router>) {
    router.shutdown_requested().await;
    stop_shards(&router);
    if let Some(remote) = router.remote.get() {
        remote.shutdown().await;
    }
}

/// Asks every shard to close its clients and stop; waits (bounded) for room in full inboxes.
fn stop_shards(router: &Router) {
    for shard in router.broker.shards() {
        let mut command = Command::Shutdown;
        let deadline = Instant::now() + SHUTDOWN_SEND;
        while let Err(back) = shard.send(command) {
            if Instant::now() > deadline {
                tracing::error!(shard = %shard.shard(), "shard inbox stayed full during shutdown");
                break;
            }
            command = back;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

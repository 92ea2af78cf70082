//! Starting a shard: its named OS thread, pinned to a core when asked (best effort, a
//! warning when the OS refuses), its current-thread runtime and local task set.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use tokio::net::TcpListener;
use tokio::task::LocalSet;

use super::handoff::HandoffReceiver;
use super::state::{Shard, ShardContext};
use crate::metrics::ShardMetrics;
use crate::routing::inbox::ShardInbox;
use crate::routing::placement::ShardId;

/// Everything one shard starts with.
pub(crate) struct ShardStart {
    /// Which shard.
    pub id: ShardId,
    /// Its inbox (created with every other before any shard runs).
    pub inbox: ShardInbox,
    /// Its own handle of the one listening socket (`None`: the engine has no listener).
    pub listener: Option<std::net::TcpListener>,
    /// Its handoff queue (sockets upgraded by an application's router).
    pub handoffs: super::handoff::HandoffReceiver,
    /// What every shard shares.
    pub ctx: Arc<ShardContext>,
    /// Its counters.
    pub metrics: Arc<ShardMetrics>,
    /// Receives `Ok` once the shard runs, or why it could not start.
    pub ready: Sender<Result<(), String>>,
}

/// Spawns the shard's thread, `shardcast-shard-{id}`.
pub(crate) fn spawn(start: ShardStart) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("shardcast-shard-{}", start.id))
        .spawn(move || run_thread(start))
}

/// The shard thread: pin, build the runtime, run the shard until it stops.
fn run_thread(start: ShardStart) {
    let id = start.id;
    if start.ctx.config.pin_shards && !pin_current_thread(id) {
        tracing::warn!(shard = %id, "could not pin shard thread to a core");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = start
                .ready
                .send(Err(format!("shard {id}: cannot start runtime: {err}")));
            return;
        }
    };
    let shard = Shard::new(id, start.ctx, start.metrics);
    let serving = serve(
        shard,
        start.inbox,
        (start.listener, start.handoffs),
        start.ready,
    );
    LocalSet::new().block_on(&runtime, serving);
}

/// Registers the listener (if any) with this runtime, reports ready, and runs the shard.
async fn serve(
    shard: Rc<Shard>,
    inbox: ShardInbox,
    (listener, handoffs): (Option<std::net::TcpListener>, HandoffReceiver),
    ready: Sender<Result<(), String>>,
) {
    let listener = match listener.map(TcpListener::from_std).transpose() {
        Ok(listener) => listener,
        Err(err) => {
            let _ = ready.send(Err(format!("shard {}: cannot listen: {err}", shard.id)));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    super::run(shard, inbox, listener, handoffs).await;
}

/// Pins the calling thread to the core for `shard` (round-robin over available cores).
/// Best effort: returns false, and the caller logs, when the OS refuses.
fn pin_current_thread(shard: ShardId) -> bool {
    let Some(cores) = core_affinity::get_core_ids() else {
        return false;
    };
    if cores.is_empty() {
        return false;
    }
    core_affinity::set_for_current(cores[shard.index() % cores.len()])
}

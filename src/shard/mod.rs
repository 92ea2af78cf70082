//! Shards: one OS thread per core, each with its own single-threaded tokio runtime, its
//! connections and its local indexes.
//!
//! - [`placement`]: which shard owns a client id; pinning.
//! - [`inbox`]: the commands a shard receives and the queue that carries them.
//! - [`index`]: client, user and room indexes (shard-local, no locks).
//! - [`state`]: the delivery walk, the flush, and connection bookkeeping.
//!
//! Lifecycle: every shard and its inbox are created before the listener accepts; a
//! shard runs until it receives [`inbox::Command::Shutdown`], then closes every client
//! with 1001, waits (bounded) for them to finish, and ends its thread.

pub mod inbox;
pub mod index;
pub(crate) mod pacing;
pub mod placement;
pub(crate) mod state;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::LocalSet;

use crate::engine::EngineShared;
use crate::metrics::ShardMetrics;
use inbox::{Command, ShardInbox};
use placement::ShardId;
use state::Shard;

/// Commands handled before the shard flushes and lets connection tasks run.
const BATCH: usize = 256;
/// How long shutdown waits for clients to receive their close frame.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Spawns shard `id`'s thread, accepting on its own handle of the shared `listener`.
/// `ready` receives `Ok` once its runtime runs.
pub(crate) fn spawn(
    id: ShardId,
    inbox: ShardInbox,
    listener: std::net::TcpListener,
    engine: Arc<EngineShared>,
    metrics: Arc<ShardMetrics>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("shardcast-shard-{id}"))
        .spawn(move || {
            if engine.config.pin_shards && !placement::pin_current_thread(id) {
                tracing::warn!(shard = %id, "could not pin shard thread to a core");
            }
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(err) => {
                    let _ = ready.send(Err(format!("shard {id}: cannot start runtime: {err}")));
                    return;
                }
            };
            let shard = Shard::new(id, engine, metrics);
            let local = LocalSet::new();
            local.block_on(&runtime, async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(err) => {
                        let _ = ready.send(Err(format!("shard {id}: cannot listen: {err}")));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                run(shard, inbox, listener).await;
            });
        })
}

async fn run(shard: Rc<Shard>, inbox: ShardInbox, listener: tokio::net::TcpListener) {
    let acceptor =
        tokio::task::spawn_local(crate::http::server::accept_loop(listener, shard.clone()));
    let sweeps = [
        tokio::task::spawn_local(heartbeat_sweeps(shard.clone())),
        tokio::task::spawn_local(idle_sweeps(shard.clone())),
        tokio::task::spawn_local(encryptor(shard.clone())),
        tokio::task::spawn_local(flusher(shard.clone())),
    ];
    drain_inbox(&shard, &inbox).await;
    // Stop accepting first, then close everyone.
    acceptor.abort();
    for sweep in sweeps {
        sweep.abort();
    }
    shard.close_all();
    shard.flush_all();
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !shard.state.borrow().conns.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Handles commands until `Shutdown` (or every sender is gone).
async fn drain_inbox(shard: &Rc<Shard>, inbox: &ShardInbox) {
    loop {
        inbox.wait().await;
        loop {
            let mut handled = 0;
            while handled < BATCH {
                match inbox.try_recv() {
                    Ok(Command::Shutdown) | Err(true) => return,
                    Ok(command) => handle(shard, command),
                    Err(false) => break,
                }
                handled += 1;
            }
            shard.flush_dirty();
            if handled < BATCH {
                break;
            }
            // A long backlog: let connection tasks (reads, blocked writes) run in between.
            tokio::task::yield_now().await;
        }
    }
}

fn handle(shard: &Rc<Shard>, command: Command) {
    match command {
        Command::Deliver(delivery) => shard.deliver(&delivery),
        Command::Resolve(id, event, frame) => resolve(shard, id, &event, frame),
        Command::Join(id, rooms) => {
            if let Some(slot) = shard.slot_of(&id) {
                let rooms: Vec<String> = rooms
                    .into_iter()
                    .filter(|r| crate::rooms::is_valid_room_name(r))
                    .collect();
                shard.join_rooms(slot, &rooms);
            }
        }
        Command::Leave(id, rooms) => {
            if let Some(slot) = shard.slot_of(&id) {
                shard.leave_rooms(slot, &rooms);
            }
        }
        Command::Disconnect(id) => {
            if let Some(slot) = shard.slot_of(&id) {
                shard.close(slot, crate::protocol::CloseReason::Normal);
            }
        }
        Command::EnableEncryption(id) => {
            if let Some(slot) = shard.slot_of(&id) {
                shard.enable_encryption(slot);
            }
        }
        Command::Query(query) => shard.answer(query),
        Command::Shutdown => {}
    }
}

/// `send(destination)` where the destination is a client id this shard owns.
fn resolve(shard: &Rc<Shard>, id: crate::id::ClientId, event: &str, frame: crate::protocol::Frame) {
    use crate::engine::Destination;
    let name = id.to_string();
    if shard.slot_of(&id).is_none() {
        shard
            .handle
            .dispatch(Destination::Room(&name), event, frame, &[]);
        return;
    }
    shard
        .handle
        .publish_envelope(&Destination::Client(&name), event, &frame, &[]);
    shard.deliver(&inbox::Delivery {
        target: inbox::Target::Client(id),
        frame,
        exclude: None,
    });
}

async fn heartbeat_sweeps(shard: Rc<Shard>) {
    let period = shard.engine.config.heartbeat_interval;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        shard.sweep_heartbeats(std::time::Instant::now());
        shard.flush_dirty();
    }
}

async fn idle_sweeps(shard: Rc<Shard>) {
    let idle = shard.engine.config.idle_timeout;
    if idle.is_zero() {
        return;
    }
    let period = (idle / 4).max(Duration::from_millis(50));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        shard.sweep_idle(std::time::Instant::now());
        shard.flush_dirty();
    }
}

/// Seals messages for encrypted clients, `encrypted_batch_limit` at a time, yielding in
/// between so plain deliveries and reads are never held up behind encryption.
async fn encryptor(shard: Rc<Shard>) {
    loop {
        shard.encrypt_wake.notified().await;
        while shard.encrypt_batch() {
            shard.flush_dirty();
            tokio::task::yield_now().await;
        }
        shard.flush_dirty();
    }
}

/// Writes the sockets that write pacing held back, when their next write time comes.
async fn flusher(shard: Rc<Shard>) {
    loop {
        shard.flush_wake.notified().await;
        while let Some(at) = shard.next_write_at() {
            if std::time::Instant::now() < at {
                tokio::time::sleep_until(at.into()).await;
            }
            shard.flush_dirty();
            // A flush writes for a bounded slice: let the inbox and reads in between.
            tokio::task::yield_now().await;
        }
    }
}

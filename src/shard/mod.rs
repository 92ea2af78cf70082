//! Shards: one OS thread per core, each with its own single-threaded tokio runtime, its
//! connections and its local indexes. A shard accepts connections on the shared listening
//! socket, runs each connection's task, and delivers what the routing layer hands it.
//!
//! - [`thread`]: starting a shard's thread and runtime; pinning it to a core.
//! - [`accept`]: the acceptor: TCP accept, HTTP (through [`crate::http`]), adoption.
//! - [`handoff`]: sockets an application's router upgraded, adopted like accepted ones.
//! - [`task`]: the task that drives one connection's socket ([`socket`]: plain or TLS).
//! - [`state`] and [`table`]: the shard's connection table and indexes ([`index`]).
//! - [`deliver`]: the delivery walk; [`encrypt`]: the encrypted path; [`compress`]:
//!   which bytes a message is on a connection's wire (plain or compressed once).
//! - [`flush`] and [`pacing`]: writing dirty sockets, paced under heavy fan-out.
//! - [`session`]: authentication results, joins, leaves, removal, hooks.
//! - [`sweep`]: heartbeat and idle timeouts.
//! - [`commands`]: what each inbox command does.
//!
//! # Contract
//!
//! Every shard and its inbox are created before any shard accepts. A shard's state is
//! `!Send` and touched only by its thread: deliveries, commands and reads run one at a
//! time, so the per-message path takes no lock. Commands are drained in batches of
//! [`BATCH`], each batch followed by one flush, yielding to connection tasks in between.
//! A shard runs until it receives [`Command::Shutdown`]: it stops accepting, closes every
//! client with 1001, flushes, waits (at most [`SHUTDOWN_GRACE`]) for the clients to
//! finish, and ends its thread.

pub(crate) mod accept;
pub(crate) mod commands;
pub(crate) mod compress;
pub(crate) mod deliver;
pub(crate) mod encrypt;
pub(crate) mod flush;
pub(crate) mod handoff;
pub(crate) mod index;
pub(crate) mod pacing;
pub(crate) mod recall;
pub(crate) mod recovery;
pub(crate) mod session;
pub(crate) mod socket;
pub(crate) mod state;
pub(crate) mod sweep;
pub(crate) mod table;
pub(crate) mod task;
pub(crate) mod thread;

use std::rc::Rc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::routing::command::Command;
use crate::routing::inbox::ShardInbox;
use state::Shard;
pub(crate) use state::ShardContext;
pub(crate) use thread::{ShardStart, spawn};

/// Commands handled before the shard flushes and lets connection tasks run.
const BATCH: usize = 256;
/// How long shutdown waits for clients to receive their close frame.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Runs a shard until shutdown: its acceptor (when the engine listens), its handoff
/// queue, sweeps, encryptor and flusher as local tasks, and the inbox on this task.
async fn run(
    shard: Rc<Shard>,
    inbox: ShardInbox,
    listener: Option<tokio::net::TcpListener>,
    handoffs: handoff::HandoffReceiver,
) {
    let acceptor = listener
        .map(|listener| tokio::task::spawn_local(accept::accept_loop(listener, shard.clone())));
    let adopter = tokio::task::spawn_local(handoff::adopt_loop(handoffs, shard.clone()));
    let workers = [
        tokio::task::spawn_local(sweep::heartbeat_sweeps(shard.clone())),
        tokio::task::spawn_local(sweep::idle_sweeps(shard.clone())),
        tokio::task::spawn_local(encrypt::encryptor(shard.clone())),
        tokio::task::spawn_local(flush::flusher(shard.clone())),
    ];
    drain_inbox(&shard, &inbox).await;
    // Stop accepting first, then close everyone.
    acceptor.iter().for_each(JoinHandle::abort);
    adopter.abort();
    workers.iter().for_each(JoinHandle::abort);
    shard.close_all();
    shard.flush_all();
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !shard.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Handles commands until `Shutdown` (or every sender is gone).
async fn drain_inbox(shard: &Rc<Shard>, inbox: &ShardInbox) {
    loop {
        inbox.wait().await;
        loop {
            let Some(handled) = drain_batch(shard, inbox) else {
                return;
            };
            shard.flush_dirty();
            if handled < BATCH {
                break;
            }
            // A long backlog: let connection tasks (reads, blocked writes) run in between.
            tokio::task::yield_now().await;
        }
    }
}

/// Handles up to [`BATCH`] queued commands; `None` once told to stop.
fn drain_batch(shard: &Rc<Shard>, inbox: &ShardInbox) -> Option<usize> {
    for handled in 0..BATCH {
        match inbox.try_recv() {
            Ok(Command::Shutdown) | Err(true) => return None,
            Ok(command) => commands::handle(shard, command),
            Err(false) => return Some(handled),
        }
    }
    Some(BATCH)
}

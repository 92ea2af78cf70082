//! Periodic upkeep of history and presence, on the control thread: removing rooms whose
//! in-memory history expired, and (with Redis) renewing this node's presence entries and
//! reaping those of nodes that died.
//!
//! # Contract
//!
//! Each task runs until the control thread's runtime ends (after the ordered shutdown).
//! The presence task renews this node's entries every third of `presence_ttl`, so they
//! expire only when the node stops; it then reads each presence room this node has
//! members in, which removes entries whose node stopped renewing and announces their
//! `ws:leave` (to the other nodes from Redis, to this node's members here). A dead
//! node's clients therefore leave within `presence_ttl` plus a third of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::routing::{Handle, Router};

/// Members renewed per script (a room with many members on one node is renewed in
/// several, so no script blocks Redis long or passes the publish queue's byte bound).
const REFRESH_CHUNK: usize = 1000;

/// Presence rooms read (and reaped) at once by one node's upkeep.
const REAP_CONCURRENCY: usize = 32;

/// The longest pause between two history sweeps.
const MAX_SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Starts the tasks `router`'s features need on `runtime`.
pub(super) fn start(
    router: &Arc<Router>,
    presence_ttl: Duration,
    runtime: &tokio::runtime::Handle,
) {
    let features = &router.features;
    if let Some(history) = &features.history
        && history.memory.is_some()
    {
        let every = (history.settings.ttl / 2).clamp(Duration::from_millis(100), MAX_SWEEP_EVERY);
        runtime.spawn(sweep_history(router.clone(), every));
    }
    if let Some(presence) = &features.presence
        && presence.in_redis
    {
        let every = (presence_ttl / 3).max(Duration::from_millis(100));
        runtime.spawn(keep_presence(Handle::new(router.clone()), every));
    }
}

/// Removes expired rooms from the in-memory history.
async fn sweep_history(router: Arc<Router>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Some(memory) = router
            .features
            .history
            .as_ref()
            .and_then(|h| h.memory.as_ref())
        {
            let removed = memory.sweep(Instant::now());
            if removed > 0 {
                tracing::debug!(removed, "history: expired rooms removed");
            }
        }
    }
}

/// Renews this node's presence entries, then reaps every room it has members in.
async fn keep_presence(handle: Handle, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let router = &handle.router;
        let (Some(presence), Some(remote)) = (&router.features.presence, router.remote.get())
        else {
            return;
        };
        let mut rooms = Vec::new();
        presence.local.for_each_room(|room, members| {
            let members: Vec<(String, Vec<u8>)> = members
                .into_iter()
                .map(|entry| {
                    let data = crate::protocol::outbound::presence_data(room, &entry);
                    (entry.id, data)
                })
                .collect();
            for chunk in members.chunks(REFRESH_CHUNK) {
                remote.presence_refresh(room, chunk);
            }
            rooms.push(room.clone());
        });
        // Rooms are read a few at a time, so thousands of them still fit in a period.
        futures_util::stream::iter(rooms)
            .for_each_concurrent(REAP_CONCURRENCY, |room| {
                let handle = &handle;
                async move {
                    if let Err(error) = handle.presence(&room).await {
                        tracing::debug!(%room, "presence: reaping expired entries failed ({error})");
                    }
                }
            })
            .await;
    }
}

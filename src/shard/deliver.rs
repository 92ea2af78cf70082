//! The delivery walk: queue one shared frame on every local recipient of a target.
//!
//! The walk pushes a refcount of the frame into each recipient's queue (its compressed
//! form, made once, for a client that negotiated permessage-deflate: [`super::compress`])
//! and puts the connection on the dirty list once; the flush ([`super::flush`]) then writes each dirty
//! socket once with a vectored write. Encrypted recipients get a job on the encrypt queue
//! instead ([`super::encrypt`]). The walk never waits for anyone: a socket that refuses
//! bytes is handed to its task.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use slab::Slab;

use super::encrypt::EncryptJob;
use super::index::{LocalIndex, Slot};
use super::pacing::DirtyList;
use super::recovery::intercept;
use super::state::{Shard, ShardState};
use super::table::Entry;
use crate::conn::Offer;
use crate::id::ClientId;
use crate::protocol::{Frame, Target};
use crate::routing::command::Delivery;

/// Queues a delivery on one recipient; what one call does to the shard's state.
struct Walk<'s> {
    shard: &'s Shard,
    dirty: &'s mut DirtyList,
    encrypt_queue: &'s mut std::collections::VecDeque<EncryptJob>,
    frame: &'s Bytes,
    message: &'s Frame,
    /// The broker's stamp of the message (delivery latency starts there).
    stamp: u64,
    /// Recipients that got the compressed form.
    compressed_count: u64,
}

impl Walk<'_> {
    /// Queues the frame on `entry`; returns 1 when it was queued (a delivery), else 0.
    #[inline]
    fn queue(&mut self, slot: Slot, entry: &mut Entry) -> u64 {
        if !entry.conn.is_authenticated() {
            return 0;
        }
        if entry.conn.encryption().is_some() {
            return self.queue_encrypted(slot, entry);
        }
        let compressed = self.shard.compressed_for(&entry.conn, self.message);
        let is_compressed = compressed.is_some();
        let bytes = compressed.unwrap_or_else(|| self.frame.clone());
        match entry.conn.offer(bytes, &self.shard.backpressure) {
            Offer::Queued { flush_now } => {
                self.compressed_count += u64::from(is_compressed);
                entry.delivered(self.stamp);
                entry.mark_dirty(slot, self.dirty);
                if flush_now && !entry.write_blocked() {
                    entry.flush(&self.shard.metrics);
                }
                1
            }
            Offer::Closed => {
                entry.closed(slot, self.dirty);
                self.shard.metrics.slow_consumers_closed.inc();
                0
            }
            Offer::Dropped => {
                self.shard.metrics.backpressure_dropped.inc();
                0
            }
        }
    }

    /// Puts a sealing job on the encrypt queue, within the backpressure limit.
    fn queue_encrypted(&mut self, slot: Slot, entry: &mut Entry) -> u64 {
        let len = self.message.payload_len();
        if !entry
            .conn
            .reserve_sealed(len, self.shard.backpressure.limit)
        {
            self.shard.metrics.backpressure_dropped.inc();
            return 0;
        }
        self.encrypt_queue.push_back(EncryptJob {
            slot,
            client_id: entry.conn.id(),
            payload: self.message.payload(),
            stamp: self.stamp,
        });
        1
    }
}

impl Shard {
    /// Queues `delivery.frame` on every local recipient.
    pub fn deliver(&self, delivery: &Delivery) {
        let mut state = self.state.borrow_mut();
        let ShardState {
            conns,
            index,
            dirty,
            encrypt_queue,
            syncs,
        } = &mut *state;
        let mut walk = Walk {
            shard: self,
            dirty,
            encrypt_queue,
            frame: delivery.frame.bytes(),
            message: &delivery.frame,
            stamp: delivery.stamp,
            compressed_count: 0,
        };
        let excluded = |id: &ClientId| delivery.exclude.as_ref().is_some_and(|e| e.contains(id));
        // Members joining this history room get the message through their guard; every
        // other delivery walks with the exclude list alone.
        let guards = match (&delivery.target, &delivery.position) {
            (Target::Room(room), Some(position)) if !syncs.is_empty() => {
                syncs.take(room).map(|guards| (guards, position))
            }
            _ => None,
        };
        let count = match guards {
            None => walk_target(index, conns, &delivery.target, &excluded, &mut walk),
            Some(((room, room_syncs), position)) => {
                let room_syncs = RefCell::new(room_syncs);
                let held = |id: &ClientId| {
                    excluded(id)
                        || intercept(&mut room_syncs.borrow_mut(), id, position, &delivery.frame)
                };
                let count = walk_target(index, conns, &delivery.target, &held, &mut walk);
                syncs.put_back(room, room_syncs.into_inner());
                count
            }
        };
        self.metrics.deliveries.add(count);
        self.metrics
            .compressed_deliveries
            .add(walk.compressed_count);
        if !walk.encrypt_queue.is_empty() {
            self.encrypt_wake.notify_one();
        }
    }
}

/// Visits every local recipient of `target` not `excluded`; returns the deliveries.
fn walk_target(
    index: &LocalIndex,
    conns: &mut Slab<Entry>,
    target: &Target,
    excluded: &impl Fn(&ClientId) -> bool,
    walk: &mut Walk<'_>,
) -> u64 {
    let mut visit = |slot: Slot| {
        conns
            .get_mut(slot)
            .map_or(0, |entry| walk.queue(slot, entry))
    };
    match target {
        Target::Client(id) => index.client(id).map_or(0, visit),
        Target::User(user) => index.user_sessions(user).iter().map(|&s| visit(s)).sum(),
        Target::Room(room) => walk_room(index, conns, room, excluded, walk),
        Target::Broadcast => conns
            .iter_mut()
            .filter(|(_, entry)| !excluded(&entry.conn.id()))
            .map(|(slot, entry)| walk.queue(slot, entry))
            .sum(),
    }
}

/// Walks a room's members, plus the client whose own id is the room name if it is local
/// and still in its own-id room.
fn walk_room(
    index: &LocalIndex,
    conns: &mut Slab<Entry>,
    room: &str,
    excluded: &impl Fn(&ClientId) -> bool,
    walk: &mut Walk<'_>,
) -> u64 {
    let mut count = 0;
    for slot in index.room_members(room) {
        if let Some(entry) = conns.get_mut(slot)
            && !excluded(&entry.conn.id())
        {
            count += walk.queue(slot, entry);
        }
    }
    if let Some(slot) = own_room_member(index, conns, room, excluded) {
        count += walk.queue(slot, &mut conns[slot]);
    }
    count
}

/// The local client named `room` if it is still in its own-id room and not excluded.
pub(super) fn own_room_member(
    index: &LocalIndex,
    conns: &Slab<Entry>,
    room: &str,
    excluded: &impl Fn(&ClientId) -> bool,
) -> Option<Slot> {
    let id: ClientId = room.parse().ok()?;
    let slot = index.client(&id)?;
    let entry = conns.get(slot)?;
    (!excluded(&id) && entry.conn.membership().in_own_room()).then_some(slot)
}

/// Ignis `send(destination)` where the destination is a client id this shard owns:
/// delivered to it (and published as a client envelope) when it is connected here,
/// otherwise delivered and published as a room of that name.
pub(super) fn resolve(shard: &Rc<Shard>, id: ClientId, frame: Frame) {
    let handle = &shard.ctx.handle;
    if shard.slot_of(&id).is_none() {
        handle.dispatch(Target::room(&id.to_string()), frame, &[]);
        return;
    }
    let target = Target::Client(id);
    handle.publish_remote(&target, &frame, &[]);
    shard.deliver(&Delivery {
        target,
        frame,
        exclude: None,
        stamp: crate::metrics::stamp_now(),
        position: None,
    });
}

//! A shard's state and the operations on it: the delivery walk, the end-of-batch flush,
//! joins and leaves, authentication results, sweeps and removal.
//!
//! Everything here runs on the shard's own thread (`Shard` is `!Send`: it holds `Rc`s and
//! `RefCell`s). A `RefCell` borrow is never held across an `.await`.
//!
//! Delivery: the walk queues the shared frame (a refcount) on each local recipient and
//! puts the connection on the dirty list once; [`Shard::flush_dirty`] then writes each
//! dirty socket once with a vectored write. A socket that refuses bytes is handed to its
//! task, which waits for writability; the walk never waits for anyone.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use slab::Slab;

use super::inbox::{Delivery, Query, Target};
use super::index::{LocalIndex, Slot};
use super::pacing::{Clock, DirtyList, Micros, Pacer};
use super::placement::ShardId;
use crate::auth::Identity;
use crate::conn::Conn;
use crate::conn::encryption::{EncryptJob, Encryption};
use crate::conn::machine::AuthVerdict;
use crate::conn::outbox::{Flush, Push};
use crate::engine::callbacks::{ConnectedClient, DisconnectedClient, run_local};
use crate::engine::{EngineShared, Handle};
use crate::id::ClientId;
use crate::metrics::ShardMetrics;
use crate::protocol::Frame;
use crate::protocol::outbound::{connected_frame, error_frame};
use crate::protocol::{CloseReason, ErrorText};
use crate::ws::frame::{OpCode, control_frame};

/// The longest a flush writes before it lets the shard's other work (the inbox, reads)
/// run; the rest is written right after. Without it, a message arriving during a long
/// flush would wait for all of it before even being queued.
const FLUSH_SLICE: Micros = 500;
/// Writes between two readings of the clock during a flush.
const CLOCK_EVERY: usize = 16;

/// Queued bytes past which a connection is written mid-batch instead of at its end.
const EARLY_FLUSH: usize = 64 * 1024;

/// The size of the shard-wide read buffer every connection reads into.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// One shard: its connections, its indexes, and what it shares with the engine.
pub(crate) struct Shard {
    pub id: ShardId,
    pub engine: Arc<EngineShared>,
    pub handle: Handle,
    pub metrics: Arc<ShardMetrics>,
    pub state: RefCell<ShardState>,
    /// The read buffer shared by every connection of this shard (one read at a time).
    pub scratch: RefCell<Box<[u8]>>,
    /// Wakes the encryptor task when encrypt jobs are queued.
    pub encrypt_wake: tokio::sync::Notify,
    /// The clock write pacing is measured on.
    pub clock: Clock,
    /// Chooses how often a busy socket is written ([`super::pacing`]).
    pacer: RefCell<Pacer>,
    /// Wakes the flusher task when connections wait for their next write time.
    pub flush_wake: tokio::sync::Notify,
}

/// The mutable part of a shard.
#[derive(Default)]
pub(crate) struct ShardState {
    pub conns: Slab<Conn>,
    pub index: LocalIndex,
    /// Connections with queued frames, written at the end of the current batch or when
    /// their write pacing allows.
    pub dirty: DirtyList,
    /// Messages for encrypted clients, sealed by the encryptor task in bounded batches.
    pub encrypt_queue: VecDeque<EncryptJob>,
}

impl Shard {
    pub fn new(id: ShardId, engine: Arc<EngineShared>, metrics: Arc<ShardMetrics>) -> Rc<Self> {
        let handle = Handle {
            shared: engine.clone(),
        };
        let pacer = Pacer::new(
            engine.config.write_coalesce_factor,
            engine.config.max_write_delay,
        );
        Rc::new(Shard {
            id,
            engine,
            handle,
            metrics,
            state: RefCell::new(ShardState::default()),
            scratch: RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice()),
            encrypt_wake: tokio::sync::Notify::new(),
            clock: Clock::new(),
            pacer: RefCell::new(pacer),
            flush_wake: tokio::sync::Notify::new(),
        })
    }

    /// Queues `delivery.frame` on every local recipient.
    pub fn deliver(&self, delivery: &Delivery) {
        let limit = self.engine.config.backpressure_limit;
        let close_slow = self.engine.config.close_on_backpressure_limit;
        let early_flush = (limit / 2).min(EARLY_FLUSH);
        let mut state = self.state.borrow_mut();
        let ShardState {
            conns,
            index,
            dirty,
            encrypt_queue,
        } = &mut *state;
        let frame = delivery.frame.bytes();
        let plaintext_len = delivery.frame.payload_len();
        let excluded = |id: &ClientId| delivery.exclude.as_ref().is_some_and(|e| e.contains(id));
        let mut queue = |slot: Slot, conn: &mut Conn| -> u64 {
            if !conn.is_authenticated() {
                return 0;
            }
            if conn.encryption.is_some() {
                let waiting = conn.outbox.queued_bytes() + conn.pending_encrypt;
                if waiting + plaintext_len > limit {
                    self.metrics.backpressure_dropped.inc();
                    return 0;
                }
                conn.pending_encrypt += plaintext_len;
                encrypt_queue.push_back(EncryptJob {
                    slot,
                    client_id: conn.id,
                    payload: delivery.frame.payload(),
                });
                return 1;
            }
            match conn.push(slot, frame.clone(), limit, dirty) {
                Push::Queued => {
                    // A long batch must not starve a fast reader into its limit.
                    if conn.outbox.queued_bytes() >= early_flush && !conn.write_blocked {
                        flush_conn(conn);
                    }
                    1
                }
                Push::OverLimit if close_slow => {
                    conn.close(slot, CloseReason::SlowConsumer, dirty);
                    self.metrics.slow_consumers_closed.inc();
                    0
                }
                Push::OverLimit => {
                    self.metrics.backpressure_dropped.inc();
                    0
                }
            }
        };
        let mut count = 0u64;
        match &delivery.target {
            Target::Client(id) => {
                if let Some(slot) = index.client(id) {
                    count += queue_slot(conns, slot, &mut queue);
                }
            }
            Target::User(user) => {
                for &slot in index.user_sessions(user) {
                    count += queue_slot(conns, slot, &mut queue);
                }
            }
            Target::Room(room) => {
                count += walk_room(index, conns, room, &excluded, &mut queue);
            }
            Target::Broadcast => {
                for (slot, conn) in conns.iter_mut() {
                    if !excluded(&conn.id) {
                        count += queue(slot, conn);
                    }
                }
            }
        }
        self.metrics.deliveries.add(count);
        if !encrypt_queue.is_empty() {
            self.encrypt_wake.notify_one();
        }
    }

    /// Seals up to `encrypted_batch_limit` queued messages for encrypted clients and
    /// queues the results; returns whether more are waiting.
    pub fn encrypt_batch(&self) -> bool {
        let batch = self.engine.config.encrypted_batch_limit;
        let transformer = self.engine.callbacks.transformer.as_deref();
        let mut state = self.state.borrow_mut();
        let ShardState {
            conns,
            dirty,
            encrypt_queue,
            ..
        } = &mut *state;
        let mut sealed = Vec::new();
        for _ in 0..batch {
            let Some(job) = encrypt_queue.pop_front() else {
                return false;
            };
            let Some(conn) = conns.get_mut(job.slot).filter(|c| c.id == job.client_id) else {
                continue;
            };
            conn.pending_encrypt = conn.pending_encrypt.saturating_sub(job.payload.len());
            if !conn.is_authenticated() {
                continue;
            }
            let frame = match &conn.encryption {
                Some(Encryption::Session(cipher)) => {
                    sealed.clear();
                    cipher.seal_event_json(&job.payload, &mut sealed);
                    Frame::from_json_text(&sealed)
                }
                Some(Encryption::Transformer) => {
                    match transformer.and_then(|t| t.transform(conn.id, &job.payload)) {
                        Some(json) => Frame::from_json_text(&json),
                        None => Frame::from_json_text(&job.payload),
                    }
                }
                None => Frame::from_json_text(&job.payload),
            };
            conn.outbox.push_unbounded(frame.bytes().clone());
            conn.mark_dirty(job.slot, dirty);
            self.metrics.encrypted_deliveries.inc();
        }
        !encrypt_queue.is_empty()
    }

    /// Writes every dirty socket whose write pacing allows it, once, with one vectored
    /// write each; the others wait for their next write time (the flusher task calls this
    /// again then). See [`super::pacing`].
    pub fn flush_dirty(&self) {
        let now = self.clock.now();
        match self.next_write() {
            None => return,
            Some(due) if due > now => {
                self.flush_wake.notify_one();
                return;
            }
            Some(_) => {}
        }
        self.flush(now, false);
    }

    /// When the next dirty socket may be written, on the shard's clock.
    fn next_write(&self) -> Option<Micros> {
        self.state.borrow().dirty.earliest()
    }

    /// Writes every dirty socket now, whatever its pacing (shutdown).
    pub fn flush_all(&self) {
        self.flush(self.clock.now(), true);
    }

    /// When the next dirty socket may be written, if any is waiting.
    pub fn next_write_at(&self) -> Option<Instant> {
        Some(self.clock.instant(self.next_write()?))
    }

    fn flush(&self, now: Micros, everything: bool) {
        let started = Instant::now();
        let mut pacer = self.pacer.borrow_mut();
        let interval = u64::try_from(pacer.interval().as_micros()).unwrap_or(u64::MAX);
        let mut clock = now;
        let mut out_of_time = false;
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        let busy = dirty.len();
        let (mut sockets, mut frames) = (0, 0);
        dirty.retain(|slot| {
            let conn = conns.get_mut(slot)?;
            if conn.write_blocked {
                // Its task writes it when the socket drains.
                conn.dirty = false;
                return None;
            }
            if out_of_time || (conn.write_after > now && !everything) {
                return Some(conn.write_after);
            }
            conn.dirty = false;
            sockets += 1;
            frames += conn.outbox.frames();
            flush_conn(conn);
            if sockets % CLOCK_EVERY == 0 {
                clock = self.clock.now();
                out_of_time = !everything && clock.saturating_sub(now) >= FLUSH_SLICE;
            }
            // The socket's own write time: a busy socket is written once per interval.
            conn.write_after = clock.saturating_add(interval);
            None
        });
        let waiting = !dirty.is_empty();
        drop(state);
        self.metrics.socket_writes.add(sockets as u64);
        pacer.record(started, busy, sockets, frames, started.elapsed());
        if waiting {
            self.flush_wake.notify_one();
        }
    }

    /// Flushes one connection whose socket became writable.
    pub fn flush_one(&self, slot: Slot) {
        if let Some(conn) = self.state.borrow_mut().conns.get_mut(slot) {
            conn.write_blocked = false;
            flush_conn(conn);
        }
    }

    /// Queues a frame for one connection within the backpressure limit (replies such as
    /// `error` and `pong`; allowed before authentication).
    pub fn reply(&self, slot: Slot, frame: Bytes) {
        let limit = self.engine.config.backpressure_limit;
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        if let Some(conn) = conns.get_mut(slot) {
            match conn.outbox.push(frame, limit) {
                Push::Queued => conn.mark_urgent(slot, dirty),
                Push::OverLimit => self.metrics.backpressure_dropped.inc(),
            }
        }
    }

    /// Sends an `error` event.
    pub fn send_error(&self, slot: Slot, text: ErrorText) {
        self.reply(slot, error_frame(text.text()).bytes().clone());
    }

    /// Closes a connection with a close frame.
    pub fn close(&self, slot: Slot, reason: CloseReason) {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        if let Some(conn) = conns.get_mut(slot) {
            conn.close(slot, reason, dirty);
        }
    }

    /// Sends the error of a failed authentication and closes (4003 / 4004).
    pub fn reject(&self, slot: Slot, verdict: AuthVerdict) {
        let failure = self
            .state
            .borrow_mut()
            .conns
            .get_mut(slot)
            .and_then(|c| c.machine.on_auth_verdict(verdict));
        if let Some((text, reason)) = failure {
            self.metrics.auth_failures.inc();
            self.send_error(slot, text);
            self.close(slot, reason);
        }
    }

    /// Completes a successful authentication: index the user, join the own-id room and
    /// the default rooms, queue `connected` (with `extra` members), report the client.
    pub fn accept(
        &self,
        slot: Slot,
        identity: Identity,
        extra: &serde_json::Map<String, serde_json::Value>,
        encryption: Option<Encryption>,
    ) {
        let (client_id, user_id) = {
            let mut state = self.state.borrow_mut();
            let ShardState { conns, index, .. } = &mut *state;
            let Some(conn) = conns.get_mut(slot) else {
                return;
            };
            if conn
                .machine
                .on_auth_verdict(AuthVerdict::Accepted)
                .is_some()
                || !conn.is_authenticated()
            {
                return;
            }
            let user_id: Option<Arc<str>> = identity.user_id.as_deref().map(Arc::from);
            if let Some(user) = &user_id {
                index.add_user_session(user, slot);
            }
            conn.user_id = user_id.clone();
            conn.encryption = encryption;
            conn.in_own_room = true;
            conn.connected_reported = true;
            (conn.id, user_id)
        };
        self.metrics.authenticated.add(1);
        self.join_rooms(slot, &self.engine.config.default_rooms.clone());
        let frame = connected_frame(
            &client_id.to_string(),
            user_id.as_deref(),
            SystemTime::now(),
            extra,
        );
        self.reply(slot, frame.bytes().clone());
        if let Some(hook) = &self.engine.callbacks.on_connect {
            let client = ConnectedClient {
                client_id,
                user_id,
                metadata: identity.metadata,
            };
            run_local(hook(&self.handle, client));
        }
    }

    /// Joins rooms (name rules already applied); the own id toggles the own-id room.
    pub fn join_rooms(&self, slot: Slot, rooms: &[String]) {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, index, .. } = &mut *state;
        let Some(conn) = conns.get_mut(slot) else {
            return;
        };
        if !conn.is_authenticated() {
            return;
        }
        for room in rooms {
            if ClientId::parse_canonical(room) == Some(conn.id) {
                conn.in_own_room = true;
            } else if let Some(name) = index.join(room, slot) {
                conn.rooms.push(name);
            }
        }
        self.metrics.rooms.set(index.room_count() as i64);
    }

    /// Leaves rooms the connection is in (default and own-id rooms included).
    pub fn leave_rooms(&self, slot: Slot, rooms: &[String]) {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, index, .. } = &mut *state;
        let Some(conn) = conns.get_mut(slot) else {
            return;
        };
        for room in rooms {
            if ClientId::parse_canonical(room) == Some(conn.id) {
                conn.in_own_room = false;
            } else if index.leave(room, slot) {
                conn.rooms.retain(|r| **r != **room);
            }
        }
        self.metrics.rooms.set(index.room_count() as i64);
    }

    /// Marks a client encrypted through the embedder's transformer
    /// (Ignis `enableClientEncryption`).
    pub fn enable_encryption(&self, slot: Slot) {
        if let Some(conn) = self.state.borrow_mut().conns.get_mut(slot) {
            conn.encryption = Some(Encryption::Transformer);
        }
    }

    /// A new random client id that hashes to this shard (`hash(id) % shards == self`),
    /// so a connection accepted here also belongs here. Expected tries: the shard count.
    pub fn fresh_client_id(&self) -> ClientId {
        let shards = self.engine.broker.shards().len();
        loop {
            let id = ClientId::new_v4();
            if super::placement::shard_for(&id, shards) == self.id {
                return id;
            }
        }
    }

    /// The slot of a local client.
    pub fn slot_of(&self, id: &ClientId) -> Option<Slot> {
        self.state.borrow().index.client(id)
    }

    /// Removes a finished connection from the table and every index, and reports it.
    pub fn remove(&self, slot: Slot) {
        let conn = {
            let mut state = self.state.borrow_mut();
            let ShardState { conns, index, .. } = &mut *state;
            let Some(conn) = conns.try_remove(slot) else {
                return;
            };
            index.remove_client(&conn.id);
            if let Some(user) = &conn.user_id {
                index.remove_user_session(user, slot);
            }
            for room in &conn.rooms {
                index.leave(room, slot);
            }
            self.metrics.rooms.set(index.room_count() as i64);
            conn
        };
        self.metrics.connections.add(-1);
        if conn.connected_reported {
            self.metrics.authenticated.add(-1);
            if let Some(hook) = &self.engine.callbacks.on_disconnect {
                let client = DisconnectedClient {
                    client_id: conn.id,
                    user_id: conn.user_id,
                };
                run_local(hook(&self.handle, client));
            }
        }
    }

    /// Closes authenticated clients silent longer than the heartbeat timeout (4002).
    pub fn sweep_heartbeats(&self, now: Instant) {
        let timeout = self.engine.config.heartbeat_timeout;
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        for (slot, conn) in conns.iter_mut() {
            if conn.machine.heartbeat_expired(now, timeout)
                && conn.close(slot, CloseReason::HeartbeatTimeout, dirty)
            {
                self.metrics.timeouts.inc();
            }
        }
    }

    /// Transport liveness: pings quiet connections, drops those silent past the idle
    /// timeout (like uWebSockets, without a close handshake).
    pub fn sweep_idle(&self, now: Instant) {
        let idle = self.engine.config.idle_timeout;
        let send_pings = self.engine.config.send_pings;
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        for (slot, conn) in conns.iter_mut() {
            let quiet = now.saturating_duration_since(conn.last_rx);
            if quiet >= idle {
                conn.abort();
            } else if send_pings && !conn.ping_sent && quiet >= idle / 2 {
                conn.ping_sent = true;
                conn.outbox.push_unbounded(control_frame(OpCode::Ping, b""));
                conn.mark_dirty(slot, dirty);
            }
        }
    }

    /// Closes every connection with 1001 "Server shutting down".
    pub fn close_all(&self) {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        for (slot, conn) in conns.iter_mut() {
            conn.close(slot, CloseReason::ShuttingDown, dirty);
        }
    }

    /// Answers an engine-wide query from the local index.
    pub fn answer(&self, query: Query) {
        let state = self.state.borrow();
        match query {
            Query::RoomClients(room, reply) => {
                let mut ids: Vec<ClientId> = state
                    .index
                    .room_members(&room)
                    .filter_map(|slot| state.conns.get(slot).map(|c| c.id))
                    .collect();
                if let Some(id) = ClientId::parse_canonical(&room) {
                    let own = state.index.client(&id).and_then(|s| state.conns.get(s));
                    if own.is_some_and(|c| c.in_own_room && c.is_authenticated()) {
                        ids.push(id);
                    }
                }
                let _ = reply.send(ids);
            }
            Query::UserClients(user, reply) => {
                let ids = state
                    .index
                    .user_sessions(&user)
                    .iter()
                    .filter_map(|&slot| state.conns.get(slot).map(|c| c.id))
                    .collect();
                let _ = reply.send(ids);
            }
            Query::HasClient(id, reply) => {
                let _ = reply.send(state.index.client(&id).is_some());
            }
        }
    }
}

/// Walks a room's members, plus the client whose own id is the room name if it is local
/// and still in its own-id room.
fn walk_room(
    index: &LocalIndex,
    conns: &mut Slab<Conn>,
    room: &str,
    excluded: &impl Fn(&ClientId) -> bool,
    queue: &mut impl FnMut(Slot, &mut Conn) -> u64,
) -> u64 {
    let mut count = 0;
    for slot in index.room_members(room) {
        if let Some(conn) = conns.get_mut(slot)
            && !excluded(&conn.id)
        {
            count += queue(slot, conn);
        }
    }
    if let Some(id) = ClientId::parse_canonical(room)
        && !excluded(&id)
        && let Some(slot) = index.client(&id)
        && let Some(conn) = conns.get_mut(slot)
        && conn.in_own_room
    {
        count += queue(slot, conn);
    }
    count
}

fn queue_slot(
    conns: &mut Slab<Conn>,
    slot: Slot,
    queue: &mut impl FnMut(Slot, &mut Conn) -> u64,
) -> u64 {
    conns.get_mut(slot).map_or(0, |conn| queue(slot, conn))
}

fn flush_conn(conn: &mut Conn) {
    if conn.broken {
        return;
    }
    match conn.outbox.flush(&conn.stream) {
        Ok(Flush::Drained) => {
            if conn.outbox.is_empty()
                && conn.machine.phase() == crate::conn::machine::Phase::Closing
            {
                conn.wake.notify_one();
            }
        }
        Ok(Flush::Blocked) => {
            conn.write_blocked = true;
            conn.wake.notify_one();
        }
        Err(_) => conn.abort(),
    }
}

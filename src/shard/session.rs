//! A connection's life on its shard: joining the table, authentication results (with the
//! `on_connect` hook), joins and leaves against the local index, closing, and removal
//! (with the `on_disconnect` hook).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;

use super::index::Slot;
use super::socket::Socket;
use super::state::{Shard, ShardState};
use super::table::Entry;
use crate::admission::Permit;
use crate::conn::Conn;
use crate::conn::encryption::Encryption;
use crate::conn::machine::AuthVerdict;
use crate::history::Since;
use crate::hooks::{ConnectedClient, DisconnectedClient, Identity, LocalFuture};
use crate::id::ClientId;
use crate::protocol::CloseReason;
use crate::protocol::outbound::connected_frame;

/// Runs a hook's future: polled once in place (most hooks finish at once), spawned on the
/// shard's local executor only if it is still pending.
pub(crate) fn run_local(mut future: LocalFuture<()>) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if future.as_mut().poll(&mut cx).is_pending() {
        tokio::task::spawn_local(future);
    }
}

/// What the task keeps of a connection it just put in the table.
pub(crate) struct Admitted {
    pub slot: Slot,
    pub wake: Rc<Notify>,
}

impl Shard {
    /// Puts a new connection in the table and the client index: its socket, its place
    /// under the caps and when its TCP connection was accepted
    /// ([`crate::metrics::stamp_now`]); the window its messages are compressed with
    /// (`None`: uncompressed).
    pub fn admit(
        &self,
        id: ClientId,
        (socket, permit, accepted_at): (Rc<Socket>, Permit, u64),
        compression_window: Option<u8>,
        now: Instant,
    ) -> Admitted {
        let conn =
            Conn::new(id, now, self.config().auth_timeout).with_compression(compression_window);
        let entry = Entry::new(conn, socket, permit, accepted_at);
        let wake = entry.waker();
        let mut state = self.state.borrow_mut();
        let slot = state.conns.insert(entry);
        state.index.insert_client(id, slot);
        drop(state);
        self.metrics.connections.add(1);
        self.metrics.accepted.inc();
        Admitted { slot, wake }
    }

    /// Closes a connection with a close frame (once).
    pub fn close(&self, slot: Slot, reason: CloseReason) -> bool {
        self.with_entry(slot, |entry, dirty| {
            let closed = entry.conn.close(reason);
            if closed {
                entry.closed(slot, dirty);
            }
            closed
        })
        .unwrap_or(false)
    }

    /// Sends the error of a failed authentication and closes (4003 / 4004).
    pub fn reject(&self, slot: Slot, verdict: AuthVerdict) {
        let refused = self.with_entry(slot, |entry, dirty| {
            let refused = entry.conn.refuse(verdict);
            if refused {
                entry.closed(slot, dirty);
            }
            refused
        });
        if refused == Some(true) {
            self.metrics.auth_failures.inc();
        }
    }

    /// Completes a successful authentication: index the user, join the own-id room and
    /// the default rooms, queue `connected` (with `extra` members), report the client.
    pub fn accept(
        self: &Rc<Self>,
        slot: Slot,
        identity: Identity,
        extra: &serde_json::Map<String, serde_json::Value>,
        encryption: Option<Encryption>,
    ) {
        let user_id: Option<Arc<str>> = identity.user_id.as_deref().map(Arc::from);
        let Some((client_id, accepted_at)) = self.admit_user(slot, user_id.clone(), encryption)
        else {
            return;
        };
        self.metrics.authenticated.add(1);
        let id = client_id.to_string();
        let frame = connected_frame(&id, user_id.as_deref(), SystemTime::now(), extra);
        self.reply_frame(slot, &frame);
        // After `connected`: a history room among them answers with `ws:joined`.
        self.join_rooms(slot, &self.config().default_rooms);
        let took = crate::metrics::micros_between(accepted_at, crate::metrics::stamp_now());
        self.metrics.connect_latency.record(took);
        if let Some(hook) = &self.ctx.hooks.on_connect {
            let metadata = identity.metadata;
            let client = ConnectedClient {
                client_id,
                user_id,
                metadata,
            };
            run_local(hook(&self.ctx.handle, client));
        }
    }

    /// Marks the connection authenticated and indexes its user; its id and accept
    /// stamp, or `None` when it closed meanwhile.
    fn admit_user(
        &self,
        slot: Slot,
        user_id: Option<Arc<str>>,
        encryption: Option<Encryption>,
    ) -> Option<(ClientId, u64)> {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, index, .. } = &mut *state;
        let entry = conns.get_mut(slot)?;
        let accepted_at = entry.accepted_at();
        let conn = &mut entry.conn;
        if !conn.accept(user_id.clone(), encryption) {
            return None;
        }
        if let Some(user) = &user_id {
            index.add_user_session(user, slot);
        }
        Some((conn.id(), accepted_at))
    }

    /// Joins rooms (name rules already applied); the own id re-enters the own-id room.
    pub fn join_rooms(self: &Rc<Self>, slot: Slot, rooms: &[String]) {
        self.join_rooms_since(slot, rooms, &[]);
    }

    /// Joins rooms; a history room joined here answers with `ws:joined` after
    /// recovering from the position `since` gives for it, if any; a presence room
    /// records the client and announces it (`ws:join`).
    pub fn join_rooms_since(
        self: &Rc<Self>,
        slot: Slot,
        rooms: &[String],
        since: &[(String, Since)],
    ) {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, index, .. } = &mut *state;
        let Some(conn) = conns.get_mut(slot).map(|e| &mut e.conn) else {
            return;
        };
        if !conn.is_authenticated() {
            return;
        }
        let (own, cap) = (conn.id(), self.config().max_rooms_per_client);
        let user = conn.membership().user_id().cloned();
        let mut refused = 0;
        let mut joined = Vec::new();
        for room in rooms {
            if room.parse::<ClientId>() == Ok(own) {
                conn.membership_mut().set_own_room(true);
            } else if conn.membership().room_count() >= cap {
                // Past the cap a join is dropped, as a rejected join is.
                refused += u64::from(!index.is_member(room, slot));
            } else if let Some(name) = index.join(room, slot) {
                conn.membership_mut().joined(name.clone());
                joined.push(name);
            }
        }
        self.metrics.rooms.set(index.room_count() as i64);
        self.metrics.rooms_refused.add(refused);
        drop(state);
        let handle = &self.ctx.handle;
        for room in joined {
            if handle.keeps_history(&room) {
                let from = since
                    .iter()
                    .find(|(r, _)| **r == *room)
                    .map(|(_, s)| s.clone());
                self.begin_recovery(own, room.clone(), from);
            }
            handle.presence_joined(&room, own, user.clone());
        }
    }

    /// Leaves rooms the connection is in (default and own-id rooms included).
    pub fn leave_rooms(&self, slot: Slot, rooms: &[String]) {
        let mut state = self.state.borrow_mut();
        let ShardState {
            conns,
            index,
            syncs,
            ..
        } = &mut *state;
        let Some(conn) = conns.get_mut(slot).map(|e| &mut e.conn) else {
            return;
        };
        let own = conn.id();
        let user = conn.membership().user_id().cloned();
        let mut left = Vec::new();
        for room in rooms {
            if room.parse::<ClientId>() == Ok(own) {
                conn.membership_mut().set_own_room(false);
            } else if index.leave(room, slot) {
                conn.membership_mut().left(room);
                syncs.remove(room, &own);
                left.push(room);
            }
        }
        self.metrics.rooms.set(index.room_count() as i64);
        drop(state);
        for room in left {
            self.ctx.handle.presence_left(room, own, user.as_deref());
        }
    }

    /// Routes a client's messages through the embedder's transformer
    /// (Ignis `enableClientEncryption`).
    pub fn enable_encryption(&self, slot: Slot) {
        self.with_entry(slot, |entry, _| entry.conn.use_transformer());
    }

    /// Removes a finished connection from the table and every index, and reports it.
    pub fn remove(&self, slot: Slot) {
        let Some(conn) = self.take(slot) else {
            return;
        };
        self.metrics.connections.add(-1);
        self.metrics.disconnects.record(conn.close_code());
        if !conn.connected_reported() {
            return;
        }
        self.metrics.authenticated.add(-1);
        if let Some(hook) = &self.ctx.hooks.on_disconnect {
            let client_id = conn.id();
            let user_id = conn.membership().user_id().cloned();
            run_local(hook(
                &self.ctx.handle,
                DisconnectedClient { client_id, user_id },
            ));
        }
    }

    /// Takes a connection out of the table and the indexes.
    fn take(&self, slot: Slot) -> Option<Conn> {
        let mut state = self.state.borrow_mut();
        let ShardState {
            conns,
            index,
            syncs,
            ..
        } = &mut *state;
        let conn = conns.try_remove(slot)?.conn;
        index.remove_client(&conn.id());
        let user = conn.membership().user_id();
        if let Some(user) = user {
            index.remove_user_session(user, slot);
        }
        for room in conn.membership().rooms() {
            index.leave(room, slot);
            syncs.remove(room, &conn.id());
        }
        self.metrics.rooms.set(index.room_count() as i64);
        drop(state);
        for room in conn.membership().rooms() {
            self.ctx
                .handle
                .presence_left(room, conn.id(), user.map(|u| &**u));
        }
        Some(conn)
    }
}

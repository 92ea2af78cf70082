//! What a shard does with each [`Command`] of its inbox, and its answers to queries.

use std::rc::Rc;

use super::deliver::{own_room_member, resolve};
use super::state::{Shard, ShardState};
use crate::id::ClientId;
use crate::protocol::CloseReason;
use crate::routing::command::{ClientInfo, Command, Query};

/// Handles one command (`Shutdown` is the caller's).
pub(super) fn handle(shard: &Rc<Shard>, command: Command) {
    match command {
        Command::Deliver(delivery) => shard.deliver(&delivery),
        Command::Resolve(id, frame) => resolve(shard, id, frame),
        Command::Join(id, mut rooms) => {
            rooms.retain(|r| crate::rooms::is_valid_room_name(r));
            on_local(shard, &id, |slot| shard.join_rooms(slot, &rooms));
        }
        Command::Leave(id, rooms) => on_local(shard, &id, |slot| shard.leave_rooms(slot, &rooms)),
        Command::Disconnect(id) => on_local(shard, &id, |slot| {
            shard.close(slot, CloseReason::Normal);
        }),
        Command::EnableEncryption(id) => on_local(shard, &id, |slot| shard.enable_encryption(slot)),
        Command::Query(query) => shard.answer(query),
        Command::Shutdown => {}
    }
}

/// Runs `f` with the slot of client `id`, if it is connected here.
fn on_local(shard: &Shard, id: &ClientId, f: impl FnOnce(super::index::Slot)) {
    if let Some(slot) = shard.slot_of(id) {
        f(slot);
    }
}

impl Shard {
    /// Answers an engine-wide query from the local index.
    pub fn answer(&self, query: Query) {
        match query {
            Query::RoomClients(room, reply) => {
                let _ = reply.send(self.room_clients(&room));
            }
            Query::UserClients(user, reply) => {
                let _ = reply.send(self.user_clients(&user));
            }
            Query::HasClient(id, reply) => {
                let _ = reply.send(self.slot_of(&id).is_some());
            }
            Query::RoomCounts(reply) => {
                let _ = reply.send(self.state.borrow().index.room_counts());
            }
            Query::ClientInfo(id, reply) => {
                let _ = reply.send(self.client_info(&id));
            }
        }
    }

    /// What local client `id` is, for the admin routes.
    fn client_info(&self, id: &ClientId) -> Option<ClientInfo> {
        let state = self.state.borrow();
        let entry = state.conns.get(state.index.client(id)?)?;
        let membership = entry.conn.membership();
        let mut rooms: Vec<String> = membership.rooms().map(|r| r.to_string()).collect();
        rooms.sort();
        Some(ClientInfo {
            client_id: id.to_string(),
            shard: self.id.index(),
            authenticated: entry.conn.is_authenticated(),
            user_id: membership.user_id().map(|u| u.to_string()),
            rooms,
            connected_for: std::time::Duration::from_micros(crate::metrics::micros_between(
                entry.accepted_at(),
                crate::metrics::stamp_now(),
            )),
        })
    }

    /// The local members of `room`, the client named after it included (if it is still
    /// in its own-id room and authenticated).
    fn room_clients(&self, room: &str) -> Vec<ClientId> {
        let state = self.state.borrow();
        let ShardState { conns, index, .. } = &*state;
        let id_of = |slot| conns.get(slot).map(|e| e.conn.id());
        let mut ids: Vec<ClientId> = index.room_members(room).filter_map(id_of).collect();
        let own = own_room_member(index, conns, room, &|_| false);
        if let Some(slot) = own.filter(|&s| conns[s].conn.is_authenticated()) {
            ids.extend(id_of(slot));
        }
        ids
    }

    /// The local sessions of `user`.
    fn user_clients(&self, user: &str) -> Vec<ClientId> {
        let state = self.state.borrow();
        let sessions = state.index.user_sessions(user).iter();
        sessions
            .filter_map(|&slot| state.conns.get(slot).map(|e| e.conn.id()))
            .collect()
    }
}

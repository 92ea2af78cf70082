//! A shard's local indexes: client id → connection slot, user id → slots, room → slots.
//!
//! Owned by exactly one shard thread (not `Send`-shared, no locks). Only authenticated
//! connections are in the user and room indexes, so nothing found through them can be an
//! unauthenticated client. A client's own-id room is a flag on the connection rather than
//! an index entry (see [`crate::shard`]).
//!
//! With Redis, the index keeps the process's [`Interest`] in step: it holds
//! `ws:room:{room}` while the shard has a member of the room, `ws:user:{id}` while it has a
//! session of the user, and `ws:client:{id}` and `ws:room:{id}` (the own-id room) while
//! the client is connected here. It touches the interest only when an entry comes or goes.

use std::sync::Arc;

use ahash::{AHashMap, AHashSet};

use crate::id::ClientId;
use crate::interest::Interest;
use crate::protocol::channel;

/// A connection's slot in its shard's connection table.
pub type Slot = usize;

/// The three indexes of one shard.
#[derive(Debug, Default)]
pub struct LocalIndex {
    clients: AHashMap<ClientId, Slot>,
    users: AHashMap<Arc<str>, Vec<Slot>>,
    rooms: AHashMap<Arc<str>, AHashSet<Slot>>,
    /// The channels the process's Redis subscriber follows; `None` without Redis.
    interest: Option<Arc<Interest>>,
}

impl LocalIndex {
    /// An empty index that keeps `interest` in step (see the module doc).
    pub fn with_interest(interest: Option<Arc<Interest>>) -> Self {
        LocalIndex {
            interest,
            ..LocalIndex::default()
        }
    }

    /// Registers a new connection.
    pub fn insert_client(&mut self, id: ClientId, slot: Slot) {
        if self.clients.insert(id, slot).is_none() {
            self.client_channels(&id, Interest::hold);
        }
    }

    /// Forgets a connection (its user and room entries must be removed first).
    pub fn remove_client(&mut self, id: &ClientId) {
        if self.clients.remove(id).is_some() {
            self.client_channels(id, Interest::release);
        }
    }

    /// Applies `change` to a client's own channels: `ws:client:{id}`, `ws:room:{id}`.
    fn client_channels(&self, id: &ClientId, change: fn(&Interest, &str)) {
        if let Some(interest) = &self.interest {
            let id = id.to_string();
            change(interest, &channel::client(&id));
            change(interest, &channel::room(&id));
        }
    }

    /// Applies `change` to the channel `name(key)` names.
    fn channel(&self, name: fn(&str) -> String, key: &str, change: fn(&Interest, &str)) {
        if let Some(interest) = &self.interest {
            change(interest, &name(key));
        }
    }

    /// The slot of a local client.
    pub fn client(&self, id: &ClientId) -> Option<Slot> {
        self.clients.get(id).copied()
    }

    /// Adds a session of `user`.
    pub fn add_user_session(&mut self, user: &Arc<str>, slot: Slot) {
        let sessions = self.users.entry(user.clone()).or_default();
        if !sessions.contains(&slot) {
            sessions.push(slot);
            if sessions.len() == 1 {
                self.channel(channel::user, user, Interest::hold);
            }
        }
    }

    /// Removes a session of `user`; the entry goes with the last session.
    pub fn remove_user_session(&mut self, user: &str, slot: Slot) {
        if let Some(sessions) = self.users.get_mut(user) {
            sessions.retain(|&s| s != slot);
            if sessions.is_empty() {
                self.users.remove(user);
                self.channel(channel::user, user, Interest::release);
            }
        }
    }

    /// The local sessions of `user`.
    pub fn user_sessions(&self, user: &str) -> &[Slot] {
        self.users.get(user).map_or(&[], Vec::as_slice)
    }

    /// Adds `slot` to `room`; returns the interned room name when it was not a member.
    pub fn join(&mut self, room: &str, slot: Slot) -> Option<Arc<str>> {
        if let Some(members) = self.rooms.get_mut(room) {
            if !members.insert(slot) {
                return None;
            }
            return self.rooms.get_key_value(room).map(|(name, _)| name.clone());
        }
        let name: Arc<str> = Arc::from(room);
        self.rooms.insert(name.clone(), AHashSet::from_iter([slot]));
        self.channel(channel::room, room, Interest::hold);
        Some(name)
    }

    /// Removes `slot` from `room`; the room goes with its last member. Returns whether
    /// it was a member.
    pub fn leave(&mut self, room: &str, slot: Slot) -> bool {
        let Some(members) = self.rooms.get_mut(room) else {
            return false;
        };
        let removed = members.remove(&slot);
        if members.is_empty() {
            self.rooms.remove(room);
            self.channel(channel::room, room, Interest::release);
        }
        removed
    }

    /// Whether `slot` is a member of `room` (indexed joins only).
    pub fn is_member(&self, room: &str, slot: Slot) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|members| members.contains(&slot))
    }

    /// The local members of `room` (indexed joins only).
    pub fn room_members(&self, room: &str) -> impl Iterator<Item = Slot> + '_ {
        self.rooms.get(room).into_iter().flatten().copied()
    }

    /// Every non-empty local room with its number of members.
    pub fn room_counts(&self) -> Vec<(Arc<str>, usize)> {
        let count = |(name, members): (&Arc<str>, &AHashSet<Slot>)| (name.clone(), members.len());
        self.rooms.iter().map(count).collect()
    }

    /// Number of non-empty local rooms.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_sets_and_vanish_when_empty() {
        let mut index = LocalIndex::default();
        assert!(index.join("a", 1).is_some());
        assert!(index.join("a", 1).is_none());
        assert!(index.join("a", 2).is_some());
        let mut members: Vec<_> = index.room_members("a").collect();
        members.sort();
        assert_eq!(members, [1, 2]);
        assert!(index.leave("a", 1));
        assert!(!index.leave("a", 1));
        assert!(index.leave("a", 2));
        assert_eq!(index.room_count(), 0);
        assert_eq!(index.room_members("a").count(), 0);
    }

    #[test]
    fn users_keep_every_session() {
        let mut index = LocalIndex::default();
        let alice: Arc<str> = Arc::from("alice");
        index.add_user_session(&alice, 1);
        index.add_user_session(&alice, 2);
        index.add_user_session(&alice, 2);
        assert_eq!(index.user_sessions("alice"), &[1, 2]);
        index.remove_user_session("alice", 1);
        index.remove_user_session("alice", 2);
        assert!(index.user_sessions("alice").is_empty());
    }

    #[test]
    fn the_interest_follows_first_and_last_entries() {
        let interest = Arc::new(Interest::default());
        let mut index = LocalIndex::with_interest(Some(interest.clone()));
        let id = ClientId::new_v4();
        index.insert_client(id, 1);
        assert!(interest.wants(&format!("ws:client:{id}")));
        assert!(interest.wants(&format!("ws:room:{id}")));
        index.join("a", 1);
        index.join("a", 2);
        let alice: Arc<str> = Arc::from("alice");
        index.add_user_session(&alice, 1);
        index.add_user_session(&alice, 2);
        assert!(interest.wants("ws:room:a") && interest.wants("ws:user:alice"));
        index.leave("a", 1);
        index.remove_user_session("alice", 1);
        assert!(interest.wants("ws:room:a") && interest.wants("ws:user:alice"));
        index.leave("a", 2);
        index.remove_user_session("alice", 2);
        index.remove_client(&id);
        assert!(interest.wanted().is_empty());
    }
}

//! Presence: who is in a room. [`LocalPresence`] is this process's own members of the
//! presence rooms: the whole answer on a single node, and with Redis what this node
//! writes (and keeps refreshing) into the fleet's view.
//!
//! # Contract
//!
//! `Send + Sync`, one lock over every room, held for one map operation. A client is in
//! a room's presence from its join until its leave or disconnect; [`LocalPresence::join`]
//! and [`LocalPresence::leave`] say whether they changed anything, so each join and each
//! leave is announced (`ws:join`, `ws:leave`) exactly once. Memory: one entry per
//! (client, presence room), gone with the client.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ahash::AHashMap;

use crate::id::ClientId;

/// One client in a room's presence.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PresenceEntry {
    /// The client id.
    pub id: String,
    /// Its user id, when it authenticated with one.
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// A room's local members: client id → user id.
type Members = AHashMap<ClientId, Option<Arc<str>>>;

/// This process's members of presence rooms.
#[derive(Debug, Default)]
pub struct LocalPresence {
    rooms: Mutex<AHashMap<Arc<str>, Members>>,
}

impl LocalPresence {
    fn lock(&self) -> MutexGuard<'_, AHashMap<Arc<str>, Members>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `client` to `room` and, when it was not there, runs `changed` before anyone
    /// else can change or read the presence (so what it queues is in the same order as
    /// the changes). Returns whether it was added.
    pub fn join(
        &self,
        room: &Arc<str>,
        client: ClientId,
        user: Option<Arc<str>>,
        changed: impl FnOnce(),
    ) -> bool {
        let mut rooms = self.lock();
        let members = rooms.entry(room.clone()).or_default();
        let added = members.insert(client, user).is_none();
        if added {
            changed();
        }
        added
    }

    /// Removes `client` from `room` and, when it was there, runs `changed` under the
    /// same lock. Returns whether it was removed.
    pub fn leave(&self, room: &str, client: &ClientId, changed: impl FnOnce()) -> bool {
        let mut rooms = self.lock();
        let Some(members) = rooms.get_mut(room) else {
            return false;
        };
        let removed = members.remove(client).is_some();
        if members.is_empty() {
            rooms.remove(room);
        }
        if removed {
            changed();
        }
        removed
    }

    /// Calls `f` with each room and its members, under the lock (a refresh queued from
    /// `f` is ordered with every join and leave).
    pub fn for_each_room(&self, mut f: impl FnMut(&Arc<str>, Vec<PresenceEntry>)) {
        let rooms = self.lock();
        for (room, members) in rooms.iter() {
            let entries = members
                .iter()
                .map(|(id, user)| entry(id, user.as_deref()))
                .collect();
            f(room, entries);
        }
    }

    /// The local members of `room`, sorted by client id.
    pub fn members(&self, room: &str) -> Vec<PresenceEntry> {
        let rooms = self.lock();
        let mut entries: Vec<PresenceEntry> = rooms
            .get(room)
            .into_iter()
            .flatten()
            .map(|(id, user)| entry(id, user.as_deref()))
            .collect();
        entries.sort();
        entries
    }

    /// The rooms with at least one local member.
    pub fn rooms(&self) -> Vec<Arc<str>> {
        self.lock().keys().cloned().collect()
    }
}

fn entry(id: &ClientId, user: Option<&str>) -> PresenceEntry {
    PresenceEntry {
        id: id.to_string(),
        user_id: user.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_leaves_change_once() {
        let p = LocalPresence::default();
        let room: Arc<str> = Arc::from("r");
        let (a, b) = (ClientId::new_v4(), ClientId::new_v4());
        let mut announced = 0;
        assert!(p.join(&room, a, Some(Arc::from("alice")), || announced += 1));
        assert!(!p.join(&room, a, Some(Arc::from("alice")), || announced += 1));
        assert!(p.join(&room, b, None, || announced += 1));
        let members = p.members("r");
        assert_eq!(members.len(), 2);
        assert!(members.contains(&PresenceEntry {
            id: a.to_string(),
            user_id: Some("alice".into())
        }));
        let mut seen = 0;
        p.for_each_room(|_, members| seen += members.len());
        assert_eq!(seen, 2);
        assert!(p.leave("r", &a, || announced += 1));
        assert!(!p.leave("r", &a, || announced += 1));
        assert!(p.leave("r", &b, || announced += 1));
        assert_eq!(announced, 4);
        assert!(p.rooms().is_empty());
    }
}

//! Who a connection is in its shard's indexes: its user id, the rooms it joined through
//! the room index, and its own-id room (a flag, not an index entry: every client is in
//! the room named after its id until it leaves it).
//!
//! Joining and leaving cost the same however many rooms a client holds: a few rooms are
//! a small vector (what almost every client has, and the least memory), more become a
//! hash set.

use std::sync::Arc;

use ahash::AHashSet;

/// Rooms past which a client's rooms move from a vector to a set.
const SMALL: usize = 8;

/// A connection's rooms.
#[derive(Debug)]
enum Rooms {
    Few(Vec<Arc<str>>),
    Many(AHashSet<Arc<str>>),
}

impl Default for Rooms {
    fn default() -> Self {
        Rooms::Few(Vec::new())
    }
}

/// A connection's user and rooms, as the shard's indexes hold them.
#[derive(Debug, Default)]
pub struct Membership {
    user_id: Option<Arc<str>>,
    rooms: Rooms,
    in_own_room: bool,
}

impl Membership {
    /// The user id, once authenticated with one.
    pub fn user_id(&self) -> Option<&Arc<str>> {
        self.user_id.as_ref()
    }

    /// Records the authenticated user (or none) and enters the own-id room.
    pub fn authenticated(&mut self, user_id: Option<Arc<str>>) {
        self.user_id = user_id;
        self.in_own_room = true;
    }

    /// Whether the client is in the room named after its own id.
    pub fn in_own_room(&self) -> bool {
        self.in_own_room
    }

    /// Enters or leaves the own-id room.
    pub fn set_own_room(&mut self, member: bool) {
        self.in_own_room = member;
    }

    /// Records a room the index just added the connection to (its interned name).
    pub fn joined(&mut self, room: Arc<str>) {
        match &mut self.rooms {
            Rooms::Few(rooms) if rooms.len() < SMALL => rooms.push(room),
            Rooms::Few(rooms) => {
                let mut set: AHashSet<Arc<str>> = rooms.drain(..).collect();
                set.insert(room);
                self.rooms = Rooms::Many(set);
            }
            Rooms::Many(set) => {
                set.insert(room);
            }
        }
    }

    /// Forgets a room the index just removed the connection from.
    pub fn left(&mut self, room: &str) {
        match &mut self.rooms {
            Rooms::Few(rooms) => rooms.retain(|r| **r != *room),
            Rooms::Many(set) => {
                set.remove(room);
            }
        }
    }

    /// How many rooms it joined through the index.
    pub fn room_count(&self) -> usize {
        match &self.rooms {
            Rooms::Few(rooms) => rooms.len(),
            Rooms::Many(set) => set.len(),
        }
    }

    /// The rooms joined through the index.
    pub fn rooms(&self) -> impl Iterator<Item = &Arc<str>> {
        let (few, many) = match &self.rooms {
            Rooms::Few(rooms) => (Some(rooms.iter()), None),
            Rooms::Many(set) => (None, Some(set.iter())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_remembered_until_left() {
        let mut m = Membership::default();
        assert!(!m.in_own_room());
        m.authenticated(Some(Arc::from("alice")));
        assert!(m.in_own_room());
        assert_eq!(m.user_id().map(|u| &**u), Some("alice"));
        m.joined(Arc::from("a"));
        m.joined(Arc::from("b"));
        m.left("a");
        let rooms: Vec<&str> = m.rooms().map(|r| &**r).collect();
        assert_eq!(rooms, ["b"]);
        m.set_own_room(false);
        assert!(!m.in_own_room());
    }

    #[test]
    fn many_rooms_move_to_a_set_and_leave_in_constant_time() {
        let mut m = Membership::default();
        for i in 0..1000 {
            m.joined(Arc::from(format!("room-{i}")));
        }
        assert_eq!(m.room_count(), 1000);
        for i in (0..1000).step_by(2) {
            m.left(&format!("room-{i}"));
        }
        assert_eq!(m.room_count(), 500);
        assert!(m.rooms().all(|r| r.ends_with(['1', '3', '5', '7', '9'])));
    }
}

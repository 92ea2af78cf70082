//! Who a connection is in its shard's indexes: its user id, the rooms it joined through
//! the room index, and its own-id room (a flag, not an index entry: every client is in
//! the room named after its id until it leaves it).

use std::sync::Arc;

/// A connection's user and rooms, as the shard's indexes hold them.
#[derive(Debug, Default)]
pub struct Membership {
    user_id: Option<Arc<str>>,
    rooms: Vec<Arc<str>>,
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
        self.rooms.push(room);
    }

    /// Forgets a room the index just removed the connection from.
    pub fn left(&mut self, room: &str) {
        self.rooms.retain(|r| **r != *room);
    }

    /// The rooms joined through the index.
    pub fn rooms(&self) -> &[Arc<str>] {
        &self.rooms
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
        assert_eq!(m.rooms().len(), 1);
        assert_eq!(&*m.rooms()[0], "b");
        m.set_own_room(false);
        assert!(!m.in_own_room());
    }
}

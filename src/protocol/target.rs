//! [`Target`]: who a message is for — one client, every session of a user, every member
//! of a room, or everyone. The one type every producer (the handle, the HTTP API, Redis
//! envelopes, the emitter) and every shard agree on.

use std::fmt;
use std::sync::Arc;

use crate::id::{ClientId, InvalidClientId};

/// Who a message is for. Cheap to clone (the names are shared).
///
/// ```
/// use shardcast::protocol::Target;
///
/// let room = Target::room("prices");
/// assert_eq!((room.kind(), room.name()), ("room", Some("prices")));
/// assert_eq!(room.channel(), "ws:room:prices");
/// assert!(Target::client("not-a-uuid").is_err());
/// assert_eq!(Target::parse("broadcast", None).unwrap(), Target::Broadcast);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// One client, by id (only its owner shard is asked).
    Client(ClientId),
    /// Every session of a user.
    User(Arc<str>),
    /// Every member of a room, including a client whose own id is the room name.
    Room(Arc<str>),
    /// Every authenticated client.
    Broadcast,
}

/// Why a `type` + `target` pair names no [`Target`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// `type` is not one of `client`, `user`, `room`, `broadcast`.
    #[error("type must be one of client|user|room|broadcast")]
    UnknownKind,
    /// A `client`, `user` or `room` target without a non-empty name.
    #[error("a `{0}` target needs a non-empty string `target`")]
    MissingName(&'static str),
    /// A `client` target that is not a client id, so no server can hold it.
    #[error("client target `{0}` is not a client id (a lowercase hyphenated UUID)")]
    NotAClientId(String),
}

impl Target {
    /// One client; fails unless `id` is a client id (lowercase hyphenated UUID).
    pub fn client(id: &str) -> Result<Target, InvalidClientId> {
        id.parse().map(Target::Client)
    }

    /// Every session of `user`.
    pub fn user(user: &str) -> Target {
        Target::User(Arc::from(user))
    }

    /// Every member of `room`.
    pub fn room(room: &str) -> Target {
        Target::Room(Arc::from(room))
    }

    /// The target of a wire `type` (`client`, `user`, `room`, `broadcast`) and name, as
    /// the HTTP API and the Redis envelope carry them. A name given with `broadcast` is
    /// ignored.
    pub fn parse(kind: &str, name: Option<&str>) -> Result<Target, TargetError> {
        let kind = match kind {
            "broadcast" => return Ok(Target::Broadcast),
            "client" => "client",
            "user" => "user",
            "room" => "room",
            _ => return Err(TargetError::UnknownKind),
        };
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or(TargetError::MissingName(kind))?;
        match kind {
            "client" => Target::client(name).map_err(|_| TargetError::NotAClientId(name.into())),
            "user" => Ok(Target::user(name)),
            _ => Ok(Target::room(name)),
        }
    }

    /// The wire `type`: `client`, `user`, `room` or `broadcast`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Client(_) => "client",
            Target::User(_) => "user",
            Target::Room(_) => "room",
            Target::Broadcast => "broadcast",
        }
    }

    /// The user or room name (`None` for a client or broadcast; see [`fmt::Display`]).
    pub fn name(&self) -> Option<&str> {
        match self {
            Target::User(name) | Target::Room(name) => Some(name),
            Target::Client(_) | Target::Broadcast => None,
        }
    }

    /// Whether an exclude list applies (rooms and broadcasts only, as in Ignis).
    pub fn honours_exclude(&self) -> bool {
        matches!(self, Target::Room(_) | Target::Broadcast)
    }

    /// The Ignis Redis channel: `ws:client:{id}`, `ws:user:{id}`, `ws:room:{room}` or
    /// `ws:broadcast`.
    pub fn channel(&self) -> String {
        use super::channel;
        match self {
            Target::Client(id) => channel::client(id),
            Target::User(user) => channel::user(user),
            Target::Room(room) => channel::room(room),
            Target::Broadcast => channel::BROADCAST.to_owned(),
        }
    }
}

/// The wire `target` value: the client id, user id or room name; empty for a broadcast.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Client(id) => fmt::Display::fmt(id, f),
            Target::User(name) | Target::Room(name) => f.write_str(name),
            Target::Broadcast => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_kinds_round_trip() {
        let id = ClientId::new_v4().to_string();
        for (kind, name) in [("client", id.as_str()), ("user", "u"), ("room", "r")] {
            let target = Target::parse(kind, Some(name)).unwrap();
            assert_eq!((target.kind(), target.to_string()), (kind, name.to_owned()));
        }
        assert_eq!(Target::parse("broadcast", Some("x")), Ok(Target::Broadcast));
    }

    #[test]
    fn bad_pairs_say_what_is_wrong() {
        assert_eq!(
            Target::parse("everyone", Some("x")),
            Err(TargetError::UnknownKind)
        );
        assert_eq!(
            Target::parse("room", Some("")),
            Err(TargetError::MissingName("room"))
        );
        assert_eq!(
            Target::parse("user", None),
            Err(TargetError::MissingName("user"))
        );
        assert_eq!(
            Target::parse("client", Some("c-1")),
            Err(TargetError::NotAClientId("c-1".into()))
        );
    }

    #[test]
    fn only_rooms_and_broadcasts_honour_exclude() {
        assert!(Target::room("r").honours_exclude());
        assert!(Target::Broadcast.honours_exclude());
        assert!(!Target::user("u").honours_exclude());
        assert!(!Target::Client(ClientId::new_v4()).honours_exclude());
    }
}

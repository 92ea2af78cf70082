//! Which rooms keep history and which track presence, and where each lives: in this
//! process (a single node) or in Redis (through the [`Remote`](super::remote::Remote)).
//!
//! # Contract
//!
//! Decided once when the engine starts and never changed. A history room's message goes
//! through [`Handle::publish_positioned`](super::Handle): on a single node it gets its
//! offset from [`MemoryHistory::append`], which queues it for every shard under the
//! room's lock; with Redis it is published through the remote's script, which gives the
//! offset, and every node (this one included) delivers it when Redis sends it back, so
//! the order of a room's messages is Redis' on every node.

use std::sync::Arc;

use crate::history::HistorySettings;
use crate::history::memory::MemoryHistory;
use crate::presence::LocalPresence;
use crate::rooms::glob::RoomPolicy;

/// The rooms that keep history, and where their history lives.
pub(crate) struct HistoryRooms {
    /// Which rooms (`{userId}` matching any user).
    pub rooms: RoomPolicy,
    /// The bounds.
    pub settings: HistorySettings,
    /// The store on a single node; `None` with Redis.
    pub memory: Option<MemoryHistory>,
}

/// The rooms whose members are tracked.
pub(crate) struct PresenceRooms {
    /// Which rooms.
    pub rooms: RoomPolicy,
    /// This process's members of them.
    pub local: Arc<LocalPresence>,
    /// Whether the fleet's view is in Redis (else `local` is the whole answer).
    pub in_redis: bool,
}

/// History and presence, each when configured.
#[derive(Default)]
pub(crate) struct RoomFeatures {
    /// Rooms that keep history.
    pub history: Option<HistoryRooms>,
    /// Rooms that track presence.
    pub presence: Option<PresenceRooms>,
}

impl RoomFeatures {
    /// From the compiled room lists; `with_redis` puts history and presence in Redis.
    pub fn new(
        history: Option<RoomPolicy>,
        settings: HistorySettings,
        presence: Option<RoomPolicy>,
        with_redis: bool,
    ) -> Self {
        RoomFeatures {
            history: history.map(|rooms| HistoryRooms {
                rooms,
                settings,
                memory: (!with_redis).then(|| MemoryHistory::new(settings)),
            }),
            presence: presence.map(|rooms| PresenceRooms {
                rooms,
                local: Arc::default(),
                in_redis: with_redis,
            }),
        }
    }

    /// The history settings when `room` keeps history.
    pub fn history_of(&self, room: &str) -> Option<&HistoryRooms> {
        self.history
            .as_ref()
            .filter(|h| h.rooms.matches_any_user(room))
    }

    /// The presence rooms when `room` is one of them.
    pub fn presence_of(&self, room: &str) -> Option<&PresenceRooms> {
        self.presence
            .as_ref()
            .filter(|p| p.rooms.matches_any_user(room))
    }
}

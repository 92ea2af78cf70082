//! The [`Handle`]'s history and presence: publishing to a history room, reading a
//! room's history and presence (fleet-wide with Redis), announcing joins and leaves of
//! presence rooms. Where each lives is [`super::rooms`]'s decision.

use std::sync::Arc;
use std::time::Instant;

use super::command::{Delivery, exclude_set};
use super::handle::Handle;
use super::remote::RemoteError;
use crate::history::{Query, Snapshot};
use crate::id::ClientId;
use crate::presence::PresenceEntry;
use crate::protocol::outbound::{PresenceChange, presence_change_frame};
use crate::protocol::{Frame, Target};

/// Why a history or presence read has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecallError {
    /// The room is not one of `history_rooms`; add a pattern that matches it.
    #[error("room `{0}` keeps no history (it matches no history_rooms pattern)")]
    NoHistory(String),
    /// The room is not one of `presence_rooms`; add a pattern that matches it.
    #[error("room `{0}` tracks no presence (it matches no presence_rooms pattern)")]
    NoPresence(String),
    /// The history or presence lives in Redis, which did not answer.
    #[error(transparent)]
    Unavailable(#[from] RemoteError),
}

impl Handle {
    /// Whether `room` keeps history.
    pub fn keeps_history(&self, room: &str) -> bool {
        self.router.features.history_of(room).is_some()
    }

    /// Whether `room` tracks presence.
    pub fn tracks_presence(&self, room: &str) -> bool {
        self.router.features.presence_of(room).is_some()
    }

    /// Publishes `frame` to history room `room`: its offset is assigned and it is kept
    /// (in memory, or in Redis by the remote's script), then delivered to the room's
    /// members everywhere in offset order.
    pub(crate) fn publish_positioned(&self, room: &Arc<str>, mut frame: Frame, exclude: &[String]) {
        let Some(history) = self.router.features.history_of(room) else {
            return;
        };
        match (&history.memory, self.router.remote.get()) {
            (Some(memory), _) => {
                let exclude = exclude_set(exclude);
                let broker = &self.router.broker;
                // Marked before it is kept: the history's copy shares the compression.
                broker.prepare(&mut frame);
                memory.append(room, &frame, Instant::now(), |frame, position| {
                    broker.deliver(Delivery {
                        target: Target::Room(room.clone()),
                        frame,
                        exclude,
                        stamp: 0,
                        position: Some(position),
                    });
                });
            }
            (None, Some(remote)) => {
                if remote.publish_positioned(room, &frame, exclude) {
                    self.router.metrics.redis_queued.inc();
                }
            }
            (None, None) => {}
        }
    }

    /// Reads `room`'s history: the latest `query.limit` messages, or those after
    /// `query.since`, oldest first, with the room's epoch and top offset (fleet-wide
    /// with Redis).
    pub async fn history(&self, room: &str, query: Query) -> Result<Snapshot, RecallError> {
        let Some(history) = self.router.features.history_of(room) else {
            return Err(RecallError::NoHistory(room.to_owned()));
        };
        let query = Query {
            limit: query.limit.min(history.settings.size),
            ..query
        };
        match (&history.memory, self.router.remote.get()) {
            (Some(memory), _) => Ok(memory.read(room, &query, Instant::now())),
            (None, Some(remote)) => Ok(remote.read_history(room, &query).await?),
            (None, None) => Err(RecallError::NoHistory(room.to_owned())),
        }
    }

    /// The clients in presence room `room`, on every node, sorted by id.
    pub async fn presence(&self, room: &str) -> Result<Vec<PresenceEntry>, RecallError> {
        let Some(presence) = self.router.features.presence_of(room) else {
            return Err(RecallError::NoPresence(room.to_owned()));
        };
        let Some(remote) = self.router.remote.get().filter(|_| presence.in_redis) else {
            return Ok(presence.local.members(room));
        };
        let read = remote.read_presence(room).await?;
        // Clients of a node that died: the script announced their leave to the other
        // nodes; this node's members hear it here.
        for gone in read.expired {
            let frame = presence_change_frame(PresenceChange::Leave, room, &gone);
            self.deliver_local(Target::room(room), frame, &[gone.id]);
        }
        // This node's own members are in the answer even when their join is still in
        // the publish queue (a client asking right after joining sees itself).
        let mut current = read.current;
        current.extend(presence.local.members(room));
        current.sort();
        current.dedup();
        Ok(current)
    }

    /// A client joined presence room `room`: record it and tell the room's other
    /// members (`ws:join`), here and on the other nodes.
    pub(crate) fn presence_joined(
        &self,
        room: &Arc<str>,
        client: ClientId,
        user: Option<Arc<str>>,
    ) {
        let Some(presence) = self.router.features.presence_of(room) else {
            return;
        };
        let entry = PresenceEntry {
            id: client.to_string(),
            user_id: user.as_deref().map(str::to_owned),
        };
        let frame = presence_change_frame(PresenceChange::Join, room, &entry);
        let remote = self.router.remote.get().filter(|_| presence.in_redis);
        let joined = presence.local.join(room, client, user, || {
            if let Some(remote) = remote {
                remote.presence_join(room, &entry, &frame);
            }
        });
        if joined {
            self.deliver_local(Target::Room(room.clone()), frame, &[entry.id]);
        }
    }

    /// A client left presence room `room` (or disconnected): forget it and tell the
    /// room's other members (`ws:leave`), here and on the other nodes.
    pub(crate) fn presence_left(&self, room: &str, client: ClientId, user: Option<&str>) {
        let Some(presence) = self.router.features.presence_of(room) else {
            return;
        };
        let entry = PresenceEntry {
            id: client.to_string(),
            user_id: user.map(str::to_owned),
        };
        let frame = presence_change_frame(PresenceChange::Leave, room, &entry);
        let remote = self.router.remote.get().filter(|_| presence.in_redis);
        let left = presence.local.leave(room, &client, || {
            if let Some(remote) = remote {
                remote.presence_leave(room, &entry.id, &frame);
            }
        });
        if left {
            self.deliver_local(Target::room(room), frame, &[entry.id]);
        }
    }
}

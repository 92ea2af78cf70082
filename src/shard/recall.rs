//! A member's questions about its room: `ws:history` and `ws:presence`, answered to it
//! alone (read from memory, or from Redis fleet-wide).

use std::future::Future;
use std::rc::Rc;

use super::index::Slot;
use super::session::run_local;
use super::state::Shard;
use crate::history::Query;
use crate::history::frames::history_frame;
use crate::history::request::{HistoryRequest, PresenceRequest};
use crate::protocol::Frame;
use crate::protocol::outbound::presence_frame;
use crate::routing::{Handle, RecallError};

impl Shard {
    /// Answers `ws:history` from a member of the room; an `error` otherwise.
    pub(crate) fn answer_history(self: &Rc<Self>, slot: Slot, request: HistoryRequest) {
        let HistoryRequest { room, limit, since } = request;
        let has_it = self.ctx.handle.keeps_history(&room);
        let query = Query {
            since,
            limit: limit.unwrap_or(usize::MAX),
        };
        let metrics = self.metrics.clone();
        let read = |handle: Handle, room: String| async move {
            let answer = handle.history(&room, query).await;
            if answer.is_err() {
                metrics.history_read_failures.inc();
            }
            answer.map(|snapshot| history_frame(&room, &snapshot))
        };
        let too_big = "ws:history: the answer does not fit in this client's queue now (backpressure_limit); ask for fewer (limit) or later";
        self.answer_member(slot, (room, "history", has_it), read, too_big);
    }

    /// Answers `ws:presence` from a member of the room; an `error` otherwise.
    pub(crate) fn answer_presence(self: &Rc<Self>, slot: Slot, request: PresenceRequest) {
        let PresenceRequest { room } = request;
        let has_it = self.ctx.handle.tracks_presence(&room);
        let read = |handle: Handle, room: String| async move {
            let clients = handle.presence(&room).await?;
            Ok(presence_frame(&room, &clients))
        };
        let too_big = "ws:presence: the answer does not fit in this client's queue now (backpressure_limit); ask later";
        self.answer_member(slot, (room, "presence", has_it), read, too_big);
    }

    /// Refuses `ws:{what}` about `room` from a non-member or for a room without it;
    /// otherwise runs `read` and sends its frame (or an error that says what failed, or
    /// `too_big` when the answer does not fit in the client's queue), written at once.
    fn answer_member<F>(
        self: &Rc<Self>,
        slot: Slot,
        (room, what, has_it): (String, &'static str, bool),
        read: impl FnOnce(Handle, String) -> F,
        too_big: &'static str,
    ) where
        F: Future<Output = Result<Frame, RecallError>> + 'static,
    {
        if !self.state.borrow().index.is_member(&room, slot) {
            let text = format!("ws:{what}: not a member of room {room}; join it first");
            return self.send_error_message(slot, &text);
        }
        if !has_it {
            return self.send_error_message(slot, &format!("ws:{what}: room {room} has no {what}"));
        }
        let Some(client) = self.state.borrow().conns.get(slot).map(|e| e.conn.id()) else {
            return;
        };
        let (shard, answer) = (self.clone(), read(self.ctx.handle.clone(), room));
        run_local(Box::pin(async move {
            let answer = answer.await;
            let Some(slot) = shard.slot_of(&client) else {
                return;
            };
            match answer {
                Ok(frame) => {
                    if !shard.send_frame(slot, &frame) {
                        shard.send_error_message(slot, too_big);
                    }
                }
                Err(error) => shard.send_error_message(slot, &format!("ws:{what}: {error}")),
            }
            shard.flush_dirty();
        }));
    }
}

//! A member's questions about its room: `ws:history` and `ws:presence`, answered to it
//! alone (read from memory, or from Redis fleet-wide).

use std::rc::Rc;

use super::index::Slot;
use super::session::run_local;
use super::state::Shard;
use crate::history::Query;
use crate::history::frames::history_frame;
use crate::history::request::{HistoryRequest, PresenceRequest};
use crate::protocol::outbound::presence_frame;

impl Shard {
    /// Answers `ws:history` from a member of the room; an `error` otherwise.
    pub(crate) fn answer_history(self: &Rc<Self>, slot: Slot, request: HistoryRequest) {
        let HistoryRequest { room, limit, since } = request;
        if let Some(refusal) =
            self.refusal(slot, &room, self.ctx.handle.keeps_history(&room), "history")
        {
            return self.send_error_message(slot, &refusal);
        }
        let Some(client) = self.client_of(slot) else {
            return;
        };
        let (shard, handle) = (self.clone(), self.ctx.handle.clone());
        let query = Query {
            since,
            limit: limit.unwrap_or(usize::MAX),
        };
        run_local(Box::pin(async move {
            let answer = handle.history(&room, query).await;
            let Some(slot) = shard.slot_of(&client) else {
                return;
            };
            match answer {
                Ok(snapshot) => {
                    if !shard.send_frame(slot, &history_frame(&room, &snapshot)) {
                        let text = "ws:history: the answer does not fit in this client's queue now (backpressure_limit); ask for fewer (limit) or later";
                        shard.send_error_message(slot, text);
                    }
                }
                Err(error) => {
                    shard.metrics.history_read_failures.inc();
                    shard.send_error_message(slot, &format!("ws:history: {error}"));
                }
            }
            shard.flush_dirty();
        }));
    }

    /// Answers `ws:presence` from a member of the room; an `error` otherwise.
    pub(crate) fn answer_presence(self: &Rc<Self>, slot: Slot, request: PresenceRequest) {
        let PresenceRequest { room } = request;
        if let Some(refusal) = self.refusal(
            slot,
            &room,
            self.ctx.handle.tracks_presence(&room),
            "presence",
        ) {
            return self.send_error_message(slot, &refusal);
        }
        let Some(client) = self.client_of(slot) else {
            return;
        };
        let (shard, handle) = (self.clone(), self.ctx.handle.clone());
        run_local(Box::pin(async move {
            let answer = handle.presence(&room).await;
            let Some(slot) = shard.slot_of(&client) else {
                return;
            };
            match answer {
                Ok(clients) => {
                    if !shard.send_frame(slot, &presence_frame(&room, &clients)) {
                        let text = "ws:presence: the answer does not fit in this client's queue now (backpressure_limit); ask later";
                        shard.send_error_message(slot, text);
                    }
                }
                Err(error) => shard.send_error_message(slot, &format!("ws:presence: {error}")),
            }
            shard.flush_dirty();
        }));
    }

    /// Why `ws:{what}` about `room` is refused for this connection, if it is.
    fn refusal(&self, slot: Slot, room: &str, has_it: bool, what: &str) -> Option<String> {
        if !self.state.borrow().index.is_member(room, slot) {
            return Some(format!(
                "ws:{what}: not a member of room {room}; join it first"
            ));
        }
        (!has_it).then(|| format!("ws:{what}: room {room} has no {what}"))
    }

    fn client_of(&self, slot: Slot) -> Option<crate::id::ClientId> {
        self.state
            .borrow()
            .conns
            .get(slot)
            .map(|entry| entry.conn.id())
    }
}

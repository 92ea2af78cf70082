//! Joins to history rooms: `ws:joined`, recovery of what a client missed (`since`), and
//! the guard that gives a joining member every message of the room exactly once, in
//! offset order, across the moment it joins.
//!
//! # Contract
//!
//! A member that joins a history room is in the room's index at once, and has a guard
//! ([`Syncs`]) until its history read is answered and every message the read covered
//! has gone by:
//!
//! 1. *Fetching*: the read is under way. Every positioned message of the room for this
//!    member is held in the guard (at most [`MAX_HELD`]; past it nothing is replayed and
//!    `ws:joined` says `recovered: false` at the newest offset, even for a join without
//!    `since`, so no gap goes unnoticed). Each guard has a serial: an answer is taken by
//!    the guard of its own read only (a member may leave and join again meanwhile).
//! 2. The answer comes (at once on a single node; from Redis on the query connection):
//!    the member gets the missed messages (when it asked with `since` and the history
//!    covers it), then `ws:joined` with the room's epoch and top offset, then the held
//!    messages after that top.
//! 3. *Skipping*: messages at or below the last offset it got are skipped for it (they
//!    were still on their way to this shard when the history was read); the first later
//!    one ends the guard.
//!
//! This holds because a shard receives a room's positioned messages in offset order,
//! and any message above the top the read saw reaches this shard after the member was
//! in the index. A guard goes with its member's leave or disconnect. A recovery never
//! loses part of itself silently: a frame of it that would pass the backpressure limit
//! closes the client as a slow consumer (1008), and it recovers again when it comes
//! back. Everything runs on the shard's thread.

use std::sync::Arc;

use ahash::AHashMap;

use super::index::Slot;
use super::session::run_local;
use super::state::Shard;
use crate::history::frames::joined_frame;
use crate::history::{Position, Query, Since};
use crate::id::ClientId;
use crate::protocol::Frame;
use crate::routing::RecallError;

/// Messages a recovering member may hold while its history read is under way.
pub(crate) const MAX_HELD: usize = 4096;

/// Guards of the members of this shard that are joining history rooms.
#[derive(Default)]
pub(crate) struct Syncs {
    rooms: AHashMap<Arc<str>, RoomSyncs>,
    /// The serial of the last guard started: an answer is for the guard with its serial
    /// only (a member may leave and join again while an older read is under way).
    serial: u64,
}

/// One room's guards, by member.
pub(crate) type RoomSyncs = AHashMap<ClientId, Phase>;

/// Where a joining member is.
pub(crate) enum Phase {
    /// Its history read (number `serial`) is under way; live messages wait here, up to
    /// [`MAX_HELD`]; `last` is the newest one that arrived, held or not.
    Fetching {
        serial: u64,
        held: Vec<(Position, Frame)>,
        last: Option<Position>,
        overflowed: bool,
    },
    /// It got everything up to `until` of `epoch`; those still arriving are skipped.
    Skipping { until: u64, epoch: Arc<str> },
}

impl Syncs {
    /// Whether no member is joining.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Takes a room's guards out for a delivery walk ([`intercept`]); give them back with
    /// [`Syncs::put_back`].
    pub fn take(&mut self, room: &str) -> Option<(Arc<str>, RoomSyncs)> {
        self.rooms.remove_entry(room)
    }

    /// Returns a room's remaining guards.
    pub fn put_back(&mut self, room: Arc<str>, syncs: RoomSyncs) {
        if !syncs.is_empty() {
            self.rooms.insert(room, syncs);
        }
    }

    /// Forgets a member's guard (it left the room or disconnected).
    pub fn remove(&mut self, room: &str, client: &ClientId) {
        if let Some(syncs) = self.rooms.get_mut(room) {
            syncs.remove(client);
            if syncs.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// Starts a member's guard; returns the serial its history read answers to.
    fn start(&mut self, room: Arc<str>, client: ClientId) -> u64 {
        self.serial += 1;
        let phase = Phase::Fetching {
            serial: self.serial,
            held: Vec::new(),
            last: None,
            overflowed: false,
        };
        self.rooms.entry(room).or_default().insert(client, phase);
        self.serial
    }

    /// Ends the fetching phase of read `serial`: what was held; `None` when the member
    /// is no longer waiting for that read (it left, or joined again since).
    fn fetched(&mut self, room: &str, client: &ClientId, serial: u64) -> Option<Held> {
        match self.rooms.get_mut(room)?.get_mut(client)? {
            Phase::Fetching {
                serial: waiting,
                held,
                last,
                overflowed,
            } if *waiting == serial => Some(Held {
                messages: std::mem::take(held),
                last: last.take(),
                overflowed: *overflowed,
            }),
            _ => None,
        }
    }

    fn skip_until(&mut self, room: &str, client: ClientId, until: u64, epoch: Arc<str>) {
        if let Some(syncs) = self.rooms.get_mut(room) {
            syncs.insert(client, Phase::Skipping { until, epoch });
        }
    }
}

/// What a member's guard held while its history read was under way.
struct Held {
    messages: Vec<(Position, Frame)>,
    /// The newest message that arrived meanwhile, held or not.
    last: Option<Position>,
    /// Some had to be dropped ([`MAX_HELD`]).
    overflowed: bool,
}

/// Whether the positioned `frame` must not be queued for member `client` now (held or
/// skipped); ends a guard the message is past.
pub(crate) fn intercept(
    syncs: &mut RoomSyncs,
    client: &ClientId,
    position: &Position,
    frame: &Frame,
) -> bool {
    let Some(phase) = syncs.get_mut(client) else {
        return false;
    };
    match phase {
        Phase::Fetching {
            held,
            last,
            overflowed,
            ..
        } => {
            match held.len() < MAX_HELD {
                true => held.push((position.clone(), frame.clone())),
                false => *overflowed = true,
            }
            *last = Some(position.clone());
            true
        }
        Phase::Skipping { until, epoch } => {
            if **epoch == *position.epoch && position.offset <= *until {
                return true;
            }
            syncs.remove(client);
            false
        }
    }
}

impl Shard {
    /// A member just joined history room `room`: read its history and send what it
    /// missed and `ws:joined` (see the module doc).
    pub(crate) fn begin_recovery(
        self: &std::rc::Rc<Self>,
        client: ClientId,
        room: Arc<str>,
        since: Option<Since>,
    ) {
        let serial = self.state.borrow_mut().syncs.start(room.clone(), client);
        let asked = since.is_some();
        let (shard, handle) = (self.clone(), self.ctx.handle.clone());
        run_local(Box::pin(async move {
            let answer = handle.history(&room, Query::recover(since)).await;
            shard.end_recovery((client, serial), &room, asked, answer);
        }));
    }

    /// History read `serial` of a joining member was answered.
    fn end_recovery(
        &self,
        (client, serial): (ClientId, u64),
        room: &Arc<str>,
        asked: bool,
        answer: Result<crate::history::Snapshot, RecallError>,
    ) {
        let fetched = self.state.borrow_mut().syncs.fetched(room, &client, serial);
        let (Some(held), Some(slot)) = (fetched, self.slot_of(&client)) else {
            return;
        };
        let snapshot = match answer {
            Ok(snapshot) => snapshot,
            Err(error) => return self.recovery_failed(slot, client, room, held, &error),
        };
        let (until, epoch) = match held.overflowed {
            false => self.send_recovery(slot, room, asked, snapshot, held.messages),
            // Too much arrived meanwhile: say so, and go on after the newest.
            true => self.send_overflowed(slot, room, snapshot, held.last),
        };
        self.state
            .borrow_mut()
            .syncs
            .skip_until(room, client, until, epoch);
        // The answer may come on a task of its own: write it now.
        self.flush_dirty();
    }

    /// Sends the replay (when `since` is covered), `ws:joined`, then what was held above
    /// the read's top; returns the position the member is at.
    fn send_recovery(
        &self,
        slot: Slot,
        room: &str,
        asked: bool,
        snapshot: crate::history::Snapshot,
        held: Vec<(Position, Frame)>,
    ) -> (u64, Arc<str>) {
        let recovered = asked.then_some(snapshot.covered);
        self.count_join(recovered);
        let mut sent = true;
        if recovered == Some(true) {
            for publication in &snapshot.publications {
                sent &= self.send_recovered(slot, &publication.frame);
            }
        }
        let (mut until, mut epoch) = (snapshot.top, snapshot.epoch);
        sent &= self.send_recovered(slot, &joined_frame(room, &epoch, until, recovered));
        for (position, frame) in held {
            if sent && (position.epoch != epoch || position.offset > until) {
                sent &= self.send_recovered(slot, &frame);
                (until, epoch) = (position.offset, position.epoch);
            }
        }
        (until, epoch)
    }

    /// More than [`MAX_HELD`] messages arrived during the read: nothing is replayed and
    /// `ws:joined` says `recovered: false` at the newest one (whether the join asked to
    /// recover or not), so the client knows to reload and no gap goes unnoticed.
    fn send_overflowed(
        &self,
        slot: Slot,
        room: &str,
        snapshot: crate::history::Snapshot,
        last: Option<Position>,
    ) -> (u64, Arc<str>) {
        self.count_join(Some(false));
        let (until, epoch) = match last {
            Some(last) => (last.offset, last.epoch),
            None => (snapshot.top, snapshot.epoch),
        };
        self.send_recovered(slot, &joined_frame(room, &epoch, until, Some(false)));
        (until, epoch)
    }

    fn count_join(&self, recovered: Option<bool>) {
        self.metrics.history_joins.inc();
        match recovered {
            Some(true) => self.metrics.history_recovered.inc(),
            Some(false) => self.metrics.history_not_recovered.inc(),
            None => {}
        }
    }

    /// Queues one frame of a member's recovery. A recovery never drops part of itself
    /// silently: one that does not fit under the backpressure limit closes the client
    /// as a slow consumer (1008), and it recovers from where it was when it comes back.
    /// Returns whether the frame was queued.
    fn send_recovered(&self, slot: Slot, frame: &Frame) -> bool {
        if self.send_frame(slot, frame) {
            return true;
        }
        if self.close(slot, crate::protocol::CloseReason::SlowConsumer) {
            self.metrics.slow_consumers_closed.inc();
        }
        false
    }

    /// The history could not be read: the member stays, gets what was held, and an
    /// `error` that says so.
    fn recovery_failed(
        &self,
        slot: Slot,
        client: ClientId,
        room: &str,
        held: Held,
        error: &RecallError,
    ) {
        self.state.borrow_mut().syncs.remove(room, &client);
        self.metrics.history_read_failures.inc();
        let text = format!(
            "ws:joined: the history of room {room} could not be read ({error}); live messages continue, leave and join again to recover"
        );
        self.send_error_message(slot, &text);
        for (_, frame) in held.messages {
            self.send_recovered(slot, &frame);
        }
        self.flush_dirty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(offset: u64, epoch: &str) -> Position {
        Position {
            offset,
            epoch: Arc::from(epoch),
        }
    }

    #[test]
    fn a_guard_holds_then_skips_until_past_its_top() {
        let (mut syncs, client, other) = (Syncs::default(), ClientId::new_v4(), ClientId::new_v4());
        let room: Arc<str> = Arc::from("r");
        let first = syncs.start(room.clone(), client);
        let serial = syncs.start(room.clone(), client);
        let frame = Frame::from_raw("m", None);
        let (name, mut guards) = syncs.take("r").unwrap();
        assert!(intercept(&mut guards, &client, &position(5, "e"), &frame));
        assert!(!intercept(&mut guards, &other, &position(5, "e"), &frame));
        syncs.put_back(name, guards);
        assert!(
            syncs.fetched("r", &client, first).is_none(),
            "an older read's answer"
        );
        let held = syncs.fetched("r", &client, serial).unwrap();
        assert_eq!((held.messages.len(), held.overflowed), (1, false));
        assert_eq!(held.last, Some(position(5, "e")));
        syncs.skip_until("r", client, 6, Arc::from("e"));
        let (name, mut guards) = syncs.take("r").unwrap();
        assert!(intercept(&mut guards, &client, &position(6, "e"), &frame));
        assert!(!intercept(&mut guards, &client, &position(7, "e"), &frame));
        assert!(guards.is_empty(), "the first later message ends the guard");
        syncs.put_back(name, guards);
        assert!(syncs.is_empty());
    }

    #[test]
    fn another_epoch_ends_the_guard_and_holding_is_bounded() {
        let (mut syncs, client) = (Syncs::default(), ClientId::new_v4());
        let serial = syncs.start(Arc::from("r"), client);
        let frame = Frame::from_raw("m", None);
        let (name, mut guards) = syncs.take("r").unwrap();
        for offset in 0..=MAX_HELD as u64 {
            assert!(intercept(
                &mut guards,
                &client,
                &position(offset, "e"),
                &frame
            ));
        }
        syncs.put_back(name, guards);
        let held = syncs.fetched("r", &client, serial).unwrap();
        assert_eq!((held.messages.len(), held.overflowed), (MAX_HELD, true));
        assert_eq!(held.last, Some(position(MAX_HELD as u64, "e")));
        syncs.skip_until("r", client, 10, Arc::from("e"));
        let (_, mut guards) = syncs.take("r").unwrap();
        assert!(!intercept(&mut guards, &client, &position(3, "x"), &frame));
        assert!(guards.is_empty());
    }
}

//! Writing dirty sockets: each dirty socket whose write pacing allows it is written once,
//! with one vectored write, in slices of at most [`FLUSH_SLICE`] so the inbox and reads
//! run in between; the others wait for their next write time (the flusher task writes
//! them then). See [`super::pacing`] for how the write interval is chosen.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use super::encrypt::seal;
use super::index::Slot;
use super::pacing::Micros;
use super::state::{Shard, ShardState};
use super::table::Entry;
use crate::protocol::outbound::error_frame;
use crate::protocol::{ErrorText, Frame};

/// The longest a flush writes before it lets the shard's other work (the inbox, reads)
/// run; the rest is written right after. Without it, a message arriving during a long
/// flush would wait for all of it before even being queued.
const FLUSH_SLICE: Micros = 500;
/// Writes between two readings of the clock during a flush.
const CLOCK_EVERY: usize = 16;

/// One flush pass: what it may write and what it wrote.
struct Pass {
    now: Micros,
    /// The clock as last read.
    clock: Micros,
    /// Write interval of a busy socket.
    interval: Micros,
    /// Ignore pacing and the slice (shutdown).
    everything: bool,
    out_of_time: bool,
    sockets: usize,
    frames: usize,
}

impl Pass {
    /// Whether `entry` must wait; `Some(its write time)` keeps it in the dirty list.
    fn waits(&self, entry: &Entry) -> Option<Micros> {
        let paced = entry.write_after() > self.now && !self.everything;
        (self.out_of_time || paced).then_some(entry.write_after())
    }

    /// Writes `entry` and schedules its next write time.
    fn write(&mut self, entry: &mut Entry, shard: &Shard) {
        entry.clean();
        self.sockets += 1;
        self.frames += entry.conn.queued_frames();
        // The pass' clock is on the stamps' epoch: a latency sample needs no clock read.
        entry.flush_at(&shard.metrics, self.clock + 1);
        if self.sockets.is_multiple_of(CLOCK_EVERY) {
            self.clock = shard.clock.now();
            self.out_of_time =
                !self.everything && self.clock.saturating_sub(self.now) >= FLUSH_SLICE;
        }
        // The socket's own write time: a busy socket is written once per interval.
        entry.write_again_after(self.clock.saturating_add(self.interval));
    }
}

impl Shard {
    /// Writes every dirty socket whose write pacing allows it; wakes the flusher for the
    /// others.
    pub fn flush_dirty(&self) {
        let now = self.clock.now();
        match self.next_write() {
            None => {}
            Some(due) if due > now => self.flush_wake.notify_one(),
            Some(_) => self.flush(now, false),
        }
    }

    /// When the next dirty socket may be written, on the shard's clock.
    fn next_write(&self) -> Option<Micros> {
        self.state.borrow().dirty.earliest()
    }

    /// Writes every dirty socket now, whatever its pacing (shutdown).
    pub fn flush_all(&self) {
        self.flush(self.clock.now(), true);
    }

    /// When the next dirty socket may be written, if any is waiting.
    pub fn next_write_at(&self) -> Option<Instant> {
        Some(self.clock.instant(self.next_write()?))
    }

    fn flush(&self, now: Micros, everything: bool) {
        let started = Instant::now();
        let mut pacer = self.pacer.borrow_mut();
        let interval = u64::try_from(pacer.interval().as_micros()).unwrap_or(u64::MAX);
        let mut pass = Pass {
            now,
            clock: now,
            interval,
            everything,
            out_of_time: false,
            sockets: 0,
            frames: 0,
        };
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        let busy = dirty.len();
        dirty.retain(|slot| {
            let entry = conns.get_mut(slot)?;
            if entry.write_blocked() {
                // Its task writes it when the socket drains.
                entry.clean();
                return None;
            }
            let waits = pass.waits(entry);
            if waits.is_none() {
                pass.write(entry, self);
            }
            waits
        });
        let waiting = !dirty.is_empty();
        drop(state);
        self.metrics.socket_writes.add(pass.sockets as u64);
        pacer.record(started, busy, pass.sockets, pass.frames, started.elapsed());
        if waiting {
            self.flush_wake.notify_one();
        }
    }

    /// Flushes one connection whose socket became writable.
    pub fn flush_one(&self, slot: Slot) {
        self.with_entry(slot, |entry, _| entry.flush_unblocked(&self.metrics));
    }

    /// Queues a reply for one connection within the backpressure limit (`error`, `pong`,
    /// `connected`; allowed before authentication) and writes it soon. Returns false
    /// when it was dropped (the limit, or the connection is closing).
    pub fn reply(&self, slot: Slot, frame: Bytes) -> bool {
        let limit = self.backpressure.limit;
        let dropped = self.with_entry(slot, |entry, dirty| {
            if entry.conn.reply(frame, limit) {
                entry.mark_urgent(slot, dirty);
                return Some(false);
            }
            Some(entry.conn.is_open())
        });
        match dropped.flatten() {
            Some(false) => true,
            Some(true) => {
                self.metrics.backpressure_dropped.inc();
                false
            }
            None => false,
        }
    }

    /// Sends an `error` event; sealed like any other message when the client is
    /// encrypted (as Ignis does).
    pub fn send_error(&self, slot: Slot, text: ErrorText) {
        self.send_error_message(slot, text.text());
    }

    /// Sends an `error` event with any text (sealed for an encrypted client).
    pub fn send_error_message(&self, slot: Slot, text: &str) {
        self.send_frame(slot, &error_frame(text));
    }

    /// Sends one server event to one client (its own history, presence and `ws:joined`
    /// answers; an `error`): sealed when the client is encrypted, and written soon.
    /// Returns false when the backpressure limit (or closing) dropped it.
    pub fn send_frame(&self, slot: Slot, frame: &Frame) -> bool {
        let transformer = self.ctx.hooks.transformer.as_deref();
        let bytes = self.with_entry(slot, |entry, _| {
            let conn = &entry.conn;
            match conn.encryption() {
                Some(_) => seal(conn, &frame.payload(), transformer, &mut Vec::new()),
                None => self.wire_bytes(conn, frame),
            }
        });
        bytes.is_some_and(|bytes| self.reply(slot, bytes))
    }

    /// Sends one server event to one client as it is (never sealed: `connected`),
    /// compressed when the client takes it. False when it was dropped.
    pub fn reply_frame(&self, slot: Slot, frame: &Frame) -> bool {
        let bytes = self.with_entry(slot, |entry, _| self.wire_bytes(&entry.conn, frame));
        bytes.is_some_and(|bytes| self.reply(slot, bytes))
    }
}

/// The flusher task: writes the sockets that write pacing held back, when their next
/// write time comes.
pub(super) async fn flusher(shard: Rc<Shard>) {
    loop {
        shard.flush_wake.notified().await;
        while let Some(at) = shard.next_write_at() {
            if Instant::now() < at {
                tokio::time::sleep_until(at.into()).await;
            }
            shard.flush_dirty();
            // A flush writes for a bounded slice: let the inbox and reads in between.
            tokio::task::yield_now().await;
        }
    }
}

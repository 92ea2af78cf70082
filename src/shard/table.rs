//! A connection's entry in its shard's table: the pure connection state ([`Conn`]) plus
//! what the shard keeps about its socket — the [`Socket`] (plain or TLS), the wake-up of its task, and its
//! place in the write schedule (dirty flag, next write time, blocked).

use std::rc::Rc;
use std::time::Instant;

use tokio::sync::Notify;

use super::index::Slot;
use super::pacing::{DirtyList, Micros};
use super::socket::Socket;
use crate::admission::Permit;
use crate::conn::{Conn, Flushed};

/// One connection of the table.
pub(crate) struct Entry {
    /// The protocol, liveness, queue and membership of the connection.
    pub conn: Conn,
    socket: Rc<Socket>,
    /// Wakes the connection's task: closing, write blocked, or aborted.
    wake: Rc<Notify>,
    /// In the shard's dirty list, waiting for a flush.
    dirty: bool,
    /// The earliest time the shard may write this socket again (write pacing).
    write_after: Micros,
    /// The socket refused bytes; the task waits for writability and flushes.
    write_blocked: bool,
    /// When the shard adopted the connection.
    since: Instant,
    /// The connection's place under the connection caps (given back with the entry).
    _permit: Permit,
}

impl Entry {
    /// The entry of `conn`, read and written through `socket`, holding `permit`,
    /// adopted at `since`.
    pub fn new(conn: Conn, socket: Rc<Socket>, permit: Permit, since: Instant) -> Self {
        Entry {
            _permit: permit,
            since,
            conn,
            socket,
            wake: Rc::new(Notify::new()),
            dirty: false,
            write_after: 0,
            write_blocked: false,
        }
    }

    /// The wake-up the connection's task waits on.
    pub fn waker(&self) -> Rc<Notify> {
        self.wake.clone()
    }

    /// When the shard adopted the connection.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Wakes the connection's task (it re-reads the connection's state).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether the socket is waiting for writability.
    pub fn write_blocked(&self) -> bool {
        self.write_blocked
    }

    /// When the shard may write the socket next.
    pub fn write_after(&self) -> Micros {
        self.write_after
    }

    /// Queued frames will be written at the next flush the pacing allows.
    #[inline]
    pub fn mark_dirty(&mut self, slot: Slot, dirty: &mut DirtyList) {
        if !self.dirty {
            self.dirty = true;
            dirty.push(slot, self.write_after);
        }
    }

    /// Queued frames will be written at the next flush, whatever the pacing: replies and
    /// close frames answer this client and are not part of a fan-out.
    pub fn mark_urgent(&mut self, slot: Slot, dirty: &mut DirtyList) {
        self.write_after = 0;
        if self.dirty {
            dirty.expedite(0);
        } else {
            self.mark_dirty(slot, dirty);
        }
    }

    /// A close frame was queued: write it soon and let the task run its closing.
    pub fn closed(&mut self, slot: Slot, dirty: &mut DirtyList) {
        self.mark_urgent(slot, dirty);
        self.wake();
    }

    /// Leaves the dirty list (the flush that took it off is writing it or skipping it).
    pub fn clean(&mut self) {
        self.dirty = false;
    }

    /// Schedules the next write of this socket no earlier than `at`.
    pub fn write_again_after(&mut self, at: Micros) {
        self.write_after = at;
    }

    /// Writes what the socket takes now, telling the task what it must do next.
    pub fn flush(&mut self) -> Flushed {
        let socket = &self.socket;
        let flushed = self.conn.flush(|slices| socket.try_write_vectored(slices));
        let flushed = socket.settle(flushed);
        match flushed {
            Flushed::Done => {}
            Flushed::Blocked => {
                self.write_blocked = true;
                self.wake();
            }
            Flushed::CloseSent | Flushed::Failed => self.wake(),
        }
        flushed
    }

    /// The socket became writable: flush what waited.
    pub fn flush_unblocked(&mut self) {
        self.write_blocked = false;
        self.flush();
    }
}

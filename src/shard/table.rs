//! A connection's entry in its shard's table: the pure connection state ([`Conn`]) plus
//! what the shard keeps about its socket — the [`Socket`] (plain or TLS), the wake-up of its task, and its
//! place in the write schedule (dirty flag, next write time, blocked), and what its
//! latency metrics are measured from (see [`crate::metrics`]: the broker stamp of the
//! oldest delivery frame not yet written, and when the TCP connection was accepted).

use std::rc::Rc;

use tokio::sync::Notify;

use super::index::Slot;
use super::pacing::{DirtyList, Micros};
use super::socket::Socket;
use crate::admission::Permit;
use crate::conn::{Conn, Flushed};
use crate::metrics::ShardMetrics;

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
    /// Broker stamp of the oldest delivery frame not yet fully written (0: none).
    oldest_stamp: u64,
    /// When the TCP connection was accepted ([`crate::metrics::stamp_now`]).
    accepted_at: u64,
    /// The connection's place under the connection caps (given back with the entry).
    _permit: Permit,
}

impl Entry {
    /// The entry of `conn`, read and written through `socket`, holding `permit`;
    /// `accepted_at` is the [`crate::metrics::stamp_now`] of its TCP accept.
    pub fn new(conn: Conn, socket: Rc<Socket>, permit: Permit, accepted_at: u64) -> Self {
        Entry {
            _permit: permit,
            conn,
            socket,
            wake: Rc::new(Notify::new()),
            dirty: false,
            write_after: 0,
            write_blocked: false,
            oldest_stamp: 0,
            accepted_at,
        }
    }

    /// When its TCP connection was accepted ([`crate::metrics::stamp_now`]).
    pub fn accepted_at(&self) -> u64 {
        self.accepted_at
    }

    /// A delivery frame the broker stamped `stamp` was queued: the next write measures
    /// its latency from the oldest such stamp. One compare per delivery.
    #[inline]
    pub fn delivered(&mut self, stamp: u64) {
        if self.oldest_stamp == 0 {
            self.oldest_stamp = stamp;
        }
    }

    /// The wake-up the connection's task waits on.
    pub fn waker(&self) -> Rc<Notify> {
        self.wake.clone()
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

    /// Writes what the socket takes now, telling the task what it must do next; counts
    /// the bytes and, when the write carried deliveries, records their latency.
    pub fn flush(&mut self, metrics: &ShardMetrics) -> Flushed {
        self.flush_at(metrics, 0)
    }

    /// [`Entry::flush`] with `now` already read (a [`crate::metrics::stamp_now`] value;
    /// 0: read the clock if a latency sample needs it).
    pub fn flush_at(&mut self, metrics: &ShardMetrics, now: u64) -> Flushed {
        let socket = &self.socket;
        let mut sent = 0;
        let flushed = self.conn.flush(|slices| {
            let wrote = socket.try_write_vectored(slices);
            if let Ok(n) = wrote {
                sent += n;
            }
            wrote
        });
        let flushed = socket.settle(flushed);
        if sent > 0 {
            metrics.bytes_sent.add(sent as u64);
            self.record_latency(metrics, now);
        }
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
    pub fn flush_unblocked(&mut self, metrics: &ShardMetrics) {
        self.write_blocked = false;
        self.flush(metrics);
    }

    /// One delivery-latency sample after a write that carried bytes, if a delivery frame
    /// was waiting; the stamp is forgotten once the queue is empty.
    fn record_latency(&mut self, metrics: &ShardMetrics, now: u64) {
        if self.oldest_stamp == 0 {
            return;
        }
        let now = match now {
            0 => crate::metrics::stamp_now(),
            now => now,
        };
        let age = crate::metrics::micros_between(self.oldest_stamp, now);
        metrics.delivery_latency.record(age);
        if self.conn.queued_frames() == 0 {
            self.oldest_stamp = 0;
        }
    }
}

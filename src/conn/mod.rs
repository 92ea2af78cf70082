//! One WebSocket connection: its protocol state ([`machine`]), its outbound queue
//! ([`outbox`]) and the task that drives its socket ([`task`]).
//!
//! A [`Conn`] lives in its shard's connection table and is touched only by that shard's
//! thread: by the delivery walk (queueing frames), by the shard's sweeps (timeouts) and
//! by its own task (reading, authenticating, closing). The socket is shared between the
//! table (which writes) and the task (which reads and waits for writability).

pub mod encryption;
pub mod machine;
pub mod outbox;
pub(crate) mod task;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::id::ClientId;
use crate::protocol::CloseReason;
use crate::shard::index::Slot;
use crate::shard::pacing::{DirtyList, Micros};
use crate::ws::frame::close_frame;
use machine::{Machine, Phase};
use outbox::{Outbox, Push};

/// A connection as its shard sees it.
pub(crate) struct Conn {
    pub id: ClientId,
    pub stream: Rc<TcpStream>,
    /// Wakes the connection's task: closing, write blocked, or broken.
    pub wake: Rc<Notify>,
    pub machine: Machine,
    pub user_id: Option<Arc<str>>,
    /// Rooms joined through the index (the own-id room is `in_own_room`).
    pub rooms: Vec<Arc<str>>,
    pub in_own_room: bool,
    pub outbox: Outbox,
    /// In the shard's dirty list, waiting for the end-of-batch flush.
    pub dirty: bool,
    /// The earliest time the shard may write this socket again (write pacing).
    pub write_after: Micros,
    /// The socket refused bytes; the task waits for writability and flushes.
    pub write_blocked: bool,
    /// The socket failed or the transport idled out: drop without a close handshake.
    pub broken: bool,
    /// `on_connect` was called, so `on_disconnect` will be.
    pub connected_reported: bool,
    /// Last time any bytes arrived (transport idle timeout).
    pub last_rx: Instant,
    /// A transport ping is waiting for its pong.
    pub ping_sent: bool,
    /// Set for encrypted clients: their messages leave the shared fast path.
    pub encryption: Option<encryption::Encryption>,
    /// Plaintext bytes waiting in the shard's encrypt queue (counts toward the limit).
    pub pending_encrypt: usize,
}

impl Conn {
    pub fn new(id: ClientId, stream: Rc<TcpStream>, machine: Machine, now: Instant) -> Self {
        Conn {
            id,
            stream,
            wake: Rc::new(Notify::new()),
            machine,
            user_id: None,
            rooms: Vec::new(),
            in_own_room: false,
            outbox: Outbox::default(),
            dirty: false,
            write_after: 0,
            write_blocked: false,
            broken: false,
            connected_reported: false,
            last_rx: now,
            ping_sent: false,
            encryption: None,
            pending_encrypt: 0,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.machine.phase() == Phase::Authenticated
    }

    /// Queues a frame within the backpressure limit, marking the connection dirty.
    pub fn push(&mut self, slot: Slot, frame: Bytes, limit: usize, dirty: &mut DirtyList) -> Push {
        let pushed = self.outbox.push(frame, limit);
        if pushed == Push::Queued {
            self.mark_dirty(slot, dirty);
        }
        pushed
    }

    pub fn mark_dirty(&mut self, slot: Slot, dirty: &mut DirtyList) {
        if !self.dirty {
            self.dirty = true;
            dirty.push(slot, self.write_after);
        }
    }

    /// Marks the connection dirty and due now, whatever its write pacing: replies and
    /// close frames answer this client and are not part of a fan-out.
    pub fn mark_urgent(&mut self, slot: Slot, dirty: &mut DirtyList) {
        self.write_after = 0;
        if self.dirty {
            dirty.expedite(0);
        } else {
            self.mark_dirty(slot, dirty);
        }
    }

    /// Queues the close frame for `reason` (once) and wakes the task.
    pub fn close(&mut self, slot: Slot, reason: CloseReason, dirty: &mut DirtyList) -> bool {
        if !self.machine.begin_close() {
            return false;
        }
        self.outbox
            .push_unbounded(close_frame(reason.code(), reason.reason()));
        self.mark_urgent(slot, dirty);
        self.wake.notify_one();
        true
    }

    /// Gives up on the socket: nothing more is written.
    pub fn abort(&mut self) {
        self.broken = true;
        self.machine.begin_close();
        self.outbox.clear();
        self.wake.notify_one();
    }
}

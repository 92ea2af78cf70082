//! A shard's inbox: a bounded crossbeam queue of [`Command`]s plus an async wake-up.
//!
//! Any thread may send; only the owning shard receives. The shard never blocks on the
//! queue: it awaits the [`Notify`], then drains with `try_recv`. A send stores the command
//! first and notifies second, and `Notify` keeps one permit, so a wake-up is never lost.
//! A full inbox hands the command back to the sender, which counts the drop.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use tokio::sync::Notify;

use super::command::Command;
use super::placement::ShardId;

/// The sending side of one shard's inbox; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct ShardSender {
    shard: ShardId,
    queue: Sender<Command>,
    wake: Arc<Notify>,
}

/// The receiving side, owned by the shard thread.
#[derive(Debug)]
pub struct ShardInbox {
    queue: Receiver<Command>,
    wake: Arc<Notify>,
}

/// Creates the inbox of `shard` with room for `capacity` commands.
pub fn inbox(shard: ShardId, capacity: usize) -> (ShardSender, ShardInbox) {
    let (queue, receiver) = crossbeam_channel::bounded(capacity);
    let wake = Arc::new(Notify::new());
    (
        ShardSender {
            shard,
            queue,
            wake: wake.clone(),
        },
        ShardInbox {
            queue: receiver,
            wake,
        },
    )
}

impl ShardSender {
    /// The shard this sender reaches.
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// Commands waiting in the inbox now.
    pub fn depth(&self) -> usize {
        self.queue.len()
    }

    /// Queues a command; a full or closed inbox hands it back.
    pub fn send(&self, command: Command) -> Result<(), Command> {
        match self.queue.try_send(command) {
            Ok(()) => {
                self.wake.notify_one();
                Ok(())
            }
            Err(TrySendError::Full(c) | TrySendError::Disconnected(c)) => Err(c),
        }
    }
}

impl ShardInbox {
    /// Waits until something may have been queued.
    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    /// Takes the next command without blocking; `Err(true)` when every sender is gone.
    pub fn try_recv(&self) -> Result<Command, bool> {
        self.queue
            .try_recv()
            .map_err(|e| e == TryRecvError::Disconnected)
    }
}

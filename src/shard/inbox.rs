//! A shard's inbox: a bounded crossbeam queue plus an async wake-up.
//!
//! Any thread may send; only the owning shard receives. The shard never blocks on the
//! queue: it awaits the [`Notify`], then drains with `try_recv`. A send stores the command
//! first and notifies second, and `Notify` keeps one permit, so a wake-up is never lost.
//! A full inbox hands the command back to the sender, which counts the drop.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use tokio::sync::{Notify, oneshot};

use super::placement::ShardId;
use crate::id::ClientId;
use crate::protocol::Frame;

/// Who a delivery is for, resolved against the shard's local index.
#[derive(Debug, Clone)]
pub enum Target {
    /// One client (only its owner shard is asked).
    Client(ClientId),
    /// Every local session of a user.
    User(Arc<str>),
    /// Every local member of a room (including a client whose own id is the room name).
    Room(Arc<str>),
    /// Every authenticated local client.
    Broadcast,
}

/// Client ids a room or broadcast delivery skips.
pub type Exclude = Option<Arc<ahash::AHashSet<ClientId>>>;

/// A message for the local recipients of a target: the frame is shared, never copied.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Who.
    pub target: Target,
    /// What: the complete frame, encoded once by the broker.
    pub frame: Frame,
    /// Who not (room and broadcast only).
    pub exclude: Exclude,
}

/// Local answers to engine-wide queries.
#[derive(Debug)]
pub enum Query {
    /// Authenticated local members of a room.
    RoomClients(Arc<str>, oneshot::Sender<Vec<ClientId>>),
    /// Local sessions of a user.
    UserClients(Arc<str>, oneshot::Sender<Vec<ClientId>>),
    /// Whether a client is connected here.
    HasClient(ClientId, oneshot::Sender<bool>),
}

/// Everything a shard can be asked to do.
#[derive(Debug)]
pub enum Command {
    /// Deliver a frame to local recipients.
    Deliver(Delivery),
    /// Ignis `send(destination)` for a client id: deliver to it if it is connected here
    /// (publishing a client envelope), otherwise treat the id as a room name everywhere.
    Resolve(ClientId, Arc<str>, Frame),
    /// Make a local client join rooms (server-side, no validator).
    Join(ClientId, Vec<String>),
    /// Make a local client leave rooms.
    Leave(ClientId, Vec<String>),
    /// Close a local client with 1000.
    Disconnect(ClientId),
    /// Route a local client's messages through the embedder's transformer.
    EnableEncryption(ClientId),
    /// Answer a query.
    Query(Query),
    /// Close every client with 1001 and stop.
    Shutdown,
}

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

    /// Commands waiting in the inbox.
    pub fn backlog(&self) -> usize {
        self.queue.len()
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

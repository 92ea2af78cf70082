//! What a shard can be asked to do: the protocol of its inbox. Producers (the handle, the
//! broker, the Redis bridge through the handle) build these; only the shard that owns the
//! inbox acts on them.

use std::sync::Arc;

use ahash::AHashSet;
use tokio::sync::oneshot;

use crate::history::Position;
use crate::id::ClientId;
use crate::protocol::{Frame, Target};

pub use super::inspect::ClientInfo;

/// Client ids a room or broadcast delivery skips (`None`: nobody).
pub type Exclude = Option<Arc<AHashSet<ClientId>>>;

/// The set of `ids` that are client ids; anything else cannot name a connection and is
/// left out. `None` when nothing is left.
pub fn exclude_set(ids: &[String]) -> Exclude {
    let set: AHashSet<ClientId> = ids.iter().filter_map(|id| id.parse().ok()).collect();
    (!set.is_empty()).then(|| Arc::new(set))
}

/// A message for the local recipients of a target: the frame is shared, never copied.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Who.
    pub target: Target,
    /// What: the complete frame, encoded once.
    pub frame: Frame,
    /// Who not (rooms and broadcasts only).
    pub exclude: Exclude,
    /// When the broker took it ([`crate::metrics::stamp_now`]; 0 until then): what
    /// delivery latency is measured from.
    pub stamp: u64,
    /// Its place in its room's history, for a history room's message (the frame
    /// carries it too).
    pub position: Option<Position>,
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
    /// Every local room with its local member count (the dashboard's room summary).
    RoomCounts(oneshot::Sender<Vec<(Arc<str>, usize)>>),
    /// What a local client is (`None`: not connected here).
    ClientInfo(ClientId, oneshot::Sender<Option<ClientInfo>>),
}

/// Everything a shard can be asked to do.
#[derive(Debug)]
pub enum Command {
    /// Deliver a frame to local recipients.
    Deliver(Delivery),
    /// Ignis `send(destination)` for a client id: deliver to it if it is connected here
    /// (publishing a client envelope), otherwise treat the id as a room name everywhere.
    Resolve(ClientId, Frame),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_keeps_client_ids_only() {
        let id = ClientId::new_v4();
        let set = exclude_set(&[id.to_string(), "nope".into()]).expect("one id");
        assert!(set.contains(&id) && set.len() == 1);
        assert!(exclude_set(&["nope".into()]).is_none());
        assert!(exclude_set(&[]).is_none());
    }
}

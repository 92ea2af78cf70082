//! Room history: what a message's place in its room is ([`Position`]), what a client
//! asks for when it comes back ([`Since`], [`Query`]), what a room's history looks like
//! at one moment ([`Snapshot`]), and the in-memory store a single node keeps
//! ([`memory::MemoryHistory`]). With Redis the same answers come from Redis
//! (`crate::redis`); the rules of this module hold for both.
//!
//! # The rules
//!
//! - Offsets of a room start at 1 and increase by exactly 1 per message; `top` is the
//!   offset of the last one (0 before any).
//! - The epoch names one lifetime of a room's history: it changes only when that history
//!   is lost (a single node restarting, the history expiring `ttl` after the room's last
//!   message), never when old messages are trimmed by size.
//! - A room keeps exactly its last `size` messages, all of them until `ttl` after its last
//!   message.
//! - A [`Query`] with `since` is *covered* when the epoch is the same and every message
//!   after `since` is still kept; then the answer is exactly those messages (at most
//!   `limit`, oldest first). Otherwise the answer is empty and not covered.

pub mod frames;
pub mod memory;
pub mod request;

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::Frame;

pub use crate::protocol::Position;

/// Where a client was in a room: the last offset it received, in which epoch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Since {
    /// The last offset the client received.
    pub offset: u64,
    /// The epoch it belonged to.
    pub epoch: String,
}

/// A read of a room's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Only what came after this position (recovery); `None`: the latest messages.
    pub since: Option<Since>,
    /// At most this many messages (0: none, only the room's epoch and top offset).
    pub limit: usize,
}

impl Query {
    /// Every message after `since` (a recovering join), or only the top without it.
    pub fn recover(since: Option<Since>) -> Query {
        let limit = if since.is_some() { usize::MAX } else { 0 };
        Query { since, limit }
    }
}

/// A room's history as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The epoch of the room's history.
    pub epoch: Arc<str>,
    /// The offset of the room's last message (0: none yet in this epoch).
    pub top: u64,
    /// The messages asked for, oldest first, each as its members received it (with its
    /// position).
    pub publications: Vec<Publication>,
    /// For a query with `since`: whether every message after it is here.
    pub covered: bool,
}

/// One message of a room's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Its offset.
    pub offset: u64,
    /// The frame members of the room received: `{"event","data","room","offset","epoch"}`.
    pub frame: Frame,
}

/// How much history rooms keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySettings {
    /// Messages kept per room (exactly the last `size`).
    pub size: usize,
    /// How long a room's history lives after its last message.
    pub ttl: Duration,
    /// Bytes all rooms' messages together may take in memory (a single node only).
    pub max_bytes: usize,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            size: 100,
            ttl: Duration::from_secs(300),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A fresh epoch: 16 random hexadecimal digits.
pub fn new_epoch() -> Arc<str> {
    let random = uuid::Uuid::new_v4().as_u64_pair().1;
    Arc::from(format!("{random:016x}"))
}

/// What a [`Query`] selects from a room whose kept messages are `kept` (oldest first,
/// the last one at `top`): the answer's messages and whether `since` is covered. The
/// one place the rules of this module are decided, for every store.
pub fn select<T: Clone>(
    kept: &std::collections::VecDeque<T>,
    top: u64,
    epoch: &str,
    query: &Query,
) -> (Vec<T>, bool) {
    let len = kept.len() as u64;
    let Some(since) = &query.since else {
        let take = (query.limit as u64).min(len) as usize;
        return (kept.iter().skip(kept.len() - take).cloned().collect(), true);
    };
    let covered = since.epoch == epoch && since.offset <= top && top - since.offset <= len;
    if !covered {
        return (Vec::new(), false);
    }
    let missed = (top - since.offset) as usize;
    let first = kept.len() - missed;
    let items = kept.iter().skip(first).take(query.limit).cloned().collect();
    (items, true)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    fn since(offset: u64, epoch: &str) -> Option<Since> {
        Some(Since {
            offset,
            epoch: epoch.into(),
        })
    }

    #[test]
    fn selection_follows_the_rules() {
        // Offsets 8, 9, 10 kept; top 10.
        let kept: VecDeque<u64> = [8, 9, 10].into();
        let q = |since, limit| Query { since, limit };
        assert_eq!(select(&kept, 10, "e", &q(None, 2)), (vec![9, 10], true));
        assert_eq!(select(&kept, 10, "e", &q(None, 0)), (vec![], true));
        assert_eq!(select(&kept, 10, "e", &q(None, 99)), (vec![8, 9, 10], true));
        assert_eq!(
            select(&kept, 10, "e", &q(since(7, "e"), 99)),
            (vec![8, 9, 10], true)
        );
        assert_eq!(
            select(&kept, 10, "e", &q(since(9, "e"), 99)),
            (vec![10], true)
        );
        assert_eq!(
            select(&kept, 10, "e", &q(since(10, "e"), 99)),
            (vec![], true)
        );
        assert_eq!(
            select(&kept, 10, "e", &q(since(7, "e"), 1)),
            (vec![8], true)
        );
        // Past the window, another epoch, or ahead of the top: not covered.
        assert_eq!(
            select(&kept, 10, "e", &q(since(6, "e"), 99)),
            (vec![], false)
        );
        assert_eq!(
            select(&kept, 10, "e", &q(since(9, "x"), 99)),
            (vec![], false)
        );
        assert_eq!(
            select(&kept, 10, "e", &q(since(11, "e"), 99)),
            (vec![], false)
        );
        // An empty history covers exactly its top.
        let none: VecDeque<u64> = VecDeque::new();
        assert_eq!(select(&none, 0, "e", &q(since(0, "e"), 99)), (vec![], true));
        assert_eq!(
            select(&none, 5, "e", &q(since(4, "e"), 99)),
            (vec![], false)
        );
    }

    #[test]
    fn epochs_differ() {
        assert_ne!(new_epoch(), new_epoch());
        assert_eq!(new_epoch().len(), 16);
    }
}

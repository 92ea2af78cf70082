//! Which shard owns a client: [`ShardId`] and [`shard_for`], a pure function of the id
//! that every thread computes the same way for the whole run.

use std::fmt;

use crate::id::ClientId;

/// The index of a shard, `0..shards`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub(crate) u16);

impl ShardId {
    /// The index as a usize.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Fixed seeds: placement must be the same function on every thread for the whole run.
const SEEDS: (u64, u64, u64, u64) = (
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
);

/// The shard that owns `client`: `hash(client_id) % shards`.
pub fn shard_for(client: &ClientId, shards: usize) -> ShardId {
    let state = ahash::RandomState::with_seeds(SEEDS.0, SEEDS.1, SEEDS.2, SEEDS.3);
    let hash = state.hash_one(client.as_uuid().as_u128());
    ShardId((hash % shards.max(1) as u64) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_stable_and_spread() {
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            let id = ClientId::new_v4();
            let shard = shard_for(&id, 4);
            assert_eq!(shard, shard_for(&id, 4));
            counts[shard.index()] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}

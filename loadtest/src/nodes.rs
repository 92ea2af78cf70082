//! The server nodes a run's clients connect to, and which client goes to which node.
//!
//! A run has one node (`--url`) unless `fanout` is given `--node URL` several times: a
//! fleet of servers sharing one Redis. The clients are then spread by [`Placement`]:
//! client `i` is in room `i % M` (M rooms), and with N nodes
//!
//! - [`Placement::Disjoint`]: it connects to node `(i % M) % N` — every member of a room
//!   is on one node, so a node needs only its own rooms' messages;
//! - [`Placement::Mixed`]: it connects to node `(i % M + i / M) % N` — member `k` of room
//!   `r` is on node `(r + k) % N`, so a room with more than one member spans nodes, and the
//!   nodes get equal shares when N divides M.
//!
//! [`node_of`] is the whole rule (pure); [`Nodes`] holds the resolved targets and applies
//! it per client. Every node went through the loopback check of [`Target::from_url`].

use crate::error::{Error, Result};
use crate::target::Target;
use clap::ValueEnum;
use serde::Serialize;

/// How clients are spread over the nodes (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Each room's members all on one node: room `r` on node `r % N`.
    #[default]
    Disjoint,
    /// Member `k` of room `r` on node `(r + k) % N`: each room spans the nodes.
    Mixed,
}

/// The node (index in `0..nodes`) of client `client` when client `i` is in room
/// `i % rooms`; `rooms` and `nodes` of 0 count as 1.
pub fn node_of(placement: Placement, client: u64, rooms: u64, nodes: usize) -> usize {
    let rooms = rooms.max(1);
    let nodes = nodes.max(1) as u64;
    let slot = match placement {
        Placement::Disjoint => client % rooms,
        Placement::Mixed => client % rooms + client / rooms,
    };
    (slot % nodes) as usize
}

/// The resolved nodes of a run and the placement rule that picks one per client.
#[derive(Debug, Clone)]
pub struct Nodes {
    targets: Vec<Target>,
    placement: Placement,
    rooms: u64,
}

impl Nodes {
    /// One node: every client connects to `target`.
    pub fn single(target: Target) -> Nodes {
        Nodes {
            targets: vec![target],
            placement: Placement::Disjoint,
            rooms: 1,
        }
    }

    /// Several nodes, client `i` (in room `i % rooms`) placed by `placement`. All must be
    /// `ws://`, or all `wss://` with one host name (the TLS client checks one name).
    pub fn new(targets: Vec<Target>, placement: Placement, rooms: u64) -> Result<Nodes> {
        let first = targets
            .first()
            .ok_or_else(|| Error::Config("at least one node is needed".into()))?;
        let alike =
            |t: &Target| t.tls == first.tls && (!t.tls || t.server_name == first.server_name);
        if !targets.iter().all(alike) {
            return Err(Error::Config(
                "--node URLs must all be ws://, or all wss:// with the same host".into(),
            ));
        }
        Ok(Nodes {
            targets,
            placement,
            rooms,
        })
    }

    /// The node index of client `client`.
    pub fn index_of(&self, client: u64) -> usize {
        node_of(self.placement, client, self.rooms, self.targets.len())
    }

    /// The node client `client` connects to.
    pub fn target_for(&self, client: u64) -> &Target {
        &self.targets[self.index_of(client)]
    }

    /// Every node, in the order given.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The first node (the one whose scheme and host name every node shares for TLS).
    pub fn first(&self) -> &Target {
        &self.targets[0]
    }

    /// How many clients of `0..clients` each node gets, by node index.
    pub fn planned(&self, clients: u64) -> Vec<u64> {
        let mut counts = vec![0; self.targets.len()];
        for i in 0..clients {
            counts[self.index_of(i)] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The nodes that room `room`'s members (clients `room`, `room + M`, …) land on.
    fn nodes_of_room(
        p: Placement,
        room: u64,
        rooms: u64,
        clients: u64,
        n: usize,
    ) -> BTreeSet<usize> {
        (room..clients)
            .step_by(rooms as usize)
            .map(|i| node_of(p, i, rooms, n))
            .collect()
    }

    #[test]
    fn disjoint_puts_each_room_on_node_room_mod_n() {
        for room in 0..1000 {
            let on = nodes_of_room(Placement::Disjoint, room, 1000, 10_000, 4);
            assert_eq!(on, BTreeSet::from([(room % 4) as usize]), "room {room}");
        }
    }

    #[test]
    fn mixed_puts_member_k_of_room_r_on_node_r_plus_k() {
        let (rooms, n) = (1000, 4);
        for i in [0, 999, 1000, 3999, 4000, 9999] {
            let (room, member) = (i % rooms, i / rooms);
            assert_eq!(
                node_of(Placement::Mixed, i, rooms, n),
                ((room + member) % 4) as usize
            );
        }
        for room in [0, 1, 500, 999] {
            let on = nodes_of_room(Placement::Mixed, room, rooms, 10_000, n);
            assert_eq!(on, BTreeSet::from([0, 1, 2, 3]), "room {room}");
        }
    }

    #[test]
    fn one_node_takes_everyone_and_zero_counts_as_one() {
        for p in [Placement::Disjoint, Placement::Mixed] {
            assert!((0..100).all(|i| node_of(p, i, 7, 1) == 0));
            assert_eq!(node_of(p, 5, 0, 0), 0);
        }
        // No rooms counts as one room: disjoint keeps it on one node, mixed spreads it.
        assert_eq!(node_of(Placement::Disjoint, 5, 0, 4), 0);
        assert_eq!(node_of(Placement::Mixed, 5, 0, 4), 1);
    }

    fn target(port: u16) -> Target {
        Target::from_url(&format!("ws://127.0.0.1:{port}/ws"), false).expect("loopback URL")
    }

    #[test]
    fn planned_counts_follow_the_placement() {
        let targets: Vec<Target> = (1..=4).map(target).collect();
        let disjoint = Nodes::new(targets.clone(), Placement::Disjoint, 1000).expect("nodes");
        assert_eq!(disjoint.planned(10_000), vec![2500; 4]);
        // 10 members per room, starting on node r % 4: equal shares.
        let mixed = Nodes::new(targets, Placement::Mixed, 1000).expect("nodes");
        assert_eq!(mixed.planned(10_000), vec![2500; 4]);
        assert_eq!(mixed.target_for(1001).addr.port(), 3);
        assert_eq!(Nodes::single(target(9)).planned(3), vec![3]);
    }

    #[test]
    fn refuses_no_nodes_and_mixed_schemes() {
        assert!(Nodes::new(Vec::new(), Placement::Mixed, 1).is_err());
        let mut tls = target(2);
        tls.tls = true;
        assert!(Nodes::new(vec![target(1), tls], Placement::Disjoint, 1).is_err());
    }
}

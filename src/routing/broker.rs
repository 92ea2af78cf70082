//! The fan-out broker: a message encoded once into a [`Frame`] is handed, as the same
//! buffer, to each shard that may have recipients.
//!
//! A client-targeted message goes to the one shard that owns the client id (placement is
//! a pure function of the id); user, room and broadcast messages go to every shard, since
//! any shard may hold members. A full shard inbox drops the delivery for that shard and
//! counts it (`shardcast_inbox_dropped_total`): a stuck shard must not grow memory.
//! The broker never touches shard state and never blocks. It stamps each message once
//! with the time it took it (delivery latency is measured from there; see
//! [`crate::metrics`]). With compression on, it marks each message long enough to be
//! compressed ([`Frame::share_compression`]) before handing it out, so the shards
//! compress it once between them.

use std::sync::Arc;

use super::command::{Command, Delivery};
use super::inbox::ShardSender;
use super::placement::shard_for;
use crate::id::ClientId;
use crate::metrics::Metrics;
use crate::protocol::Frame;

/// Routes commands to shard inboxes. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub(crate) struct Broker {
    shards: Arc<[ShardSender]>,
    metrics: Arc<Metrics>,
    /// With compression on: the payload length from which messages are compressed.
    compress_from: Option<usize>,
}

impl Broker {
    /// A broker over these shards; `compress_from`: with compression on, the payload
    /// length from which messages are compressed.
    pub fn new(
        shards: Arc<[ShardSender]>,
        metrics: Arc<Metrics>,
        compress_from: Option<usize>,
    ) -> Self {
        Broker {
            shards,
            metrics,
            compress_from,
        }
    }

    /// Marks `frame` for one shared compression when compression is on and the frame
    /// is long enough. Called before a frame is cloned to its recipients (and before a
    /// history keeps it, so a replay shares it too).
    pub fn prepare(&self, frame: &mut Frame) {
        if self
            .compress_from
            .is_some_and(|min| frame.payload_len() >= min)
        {
            frame.share_compression();
        }
    }

    /// The shard inboxes, in shard order.
    pub fn shards(&self) -> &[ShardSender] {
        &self.shards
    }

    /// The inbox of the shard that owns `client`.
    pub fn owner_of(&self, client: &ClientId) -> &ShardSender {
        &self.shards[shard_for(client, self.shards.len()).index()]
    }

    /// Hands `delivery` to every shard that may hold a recipient.
    pub fn deliver(&self, mut delivery: Delivery) {
        self.metrics.published.inc();
        delivery.stamp = crate::metrics::stamp_now();
        self.prepare(&mut delivery.frame);
        if let crate::protocol::Target::Client(id) = &delivery.target {
            let owner = self.owner_of(id);
            self.send_to(owner, Command::Deliver(delivery));
            return;
        }
        for shard in self.shards.iter() {
            self.send_to(shard, Command::Deliver(delivery.clone()));
        }
    }

    /// Sends a command to the shard that owns `client`.
    pub fn send_to_owner(&self, client: &ClientId, command: Command) -> bool {
        self.send_to(self.owner_of(client), command)
    }

    /// Sends any command to one shard, counting a full inbox as a drop.
    pub fn send_to(&self, shard: &ShardSender, command: Command) -> bool {
        let sent = shard.send(command).is_ok();
        if !sent {
            self.metrics.inbox_dropped.inc();
        }
        sent
    }
}

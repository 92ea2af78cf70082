//! The fan-out broker: every outbound message is encoded once into a [`Frame`] and the
//! same buffer is handed to each shard that may have recipients.
//!
//! A client-targeted message goes to the one shard that owns the client id (placement is
//! a pure function of the id); user, room and broadcast messages go to every shard, since
//! any shard may hold members. A full shard inbox drops the delivery for that shard and
//! counts it (`shardcast_inbox_dropped_total`): a stuck shard must not grow memory.
//! The broker never touches shard state and never blocks.

use std::sync::Arc;

use crate::id::ClientId;
use crate::metrics::Metrics;
use crate::protocol::Frame;
use crate::shard::inbox::{Command, Delivery, Exclude, ShardSender, Target};
use crate::shard::placement::shard_for;

/// Routes deliveries to shard inboxes. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Broker {
    shards: Arc<[ShardSender]>,
    metrics: Arc<Metrics>,
}

impl Broker {
    /// A broker over these shards.
    pub(crate) fn new(shards: Arc<[ShardSender]>, metrics: Arc<Metrics>) -> Self {
        Broker { shards, metrics }
    }

    /// The shard inboxes, in shard order.
    pub(crate) fn shards(&self) -> &[ShardSender] {
        &self.shards
    }

    /// The inbox of the shard that owns `client`.
    pub(crate) fn owner_of(&self, client: &ClientId) -> &ShardSender {
        &self.shards[shard_for(client, self.shards.len()).index()]
    }

    /// Delivers `frame` to the local recipients of `target`.
    pub(crate) fn deliver(&self, target: Target, frame: Frame, exclude: Exclude) {
        self.metrics.published.inc();
        if let Target::Client(id) = &target {
            let owner = self.owner_of(id);
            self.send_to(
                owner,
                Command::Deliver(Delivery {
                    target,
                    frame,
                    exclude,
                }),
            );
            return;
        }
        let delivery = Delivery {
            target,
            frame,
            exclude,
        };
        for shard in self.shards.iter() {
            self.send_to(shard, Command::Deliver(delivery.clone()));
        }
    }

    /// Sends any command to one shard, counting a full inbox as a drop.
    pub(crate) fn send_to(&self, shard: &ShardSender, command: Command) -> bool {
        match shard.send(command) {
            Ok(()) => true,
            Err(_) => {
                self.metrics.inbox_dropped.inc();
                false
            }
        }
    }
}

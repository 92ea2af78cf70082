//! Sharded pub/sub on a Redis Cluster (`SSUBSCRIBE` / `SPUBLISH`, Redis 7), used by
//! [`SubscribeMode::Sharded`](super::SubscribeMode::Sharded): the cluster connections the
//! subscriber, the publisher and the emitter open, the slot of a channel, and the check
//! that a cluster can carry the mode ([`check_sharded`]).
//!
//! # Contract
//!
//! * A sharded channel lives on the master that owns its hash slot. A cluster connection
//!   (redis-rs) opens one connection per master, routes each command by the slot of its
//!   first channel and follows `MOVED` when slots move. A command may only name channels of
//!   one slot, so every SSUBSCRIBE, SUNSUBSCRIBE and pipeline of SPUBLISHes is cut by slot
//!   ([`by_slot`]), keeping the order of the items within each slot: a channel's messages
//!   stay in order.
//! * The subscriber's connection speaks RESP3 and hands every push (messages, the server's
//!   own SUNSUBSCRIBE when a slot leaves a master, the library's disconnection notice) to one
//!   unbounded channel, read by the subscriber task alone.
//! * Nothing here keeps state between calls: the tasks own the connections.

use std::time::Duration;

use ahash::AHashMap;
use futures_util::future::join_all;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, RedisError};
use tokio::sync::mpsc;

use super::nodes::{LinkError, command_connection, parse_url, within};

/// Number of hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// The oldest Redis with sharded pub/sub.
const MIN_MAJOR: u32 = 7;

/// A command connection to the cluster of `urls` (RESP2: the publisher and the emitter).
pub(crate) async fn command_connection_to(
    urls: &[String],
    limit: Duration,
) -> Result<ClusterConnection, LinkError> {
    let client = builder(urls, limit).build()?;
    within(limit, client.get_async_connection()).await
}

/// A RESP3 connection to the cluster of `urls` whose pushes (sharded messages, SUNSUBSCRIBE
/// notices, disconnections) arrive on the returned receiver.
pub(crate) async fn subscriber_connection(
    urls: &[String],
    limit: Duration,
) -> Result<(ClusterConnection, mpsc::UnboundedReceiver<PushInfo>), LinkError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = builder(urls, limit)
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(tx)
        .build()?;
    let conn = within(limit, client.get_async_connection()).await?;
    Ok((conn, rx))
}

fn builder(urls: &[String], limit: Duration) -> ClusterClientBuilder {
    ClusterClientBuilder::new(urls.to_vec())
        .connection_timeout(limit)
        .response_timeout(limit)
        // The tasks reconnect with their own backoff; one quick retry covers a MOVED.
        .retries(2)
}

/// The hash slot of `key`: CRC16 (XMODEM) of the key, or of its `{hash tag}` when it has a
/// non-empty one, modulo 16384 — as Redis computes it.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOTS
}

/// Groups `items` by the slot of their key, in order of first appearance, keeping the
/// order of the items within each group.
pub(crate) fn by_slot<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> &[u8],
) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    // Slot → its group's index: one lookup per item, however many slots a batch spans.
    let mut index: AHashMap<u16, usize> = AHashMap::new();
    for item in items {
        let at = *index.entry(slot(key(&item))).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(item);
    }
    groups
}

/// Runs `command` on each slot's group of `items` ([`by_slot`]), all at once, on clones of
/// `conn`; the first error, if any.
pub(crate) async fn per_slot<T, Fut>(
    conn: &ClusterConnection,
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> &[u8],
    command: impl Fn(ClusterConnection, Vec<T>) -> Fut,
) -> Result<(), RedisError>
where
    Fut: Future<Output = Result<(), RedisError>>,
{
    let commands = by_slot(items, key)
        .into_iter()
        .map(|group| command(conn.clone(), group));
    join_all(commands).await.into_iter().collect()
}

/// Why a cluster cannot carry sharded pub/sub for shardcast. `Display` says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardedCheckError {
    /// No URL was given.
    #[error("no Redis URL given: sharded pub/sub needs the nodes of a Redis Cluster")]
    NoUrls,
    /// No listed node answered.
    #[error("cannot reach any Redis node ({nodes}) to check sharded pub/sub: {reason}")]
    Unreachable {
        /// The addresses tried.
        nodes: String,
        /// The last failure.
        reason: String,
    },
    /// A node runs without cluster support.
    #[error(
        "{node} is not a Redis Cluster node (cluster_enabled:0): sharded pub/sub needs Redis \
         Cluster; use --redis-subscribe interest on a single Redis"
    )]
    NotCluster {
        /// The node's address.
        node: String,
    },
    /// A node runs a Redis older than 7.
    #[error(
        "{node} runs Redis {version}, and SSUBSCRIBE/SPUBLISH need Redis 7 or later: upgrade \
         the cluster or use --redis-subscribe interest"
    )]
    TooOld {
        /// The node's address.
        node: String,
        /// Its `redis_version`.
        version: String,
    },
    /// Someone listens with classic pub/sub on the cluster and would not hear SPUBLISH.
    #[error(
        "{node} has {patterns} pattern subscription(s) and {channels} `ws:*` channel \
         subscription(s): Ignis nodes, and shardcast nodes in patterns or interest mode, listen \
         with classic pub/sub and would hear nothing a sharded node publishes. Move every node \
         of the fleet to --redis-subscribe sharded (and every emitter to SPUBLISH), or keep \
         interest mode"
    )]
    ClassicListeners {
        /// The node's address.
        node: String,
        /// `PUBSUB NUMPAT` there.
        patterns: u64,
        /// `PUBSUB CHANNELS ws:*` there.
        channels: u64,
    },
}

/// Checks, on every listed node that answers, that sharded pub/sub can work for a fleet of
/// shardcast nodes: cluster support on, Redis 7 or later, and nobody listening on `ws:*`
/// with classic pub/sub (an Ignis node PSUBSCRIBEs `ws:room:*`; a shardcast node in
/// interest or patterns mode SUBSCRIBEs or PSUBSCRIBEs too). Classic listeners are found
/// only on the listed nodes (classic subscriptions are per node), so list every master.
/// Ignis *publishers* (emitters, Ignis nodes' PUBLISH) cannot be seen from Redis: that
/// mix stays the operator's to avoid (see the [module doc](crate::redis)).
///
/// `shardcast serve` runs this before it listens and refuses to start on an error; an
/// embedding application can call it likewise.
pub async fn check_sharded(urls: &[String], limit: Duration) -> Result<(), ShardedCheckError> {
    if urls.is_empty() {
        return Err(ShardedCheckError::NoUrls);
    }
    let mut answered = false;
    let mut last = String::new();
    let mut addrs = Vec::new();
    for url in urls {
        let node = match parse_url(url) {
            Ok(node) => node,
            Err((url, e)) => {
                last = format!("invalid URL {url}: {e}");
                continue;
            }
        };
        addrs.push(node.addr.clone());
        match facts(&node, limit).await {
            Ok(facts) => {
                answered = true;
                facts.judge(&node.addr)?;
            }
            Err(e) => last = e.to_string(),
        }
    }
    match answered {
        true => Ok(()),
        false => Err(ShardedCheckError::Unreachable {
            nodes: addrs.join(", "),
            reason: last,
        }),
    }
}

/// What one node says about itself.
struct NodeFacts {
    info: String,
    patterns: u64,
    channels: u64,
}

impl NodeFacts {
    fn judge(&self, node: &str) -> Result<(), ShardedCheckError> {
        let field = |name: &str| {
            self.info.lines().find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        if field("cluster_enabled") != Some("1") {
            return Err(ShardedCheckError::NotCluster {
                node: node.to_owned(),
            });
        }
        let version = field("redis_version").unwrap_or("unknown");
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        if major.is_none_or(|m| m < MIN_MAJOR) {
            return Err(ShardedCheckError::TooOld {
                node: node.to_owned(),
                version: version.to_owned(),
            });
        }
        if self.patterns > 0 || self.channels > 0 {
            return Err(ShardedCheckError::ClassicListeners {
                node: node.to_owned(),
                patterns: self.patterns,
                channels: self.channels,
            });
        }
        Ok(())
    }
}

async fn facts(node: &super::nodes::Node, limit: Duration) -> Result<NodeFacts, LinkError> {
    let mut conn = command_connection(node, limit).await?;
    let mut pipe = redis::pipe();
    pipe.cmd("INFO").arg("server").arg("cluster");
    pipe.cmd("PUBSUB").arg("NUMPAT");
    pipe.cmd("PUBSUB").arg("CHANNELS").arg("ws:*");
    let (info, patterns, channels): (String, u64, Vec<String>) =
        within(limit, pipe.query_async(&mut conn)).await?;
    Ok(NodeFacts {
        info,
        patterns,
        channels: channels.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Each value is what `CLUSTER KEYSLOT` answered on Redis 7.0.15.
        for (key, slot_by_redis) in [
            ("foo", 12182),
            ("ws:broadcast", 2556),
            ("ws:room:lobby", 15097),
            ("{user1000}.following", 3443),
            ("foo{}{bar}", 8363),
            ("foo{{bar}}zap", 4015),
        ] {
            assert_eq!(slot(key.as_bytes()), slot_by_redis, "{key}");
        }
    }

    #[test]
    fn groups_keep_order_within_a_slot() {
        let items = ["a", "b", "a", "c", "b", "a"];
        let groups = by_slot(items.iter().enumerate(), |(_, k)| k.as_bytes());
        let flat: Vec<Vec<usize>> = groups
            .iter()
            .map(|g| g.iter().map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(flat, vec![vec![0, 2, 5], vec![1, 4], vec![3]]);
    }

    #[test]
    fn judges_node_facts() {
        let facts = |info: &str, patterns, channels| NodeFacts {
            info: info.to_owned(),
            patterns,
            channels,
        };
        let ok = "# Server\r\nredis_version:7.0.15\r\n# Cluster\r\ncluster_enabled:1\r\n";
        assert_eq!(facts(ok, 0, 0).judge("n"), Ok(()));
        assert!(matches!(
            facts("redis_version:7.2.0\r\ncluster_enabled:0\r\n", 0, 0).judge("n"),
            Err(ShardedCheckError::NotCluster { .. })
        ));
        assert!(matches!(
            facts("redis_version:6.2.14\r\ncluster_enabled:1\r\n", 0, 0).judge("n"),
            Err(ShardedCheckError::TooOld { version, .. }) if version == "6.2.14"
        ));
        assert!(matches!(
            facts(ok, 3, 0).judge("n"),
            Err(ShardedCheckError::ClassicListeners { patterns: 3, .. })
        ));
        assert!(matches!(
            facts(ok, 0, 2).judge("n"),
            Err(ShardedCheckError::ClassicListeners { channels: 2, .. })
        ));
    }
}

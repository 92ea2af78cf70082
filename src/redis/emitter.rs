//! The emitter: publish envelopes from processes that serve no WebSockets (workers, cron
//! jobs, the `shardcast emit` CLI), like Ignis' `WebSocketEmitter`.
//!
//! # Contract
//!
//! * One command connection, to the first reachable URL (several URLs = the nodes of a
//!   Redis Cluster; PUBLISH has no key, so any node takes it and the cluster bus propagates
//!   it to every node). [`Emitter::connect`] fails when no node answers PING.
//!   [`Emitter::connect_sharded`] instead opens a cluster connection and SPUBLISHes, for a
//!   fleet in [`SubscribeMode::Sharded`](super::SubscribeMode::Sharded): only nodes in that
//!   mode hear it.
//! * Every send publishes one envelope with `serverId` [`EMITTER_SERVER_ID`] on its Ignis
//!   channel and returns once Redis acknowledged it. Calls may run concurrently (`&self`);
//!   calls awaited one after the other arrive in that order.
//! * When the connection breaks, the failing call reconnects (trying every node once) and
//!   publishes again, once. If Redis had in fact executed the first attempt before the
//!   failure, that message is published twice; if every node is down the call fails with
//!   [`EmitterError::Unreachable`] and nothing is queued.
//! * `data` is JSON text; it is validated and compacted before sending
//!   ([`EmitterError::InvalidData`] otherwise), because a broken envelope would be dropped by
//!   every node.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use tokio::sync::Mutex;

use super::nodes::{
    LinkError, Nodes, command_connection, is_connection_problem, parse_url, within,
};
use super::sharded;
use crate::protocol::Target;
use crate::protocol::envelope::{EMITTER_SERVER_ID, Envelope, EnvelopeError, compact_json};

/// Bound of the connect and of each command.
const EMITTER_TIMEOUT: Duration = Duration::from_secs(3);

/// A Redis-only publisher of Ignis envelopes with `serverId` `"emitter"`.
///
/// ```no_run
/// use shardcast::redis::Emitter;
/// # async fn demo() -> Result<(), shardcast::redis::EmitterError> {
/// let emitter = Emitter::connect(&["redis://127.0.0.1:6379".to_owned()]).await?;
/// emitter.to_user("user-456", "notification", Some(r#"{"message":"Your report is ready"}"#)).await?;
/// emitter.to_room("dashboard", "data:update", Some(r#"{"cpu":42.5}"#), &["client-to-skip".to_owned()]).await?;
/// emitter.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Emitter {
    link: Mutex<Link>,
}

struct Link {
    nodes: Nodes,
    /// Every URL (a sharded emitter connects to the cluster through all of them).
    urls: Vec<String>,
    conn: Conn,
    /// Bumped on every reconnect, so concurrent failures reconnect once.
    generation: u64,
}

/// The emitter's connection.
#[derive(Clone)]
enum Conn {
    /// One node: PUBLISH.
    Classic(MultiplexedConnection),
    /// The cluster, by slot: SPUBLISH.
    Sharded(ClusterConnection),
}

/// What went wrong while emitting. `Display` says what to check.
#[derive(Debug, thiserror::Error)]
pub enum EmitterError {
    /// No URL was given. Pass `--redis redis://host:port` (repeat for a cluster).
    #[error("no Redis URL given: pass at least one redis://host:port")]
    NoUrls,
    /// A URL could not be parsed. Expected `redis://[user:password@]host:port[/db]`.
    #[error("invalid Redis URL `{url}`: {source}")]
    InvalidUrl {
        /// The URL, password masked.
        url: String,
        /// What redis-rs objected to.
        source: redis::RedisError,
    },
    /// No node could be reached. Check that Redis runs and that host, port and password are right.
    #[error("cannot reach Redis at {nodes}: {reason}")]
    Unreachable {
        /// The addresses tried.
        nodes: String,
        /// The last failure.
        reason: String,
    },
    /// `data` is not valid JSON text. Pass JSON, e.g. `{"k":1}` or `"text"` (quotes included).
    #[error("data is {0}; strings need their quotes, e.g. '\"text\"'")]
    InvalidData(EnvelopeError),
    /// A client id, user id or room was empty; Ignis nodes drop such envelopes.
    #[error("the {0} must not be empty")]
    EmptyTarget(&'static str),
    /// The client id is not one (a lowercase hyphenated UUID, as `connected` gives it);
    /// no node can hold such a client.
    #[error("`{0}` is not a client id (a lowercase hyphenated UUID)")]
    InvalidClientId(String),
    /// Redis refused the PUBLISH (ACL, read-only replica, …).
    #[error("Redis refused the publish: {0}")]
    Publish(redis::RedisError),
}

impl Emitter {
    /// Connect to the first of `urls` that answers PING; a clear error when none does.
    pub async fn connect(urls: &[String]) -> Result<Emitter, EmitterError> {
        Self::open(urls, false).await
    }

    /// Connect to the Redis Cluster of `urls` for sharded pub/sub: every send is an
    /// SPUBLISH, heard only by nodes in
    /// [`SubscribeMode::Sharded`](super::SubscribeMode::Sharded) (never by Ignis nodes).
    pub async fn connect_sharded(urls: &[String]) -> Result<Emitter, EmitterError> {
        Self::open(urls, true).await
    }

    async fn open(urls: &[String], sharded: bool) -> Result<Emitter, EmitterError> {
        let list = urls
            .iter()
            .map(|url| {
                parse_url(url).map_err(|(url, source)| EmitterError::InvalidUrl { url, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut nodes = Nodes::new(list).ok_or(EmitterError::NoUrls)?;
        let conn = match sharded {
            true => connect_cluster(&nodes, urls).await?,
            false => Conn::Classic(connect_any(&mut nodes).await?),
        };
        Ok(Emitter {
            link: Mutex::new(Link {
                nodes,
                urls: urls.to_vec(),
                conn,
                generation: 0,
            }),
        })
    }

    /// Send `event` to one client, wherever it is connected (`ws:client:{id}`).
    pub async fn to_client(
        &self,
        client_id: &str,
        event: &str,
        data: Option<&str>,
    ) -> Result<(), EmitterError> {
        non_empty(client_id, "client id")?;
        let target = Target::client(client_id)
            .map_err(|_| EmitterError::InvalidClientId(client_id.to_owned()))?;
        self.emit(target, event, data, &[]).await
    }

    /// Send `event` to every session of a user, on every node (`ws:user:{id}`).
    pub async fn to_user(
        &self,
        user_id: &str,
        event: &str,
        data: Option<&str>,
    ) -> Result<(), EmitterError> {
        let target = Target::user(non_empty(user_id, "user id")?);
        self.emit(target, event, data, &[]).await
    }

    /// Send `event` to every member of a room except the `exclude`d client ids (`ws:room:{room}`).
    pub async fn to_room(
        &self,
        room: &str,
        event: &str,
        data: Option<&str>,
        exclude: &[String],
    ) -> Result<(), EmitterError> {
        let target = Target::room(non_empty(room, "room")?);
        self.emit(target, event, data, exclude).await
    }

    /// Send `event` to every authenticated client except the `exclude`d ones (`ws:broadcast`).
    pub async fn broadcast(
        &self,
        event: &str,
        data: Option<&str>,
        exclude: &[String],
    ) -> Result<(), EmitterError> {
        self.emit(Target::Broadcast, event, data, exclude).await
    }

    /// Send QUIT and close the connection.
    pub async fn shutdown(self) {
        let Conn::Classic(mut conn) = self.link.into_inner().conn else {
            return;
        };
        let _ = within(
            EMITTER_TIMEOUT,
            redis::cmd("QUIT").query_async::<()>(&mut conn),
        )
        .await;
    }

    async fn emit(
        &self,
        target: Target,
        event: &str,
        data: Option<&str>,
        exclude: &[String],
    ) -> Result<(), EmitterError> {
        let data = data
            .map(compact_json)
            .transpose()
            .map_err(EmitterError::InvalidData)?;
        let exclude = match target.honours_exclude() {
            true => exclude.to_vec(),
            false => Vec::new(),
        };
        let envelope =
            Envelope::with_json_data(EMITTER_SERVER_ID, target, event, data.as_deref(), exclude);
        self.publish(&envelope.channel(), &envelope.encode()).await
    }

    /// PUBLISH, reconnecting and retrying once when the connection is broken.
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), EmitterError> {
        let (mut conn, generation) = {
            let link = self.link.lock().await;
            (link.conn.clone(), link.generation)
        };
        match publish_once(&mut conn, channel, payload).await {
            Ok(()) => Ok(()),
            Err(LinkError::Redis(e)) if !is_connection_problem(&e) => Err(EmitterError::Publish(e)),
            Err(first) => {
                tracing::warn!("redis: emitter connection broken ({first}); reconnecting");
                let mut conn = self.reconnect(generation).await?;
                match publish_once(&mut conn, channel, payload).await {
                    Ok(()) => Ok(()),
                    Err(LinkError::Redis(e)) if !is_connection_problem(&e) => {
                        Err(EmitterError::Publish(e))
                    }
                    Err(e) => Err(self.unreachable(e).await),
                }
            }
        }
    }

    /// Replace the connection unless another call already did since `seen`.
    async fn reconnect(&self, seen: u64) -> Result<Conn, EmitterError> {
        let mut link = self.link.lock().await;
        if link.generation == seen {
            link.conn = match &link.conn {
                Conn::Sharded(_) => connect_cluster(&link.nodes, &link.urls).await?,
                Conn::Classic(_) => {
                    link.nodes.rotate();
                    Conn::Classic(connect_any(&mut link.nodes).await?)
                }
            };
            link.generation += 1;
        }
        Ok(link.conn.clone())
    }

    async fn unreachable(&self, error: LinkError) -> EmitterError {
        let link = self.link.lock().await;
        EmitterError::Unreachable {
            nodes: link.nodes.describe(),
            reason: error.to_string(),
        }
    }
}

/// A cluster connection through `urls`; PING proves it answers.
async fn connect_cluster(nodes: &Nodes, urls: &[String]) -> Result<Conn, EmitterError> {
    let connected = async {
        let mut conn = sharded::command_connection_to(urls, EMITTER_TIMEOUT).await?;
        within(
            EMITTER_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await?;
        Ok::<_, LinkError>(conn)
    };
    connected
        .await
        .map(Conn::Sharded)
        .map_err(|e| EmitterError::Unreachable {
            nodes: nodes.describe(),
            reason: e.to_string(),
        })
}

/// Try every node once, starting with the current one; PING proves it answers.
async fn connect_any(nodes: &mut Nodes) -> Result<MultiplexedConnection, EmitterError> {
    let mut last = None;
    for _ in 0..nodes.len() {
        let node = nodes.current().clone();
        match ping(command_connection(&node, EMITTER_TIMEOUT).await).await {
            Ok(conn) => return Ok(conn),
            Err(e) => {
                tracing::debug!(node = %node.addr, "redis: emitter cannot connect ({e})");
                last = Some(e);
                nodes.rotate();
            }
        }
    }
    Err(EmitterError::Unreachable {
        nodes: nodes.describe(),
        reason: last.map_or_else(String::new, |e| e.to_string()),
    })
}

async fn ping(
    conn: Result<MultiplexedConnection, LinkError>,
) -> Result<MultiplexedConnection, LinkError> {
    let mut conn = conn?;
    within(
        EMITTER_TIMEOUT,
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await?;
    Ok(conn)
}

async fn publish_once(conn: &mut Conn, channel: &str, payload: &[u8]) -> Result<(), LinkError> {
    let publish = |name: &str| redis::cmd(name).arg(channel).arg(payload).to_owned();
    let sent = match conn {
        Conn::Classic(conn) => {
            within(EMITTER_TIMEOUT, publish("PUBLISH").query_async::<i64>(conn)).await
        }
        Conn::Sharded(conn) => {
            within(
                EMITTER_TIMEOUT,
                publish("SPUBLISH").query_async::<i64>(conn),
            )
            .await
        }
    };
    sent.map(|_receivers| ())
}

fn non_empty<'a>(value: &'a str, what: &'static str) -> Result<&'a str, EmitterError> {
    match value.is_empty() {
        true => Err(EmitterError::EmptyTarget(what)),
        false => Ok(value),
    }
}

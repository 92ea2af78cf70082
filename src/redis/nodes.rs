//! The configured Redis nodes and how a task connects to one of them.
//!
//! A [`Nodes`] list is owned by one task (subscriber, publisher or emitter); it remembers
//! which node that task uses and rotates to the next one on failure.

use std::fmt;
use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, RedisError};

/// One configured node: a redis-rs client and its address for logs (no password).
#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) client: Client,
    pub(crate) addr: String,
}

/// Why a connection attempt or command failed.
#[derive(Debug)]
pub(crate) enum LinkError {
    Redis(RedisError),
    Timeout(Duration),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Redis(e) => write!(f, "{e}"),
            LinkError::Timeout(t) => write!(f, "no answer within {} ms", t.as_millis()),
        }
    }
}

impl From<RedisError> for LinkError {
    fn from(e: RedisError) -> Self {
        LinkError::Redis(e)
    }
}

/// True when `e` means the connection is broken (reconnect), false when Redis itself
/// answered with an error (the connection is fine; retrying the same command is pointless).
pub(crate) fn is_connection_problem(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        // The scripts are gone (Redis restarted or flushed them): a new connection
        // loads them again.
        || e.code() == Some("NOSCRIPT")
}

/// Run `fut` with a deadline.
pub(crate) async fn within<T, F>(limit: Duration, fut: F) -> Result<T, LinkError>
where
    F: Future<Output = Result<T, RedisError>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result.map_err(LinkError::Redis),
        Err(_) => Err(LinkError::Timeout(limit)),
    }
}

/// Parse one URL; the error carries the URL with its password masked.
pub(crate) fn parse_url(url: &str) -> Result<Node, (String, RedisError)> {
    match Client::open(url) {
        Ok(client) => {
            let addr = client.get_connection_info().addr().to_string();
            Ok(Node { client, addr })
        }
        Err(e) => Err((mask_password(url), e)),
    }
}

/// `redis://user:secret@host` → `redis://user:***@host` (best effort, for error messages).
pub(crate) fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        "***".to_owned()
    };
    format!("{}{masked}{}", &url[..scheme_end], &rest[at..])
}

/// The nodes one task may use (never empty), and which one it uses now.
#[derive(Clone)]
pub(crate) struct Nodes {
    list: Vec<Node>,
    current: usize,
}

impl Nodes {
    /// `None` for an empty list.
    pub(crate) fn new(list: Vec<Node>) -> Option<Self> {
        (!list.is_empty()).then_some(Nodes { list, current: 0 })
    }

    /// The node the next attempt goes to.
    pub(crate) fn current(&self) -> &Node {
        &self.list[self.current % self.list.len()]
    }

    /// Move on to the next node (after a failure); a no-op with a single node.
    pub(crate) fn rotate(&mut self) {
        self.current = (self.current + 1) % self.list.len();
    }

    /// The node the next attempt goes to; for a cluster connection (`whole`), one named
    /// after every node, as logs should name it.
    pub(crate) fn for_attempt(&self, whole: bool) -> Node {
        let node = self.current().clone();
        match whole {
            true => Node {
                addr: format!("cluster {}", self.describe()),
                ..node
            },
            false => node,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// All addresses, comma separated, for error messages.
    pub(crate) fn describe(&self) -> String {
        let addrs: Vec<&str> = self.list.iter().map(|n| n.addr.as_str()).collect();
        addrs.join(", ")
    }
}

/// A command connection whose connect and responses are bounded by `limit`.
pub(crate) async fn command_connection(
    node: &Node,
    limit: Duration,
) -> Result<MultiplexedConnection, LinkError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(limit))
        .set_response_timeout(Some(limit));
    within(
        limit,
        node.client
            .get_multiplexed_async_connection_with_config(&config),
    )
    .await
}

/// A RESP2 pub/sub connection (not yet subscribed to anything).
pub(crate) async fn pubsub_connection(node: &Node, limit: Duration) -> Result<PubSub, LinkError> {
    within(limit, node.client.get_async_pubsub()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(mask_password("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(mask_password("redis://u:p@ss@h:1"), "redis://u:***@h:1");
        assert_eq!(mask_password("redis://token@h"), "redis://***@h");
        assert_eq!(mask_password("nonsense"), "nonsense");
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            parse_url("redis://127.0.0.1:7000")
                .map(|n| n.addr)
                .ok()
                .as_deref(),
            Some("127.0.0.1:7000")
        );
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("not a url").is_err());
    }
}

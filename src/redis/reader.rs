//! The query connection: history and presence reads, one script each, answered at once
//! (not queued behind the publisher's backlog).
//!
//! # Contract
//!
//! One multiplexed command connection, made on first use and shared by every concurrent
//! read; a read that finds it broken drops it, so the next read connects again (to the
//! next node of the list). Each read is bounded by `probe_timeout`; a failure is the
//! reader's answer, never retried here (the client or application asks again).

use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use super::nodes::{LinkError, Nodes, command_connection, is_connection_problem, within};
use super::publisher::load_scripts;
use super::scripts::LuaScript;

/// The query connection.
pub(crate) struct Reader {
    nodes: Mutex<Nodes>,
    conn: Mutex<Option<MultiplexedConnection>>,
    limit: Duration,
}

impl Reader {
    pub(crate) fn new(nodes: Nodes, limit: Duration) -> Self {
        Reader {
            nodes: Mutex::new(nodes),
            conn: Mutex::new(None),
            limit,
        }
    }

    /// Runs `script` and returns its raw answer; the error says what went wrong.
    pub(crate) async fn eval(
        &self,
        script: &LuaScript,
        keys: &[String],
        args: &[Bytes],
    ) -> Result<redis::Value, String> {
        let mut conn = self.connection().await.map_err(|e| e.to_string())?;
        let cmd = script.eval_cmd(keys, args);
        match within(self.limit, cmd.query_async::<redis::Value>(&mut conn)).await {
            Ok(value) => Ok(value),
            Err(e) => {
                let broken = match &e {
                    LinkError::Redis(e) => is_connection_problem(e),
                    _ => true,
                };
                if broken {
                    *self.conn.lock().await = None;
                    self.nodes.lock().await.rotate();
                }
                Err(e.to_string())
            }
        }
    }

    /// The shared connection, made (and its scripts loaded) when there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, LinkError> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        let node = self.nodes.lock().await.current().clone();
        let conn = command_connection(&node, self.limit).await?;
        let conn = load_scripts(conn, self.limit).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

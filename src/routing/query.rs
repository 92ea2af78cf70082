//! The [`Handle`]'s commands to one client's owner shard (join, leave, disconnect,
//! encryption), its questions to every shard, and engine-wide state (stats, readiness,
//! shutdown).

use std::sync::Arc;

use tokio::sync::oneshot;

use super::command::{Command, Query};
use super::handle::{Handle, SendError, parse_client};
use crate::id::ClientId;
use crate::metrics::{Live, Metrics, ProcessStats, StatsSnapshot};

impl Handle {
    /// Makes a connected client join rooms, bypassing the room validator (room-name
    /// rules still apply).
    pub fn join(&self, client_id: &str, rooms: &[&str]) -> Result<(), SendError> {
        let rooms = rooms.iter().map(|r| r.to_string()).collect();
        self.to_owner(client_id, |id| Command::Join(id, rooms))
    }

    /// Makes a connected client leave rooms.
    pub fn leave(&self, client_id: &str, rooms: &[&str]) -> Result<(), SendError> {
        let rooms = rooms.iter().map(|r| r.to_string()).collect();
        self.to_owner(client_id, |id| Command::Leave(id, rooms))
    }

    /// Routes a client's messages through the configured outbound transformer
    /// (Ignis `enableClientEncryption`); no effect without a transformer.
    pub fn enable_client_encryption(&self, client_id: &str) -> Result<(), SendError> {
        self.to_owner(client_id, Command::EnableEncryption)
    }

    /// Closes a local client with 1000.
    pub fn disconnect(&self, client_id: &str) -> Result<(), SendError> {
        self.to_owner(client_id, Command::Disconnect)
    }

    fn to_owner(
        &self,
        client_id: &str,
        command: impl FnOnce(ClientId) -> Command,
    ) -> Result<(), SendError> {
        let id = parse_client(client_id)?;
        self.router.broker.send_to_owner(&id, command(id));
        Ok(())
    }

    /// The authenticated local members of a room (this instance only).
    pub async fn clients_of_room(&self, room: &str) -> Vec<ClientId> {
        let room: Arc<str> = Arc::from(room);
        self.gather(|tx| Query::RoomClients(room.clone(), tx)).await
    }

    /// The local sessions of a user (this instance only).
    pub async fn clients_of_user(&self, user_id: &str) -> Vec<ClientId> {
        let user: Arc<str> = Arc::from(user_id);
        self.gather(|tx| Query::UserClients(user.clone(), tx)).await
    }

    /// Whether a client is connected to this instance.
    pub async fn is_local_client(&self, client_id: &str) -> bool {
        let Ok(id) = client_id.parse::<ClientId>() else {
            return false;
        };
        let (tx, rx) = oneshot::channel();
        let command = Command::Query(Query::HasClient(id, tx));
        self.router.broker.send_to_owner(&id, command) && rx.await.unwrap_or(false)
    }

    /// Asks every shard and concatenates the answers (a full inbox answers nothing).
    async fn gather(
        &self,
        make: impl Fn(oneshot::Sender<Vec<ClientId>>) -> Query,
    ) -> Vec<ClientId> {
        self.ask_every_shard(make).await.concat()
    }

    /// Connection and delivery totals of this instance.
    pub fn stats(&self) -> StatsSnapshot {
        self.router.metrics.snapshot()
    }

    /// Every counter (for exporting).
    pub fn metrics(&self) -> &Metrics {
        &self.router.metrics
    }

    /// What a scrape reads besides the counters: inbox depths, the Redis bridge's state
    /// and `/proc/self`.
    pub fn live_metrics(&self) -> Live {
        Live {
            inbox_depths: self
                .router
                .broker
                .shards()
                .iter()
                .map(|s| s.depth())
                .collect(),
            redis: self.router.remote.get().map(|remote| remote.stats()),
            process: ProcessStats::read(),
        }
    }

    /// The Prometheus text exposition of every metric (`/metrics`).
    pub fn render_metrics(&self) -> String {
        self.router.metrics.render_prometheus(&self.live_metrics())
    }

    /// Whether Redis (when configured) is connected and subscribed; true without Redis.
    pub fn is_ready(&self) -> bool {
        let remote_ready = self.router.remote.get().is_none_or(|r| r.is_ready());
        !self.router.is_shutting_down() && remote_ready
    }

    /// Completes once Redis carries every channel this node needs: its clients', users'
    /// and rooms' (in patterns mode, once the patterns are subscribed). After it, a
    /// message published anywhere in the fleet to one of them reaches this node. At once
    /// without Redis.
    ///
    /// Connections and joins never wait for their subscription: a message another node
    /// publishes to a room in the moment after its first local member joined (the
    /// join-to-subscription window, one SUBSCRIBE round trip plus what is ahead of it;
    /// see [`crate::redis`]) does not reach this node. Code that publishes right after a
    /// join and must not miss that window can await this first.
    pub async fn wait_subscribed(&self) {
        if let Some(interest) = &self.router.interest {
            interest.all_settled().await;
        }
    }

    /// Whether shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.router.is_shutting_down()
    }

    /// Starts the graceful shutdown; returns at once ([`crate::Engine::wait`] joins).
    pub fn shutdown(&self) {
        self.router.request_shutdown();
    }
}

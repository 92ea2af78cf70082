//! [`Handle`]: deliver, query and shut down from any thread.
//!
//! Delivery calls are synchronous and never wait on I/O: they encode the message once,
//! queue it for the shards, and queue the envelope for Redis when one is configured.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;
use tokio::sync::oneshot;

use super::EngineShared;
use crate::id::{ClientId, ServerId};
use crate::metrics::{Metrics, StatsSnapshot};
use crate::protocol::envelope::{Envelope, EnvelopeTarget};
use crate::protocol::{Frame, RawJson};
use crate::shard::inbox::{Command, Exclude, Query, Target};

/// The engine's door for applications: `Clone + Send + Sync`.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<EngineShared>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Handle>();
};

/// Who a publication is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// One client, by id.
    Client(&'a str),
    /// Every session of a user.
    User(&'a str),
    /// Every member of a room.
    Room(&'a str),
    /// Every authenticated client.
    Broadcast,
}

/// A message whose `data` is already JSON text (the HTTP API and Redis path).
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// Who.
    pub destination: Destination<'a>,
    /// The event name.
    pub event: &'a str,
    /// The `data` JSON, or `None` to omit it.
    pub data: Option<&'a RawJson>,
    /// Client ids to skip (room and broadcast only).
    pub exclude: &'a [String],
}

/// Why a delivery call failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// `data` could not be serialized to JSON; fix its `Serialize` impl.
    #[error("could not encode data as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// The id is not a client id (a lowercase hyphenated UUID).
    #[error("`{0}` is not a client id")]
    InvalidClientId(String),
}

impl Handle {
    /// This process's id in Redis envelopes.
    pub fn server_id(&self) -> &ServerId {
        &self.shared.server_id
    }

    /// Sends to one client, wherever it is connected.
    pub fn send_to_client<T: Serialize + ?Sized>(
        &self,
        client_id: &str,
        event: &str,
        data: &T,
    ) -> Result<(), SendError> {
        let frame = Frame::from_serialize(event, data)?;
        self.dispatch(Destination::Client(client_id), event, frame, &[]);
        Ok(())
    }

    /// Sends to every session of a user, on every instance.
    pub fn send_to_user<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        event: &str,
        data: &T,
    ) -> Result<(), SendError> {
        let frame = Frame::from_serialize(event, data)?;
        self.dispatch(Destination::User(user_id), event, frame, &[]);
        Ok(())
    }

    /// Sends to every member of a room except the `exclude`d client ids.
    pub fn send_to_room<T: Serialize + ?Sized>(
        &self,
        room: &str,
        event: &str,
        data: &T,
        exclude: &[String],
    ) -> Result<(), SendError> {
        let frame = Frame::from_serialize(event, data)?;
        self.dispatch(Destination::Room(room), event, frame, exclude);
        Ok(())
    }

    /// Sends to every authenticated client except the `exclude`d ones.
    pub fn broadcast<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        exclude: &[String],
    ) -> Result<(), SendError> {
        let frame = Frame::from_serialize(event, data)?;
        self.dispatch(Destination::Broadcast, event, frame, exclude);
        Ok(())
    }

    /// Ignis `send`: no destination broadcasts; a client id connected here gets it (and
    /// it is published as a client envelope); anything else is a room, delivered here and
    /// published as a room envelope.
    pub fn send<T: Serialize + ?Sized>(
        &self,
        destination: Option<&str>,
        event: &str,
        data: &T,
    ) -> Result<(), SendError> {
        let Some(destination) = destination else {
            return self.broadcast(event, data, &[]);
        };
        let frame = Frame::from_serialize(event, data)?;
        match ClientId::parse_canonical(destination) {
            Some(id) => {
                // Only the owner shard knows whether the client is here; it decides.
                let owner = self.shared.broker.owner_of(&id);
                let command = Command::Resolve(id, Arc::from(event), frame);
                self.shared.broker.send_to(owner, command);
            }
            None => self.dispatch(Destination::Room(destination), event, frame, &[]),
        }
        Ok(())
    }

    /// Delivers a message whose data is raw JSON, locally and to other instances.
    pub fn publish(&self, publication: Publication<'_>) {
        let frame = Frame::from_raw(publication.event, publication.data);
        self.dispatch(
            publication.destination,
            publication.event,
            frame,
            publication.exclude,
        );
    }

    /// Delivers a message that came from another instance (never re-published).
    pub fn deliver_from_remote(&self, publication: Publication<'_>) {
        let frame = Frame::from_raw(publication.event, publication.data);
        self.deliver_local(publication.destination, frame, publication.exclude);
    }

    pub(crate) fn dispatch(
        &self,
        destination: Destination<'_>,
        event: &str,
        frame: Frame,
        exclude: &[String],
    ) {
        self.publish_envelope(&destination, event, &frame, exclude);
        self.deliver_local(destination, frame, exclude);
    }

    fn deliver_local(&self, destination: Destination<'_>, frame: Frame, exclude: &[String]) {
        let target = match destination {
            Destination::Client(id) => match ClientId::parse_canonical(id) {
                Some(id) => Target::Client(id),
                None => return,
            },
            Destination::User(user) => Target::User(Arc::from(user)),
            Destination::Room(room) => Target::Room(Arc::from(room)),
            Destination::Broadcast => Target::Broadcast,
        };
        let exclude = match destination {
            Destination::Room(_) | Destination::Broadcast => exclude_set(exclude),
            _ => None,
        };
        self.shared.broker.deliver(target, frame, exclude);
    }

    pub(crate) fn publish_envelope(
        &self,
        destination: &Destination<'_>,
        event: &str,
        frame: &Frame,
        exclude: &[String],
    ) {
        let Some(remote) = self.shared.remote.get() else {
            return;
        };
        let target = match *destination {
            Destination::Client(id) => EnvelopeTarget::Client(id.to_owned()),
            Destination::User(user) => EnvelopeTarget::User(user.to_owned()),
            Destination::Room(room) => EnvelopeTarget::Room(room.to_owned()),
            Destination::Broadcast => EnvelopeTarget::Broadcast,
        };
        let envelope = Envelope {
            server_id: self.shared.server_id.as_str().to_owned(),
            target,
            event: event.to_owned(),
            data: frame
                .data_json()
                .map(|d| String::from_utf8_lossy(d).into_owned()),
            exclude: exclude.to_vec(),
        };
        if remote.publish_envelope(&envelope) {
            self.shared.metrics.redis_published.inc();
        }
    }

    /// Forwards a client's custom event to the backend over Redis channel `ws:inbound`
    /// as `{"serverId","clientId","userId","event","data","id"}` (what the standalone
    /// server does with every custom event). Returns false without Redis.
    pub fn forward_inbound(&self, message: &super::ClientMessage) -> bool {
        let Some(remote) = self.shared.remote.get() else {
            return false;
        };
        let payload = crate::redis::inbound_payload(
            self.shared.server_id.as_str(),
            &message.client_id.to_string(),
            message.user_id.as_deref(),
            &message.event,
            message.data.as_deref().map(RawJson::get),
            message.id.as_deref().map(RawJson::get),
        );
        remote.publish_inbound(payload);
        true
    }

    /// Makes a connected client join rooms, bypassing the room validator.
    pub fn join(&self, client_id: &str, rooms: &[&str]) -> Result<(), SendError> {
        let id = parse_client(client_id)?;
        let rooms = rooms.iter().map(|r| r.to_string()).collect();
        let owner = self.shared.broker.owner_of(&id);
        self.shared.broker.send_to(owner, Command::Join(id, rooms));
        Ok(())
    }

    /// Makes a connected client leave rooms.
    pub fn leave(&self, client_id: &str, rooms: &[&str]) -> Result<(), SendError> {
        let id = parse_client(client_id)?;
        let rooms = rooms.iter().map(|r| r.to_string()).collect();
        let owner = self.shared.broker.owner_of(&id);
        self.shared.broker.send_to(owner, Command::Leave(id, rooms));
        Ok(())
    }

    /// Routes a client's messages through the configured outbound transformer
    /// (Ignis `enableClientEncryption`); no effect without a transformer.
    pub fn enable_client_encryption(&self, client_id: &str) -> Result<(), SendError> {
        let id = parse_client(client_id)?;
        let owner = self.shared.broker.owner_of(&id);
        self.shared
            .broker
            .send_to(owner, Command::EnableEncryption(id));
        Ok(())
    }

    /// Closes a local client with 1000.
    pub fn disconnect(&self, client_id: &str) -> Result<(), SendError> {
        let id = parse_client(client_id)?;
        let owner = self.shared.broker.owner_of(&id);
        self.shared.broker.send_to(owner, Command::Disconnect(id));
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
        let Some(id) = ClientId::parse_canonical(client_id) else {
            return false;
        };
        let (tx, rx) = oneshot::channel();
        let owner = self.shared.broker.owner_of(&id);
        if !self
            .shared
            .broker
            .send_to(owner, Command::Query(Query::HasClient(id, tx)))
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    async fn gather(
        &self,
        make: impl Fn(oneshot::Sender<Vec<ClientId>>) -> Query,
    ) -> Vec<ClientId> {
        let mut replies = Vec::new();
        for shard in self.shared.broker.shards() {
            let (tx, rx) = oneshot::channel();
            if self.shared.broker.send_to(shard, Command::Query(make(tx))) {
                replies.push(rx);
            }
        }
        let mut all = Vec::new();
        for reply in replies {
            all.extend(reply.await.unwrap_or_default());
        }
        all
    }

    /// Connection and delivery totals of this instance.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// Every counter (for exporting).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Whether Redis (when configured) is connected and subscribed; true without Redis.
    pub fn is_ready(&self) -> bool {
        !self.shared.is_shutting_down() && self.shared.remote.get().is_none_or(|r| r.is_ready())
    }

    /// Starts the graceful shutdown; returns at once ([`super::Engine::wait`] joins).
    pub fn shutdown(&self) {
        if !self.shared.shutting_down.swap(true, Ordering::AcqRel) {
            self.shared.shutdown_requested.notify_one();
        }
    }
}

fn parse_client(id: &str) -> Result<ClientId, SendError> {
    ClientId::parse_canonical(id).ok_or_else(|| SendError::InvalidClientId(id.to_owned()))
}

fn exclude_set(exclude: &[String]) -> Exclude {
    if exclude.is_empty() {
        return None;
    }
    let set: ahash::AHashSet<ClientId> = exclude
        .iter()
        .filter_map(|id| ClientId::parse_canonical(id))
        .collect();
    (!set.is_empty()).then(|| Arc::new(set))
}

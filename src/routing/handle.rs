//! [`Handle`]: deliver from any thread.
//!
//! Delivery calls are synchronous and never wait on I/O: they encode the message once,
//! queue it for the shards, and queue it for Redis when one is configured.

use std::sync::Arc;

use serde::Serialize;

use super::Router;
use super::command::{Command, Delivery, exclude_set};
use crate::id::{ClientId, InvalidClientId, ServerId};
use crate::protocol::envelope::Envelope;
use crate::protocol::{ClientMessage, Frame, RawJson, Target};

/// The engine's door for applications: `Clone + Send + Sync`.
///
/// ```no_run
/// # fn demo(handle: shardcast::Handle) -> Result<(), shardcast::SendError> {
/// handle.send_to_room("prices", "tick", &serde_json::json!({"btc": 97_000}), &[])?;
/// handle.send_to_user("alice", "notice", "your report is ready")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) router: Arc<Router>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Handle>();
};

/// A message whose `data` is already JSON text (the HTTP API's publish).
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// Who.
    pub target: &'a Target,
    /// The event name.
    pub event: &'a str,
    /// The `data` JSON, or `None` to omit it.
    pub data: Option<&'a RawJson>,
    /// Client ids to skip (rooms and broadcasts only).
    pub exclude: &'a [String],
}

/// Why a delivery call failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// `data` could not be serialized to JSON; fix its `Serialize` impl.
    #[error("could not encode data as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// The id is not a client id; pass the id `connected` gave the client.
    #[error("`{0}` is not a client id (a lowercase hyphenated UUID)")]
    InvalidClientId(String),
}

impl Handle {
    pub(crate) fn new(router: Arc<Router>) -> Self {
        Handle { router }
    }

    /// This process's id in Redis envelopes.
    pub fn server_id(&self) -> &ServerId {
        &self.router.server_id
    }

    /// Sends to one client, wherever it is connected.
    pub fn send_to_client<T: Serialize + ?Sized>(
        &self,
        client_id: &str,
        event: &str,
        data: &T,
    ) -> Result<(), SendError> {
        let target = Target::Client(parse_client(client_id)?);
        self.send_to(target, event, data, &[])
    }

    /// Sends to every session of a user, on every instance.
    pub fn send_to_user<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        event: &str,
        data: &T,
    ) -> Result<(), SendError> {
        self.send_to(Target::user(user_id), event, data, &[])
    }

    /// Sends to every member of a room except the `exclude`d client ids.
    pub fn send_to_room<T: Serialize + ?Sized>(
        &self,
        room: &str,
        event: &str,
        data: &T,
        exclude: &[String],
    ) -> Result<(), SendError> {
        self.send_to(Target::room(room), event, data, exclude)
    }

    /// Sends to every authenticated client except the `exclude`d ones.
    pub fn broadcast<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        exclude: &[String],
    ) -> Result<(), SendError> {
        self.send_to(Target::Broadcast, event, data, exclude)
    }

    /// Sends to any [`Target`], here and on every other instance.
    pub fn send_to<T: Serialize + ?Sized>(
        &self,
        target: Target,
        event: &str,
        data: &T,
        exclude: &[String],
    ) -> Result<(), SendError> {
        let frame = Frame::from_serialize(event, data)?;
        self.dispatch(target, frame, exclude);
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
        match destination.parse::<ClientId>() {
            // Only the owner shard knows whether the client is here; it decides.
            Ok(id) => {
                self.router
                    .broker
                    .send_to_owner(&id, Command::Resolve(id, frame));
            }
            Err(_) => self.dispatch(Target::room(destination), frame, &[]),
        }
        Ok(())
    }

    /// Delivers a message whose data is raw JSON, locally and to other instances.
    pub fn publish(&self, publication: Publication<'_>) {
        let frame = Frame::from_raw(publication.event, publication.data);
        self.dispatch(publication.target.clone(), frame, publication.exclude);
    }

    /// Delivers an envelope that came from another instance (never re-published). A
    /// history room's message (it carries its position) is delivered with it.
    pub(crate) fn deliver_remote(&self, envelope: Envelope) {
        if let (Target::Room(room), Some(position)) = (&envelope.target, &envelope.position) {
            let frame = envelope
                .message
                .with_position(room, position.offset, &position.epoch);
            self.router.broker.deliver(Delivery {
                target: envelope.target.clone(),
                frame,
                exclude: exclude_set(&envelope.exclude),
                stamp: 0,
                position: Some(position.clone()),
            });
            return;
        }
        self.deliver_local(envelope.target, envelope.message, &envelope.exclude);
    }

    /// Delivers here and publishes to the other instances; a history room's message
    /// gets its position first ([`Handle::publish_positioned`]).
    pub(crate) fn dispatch(&self, target: Target, frame: Frame, exclude: &[String]) {
        if let Target::Room(room) = &target
            && self.keeps_history(room)
        {
            return self.publish_positioned(room, frame, exclude);
        }
        self.publish_remote(&target, &frame, exclude);
        self.deliver_local(target, frame, exclude);
    }

    /// Hands the frame to the shards that may hold recipients of `target`.
    pub(crate) fn deliver_local(&self, target: Target, frame: Frame, exclude: &[String]) {
        let exclude = match target.honours_exclude() {
            true => exclude_set(exclude),
            false => None,
        };
        let delivery = Delivery {
            target,
            frame,
            exclude,
            stamp: 0,
            position: None,
        };
        self.router.broker.deliver(delivery);
    }

    /// Publishes to the other instances, when Redis is configured.
    pub(crate) fn publish_remote(&self, target: &Target, frame: &Frame, exclude: &[String]) {
        let Some(remote) = self.router.remote.get() else {
            return;
        };
        if remote.publish(target, frame, exclude) {
            self.router.metrics.redis_queued.inc();
        }
    }

    /// Forwards a client's custom event to the backend over Redis channel `ws:inbound`
    /// as `{"serverId","clientId","userId","event","data","id"}` (what the standalone
    /// server does with every custom event). Returns false without Redis.
    ///
    /// Each client has at most `max_forwarded_per_client` events waiting to be published;
    /// past that its events are dropped (and counted), so a client that floods loses its
    /// own events and never another client's.
    pub fn forward_inbound(&self, message: &ClientMessage) -> bool {
        let Some(remote) = self.router.remote.get() else {
            return false;
        };
        let slot = match &message.quota {
            Some(quota) => match quota.acquire() {
                Some(slot) => Some(slot),
                None => {
                    self.router.metrics.inbound_dropped.inc();
                    return false;
                }
            },
            None => None,
        };
        let payload = message.inbound_payload(self.router.server_id.as_str());
        remote.publish_inbound(payload, slot)
    }
}

/// The one client-id check of every handle call.
pub(super) fn parse_client(id: &str) -> Result<ClientId, SendError> {
    id.parse()
        .map_err(|_: InvalidClientId| SendError::InvalidClientId(id.to_owned()))
}

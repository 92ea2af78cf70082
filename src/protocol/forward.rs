//! A client's custom event as the application receives it ([`ClientMessage`]), and the
//! `ws:inbound` payload that forwards it to backends, byte-compatible with the Ignis
//! refpeer's `JSON.stringify({serverId, clientId, userId, event, data, id})` (undefined
//! keys omitted).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::value::RawValue;

use super::envelope::write_json_string;
use super::inbound::InboundMessage;
use crate::id::ClientId;

/// A custom event from an authenticated client (anything but `authenticate`,
/// `heartbeat`, `join` and `leave`).
#[derive(Debug, Clone)]
pub struct ClientMessage {
    /// The sender.
    pub client_id: ClientId,
    /// The sender's user id, if any.
    pub user_id: Option<Arc<str>>,
    /// The event name.
    pub event: String,
    /// The raw `data` member, if present.
    pub data: Option<Box<RawValue>>,
    /// The raw `id` member, if present.
    pub id: Option<Box<RawValue>>,
    /// The sender's share of the way to `ws:inbound` (set by the shard).
    pub(crate) quota: Option<ForwardQuota>,
}

/// A client's share of the queue to `ws:inbound`: how many of its events wait there at
/// most, so a client that floods loses its own events and never another client's.
#[derive(Debug, Clone)]
pub(crate) struct ForwardQuota {
    waiting: Arc<AtomicUsize>,
    max: usize,
}

/// One waiting event of a client; dropped when the event leaves the queue.
#[derive(Debug)]
pub(crate) struct ForwardSlot(Arc<AtomicUsize>);

impl ForwardQuota {
    /// A quota of `max` waiting events, counted in `waiting`.
    pub fn new(waiting: Arc<AtomicUsize>, max: usize) -> Self {
        ForwardQuota { waiting, max }
    }

    /// A slot for one more event, unless the client has `max` waiting already.
    pub fn acquire(&self) -> Option<ForwardSlot> {
        let taken = self.waiting.fetch_add(1, Ordering::AcqRel);
        if taken >= self.max {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ForwardSlot(self.waiting.clone()))
    }
}

impl Drop for ForwardSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ClientMessage {
    /// The owned form of a parsed client frame.
    pub(crate) fn new(
        client_id: ClientId,
        user_id: Option<Arc<str>>,
        message: InboundMessage<'_>,
    ) -> Self {
        ClientMessage {
            client_id,
            user_id,
            event: message.event.into_owned(),
            data: message.data.map(ToOwned::to_owned),
            id: message.id.map(ToOwned::to_owned),
            quota: None,
        }
    }

    /// The `ws:inbound` payload of this message, sent by server `server_id`.
    pub fn inbound_payload(&self, server_id: &str) -> Vec<u8> {
        inbound_payload(
            server_id,
            &self.client_id.to_string(),
            self.user_id.as_deref(),
            &self.event,
            self.data.as_deref().map(RawValue::get),
            self.id.as_deref().map(RawValue::get),
        )
    }
}

/// Builds `{"serverId","clientId","userId"?,"event","data"?,"id"?}`.
///
/// `user_id` is omitted when `None` (a client authenticated without a user id); `data` and
/// `id` are raw JSON text embedded verbatim (as the client sent them) and omitted when the
/// client sent none.
///
/// ```
/// use shardcast::protocol::forward::inbound_payload;
/// let p = inbound_payload("srv", "c1", Some("u1"), "chat", Some(r#"{"t":"hi"}"#), Some(r#""m-1""#));
/// assert_eq!(p, br#"{"serverId":"srv","clientId":"c1","userId":"u1","event":"chat","data":{"t":"hi"},"id":"m-1"}"#);
/// let p = inbound_payload("srv", "c1", None, "ping", None, None);
/// assert_eq!(p, br#"{"serverId":"srv","clientId":"c1","event":"ping"}"#);
/// ```
pub fn inbound_payload(
    server_id: &str,
    client_id: &str,
    user_id: Option<&str>,
    event: &str,
    data: Option<&str>,
    id: Option<&str>,
) -> Vec<u8> {
    let raw_len = data.map_or(0, str::len) + id.map_or(0, str::len);
    let mut out =
        Vec::with_capacity(80 + server_id.len() + client_id.len() + event.len() + raw_len);
    push_string(&mut out, b"{\"serverId\":", server_id);
    push_string(&mut out, b",\"clientId\":", client_id);
    if let Some(user_id) = user_id {
        push_string(&mut out, b",\"userId\":", user_id);
    }
    push_string(&mut out, b",\"event\":", event);
    push_raw(&mut out, b",\"data\":", data);
    push_raw(&mut out, b",\"id\":", id);
    out.push(b'}');
    out
}

fn push_string(out: &mut Vec<u8>, key: &[u8], value: &str) {
    out.extend_from_slice(key);
    write_json_string(out, value);
}

fn push_raw(out: &mut Vec<u8>, key: &[u8], raw: Option<&str>) {
    if let Some(raw) = raw {
        out.extend_from_slice(key);
        out.extend_from_slice(raw.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_holds_at_most_max_slots_and_frees_them_on_drop() {
        let quota = ForwardQuota::new(Arc::default(), 2);
        let (a, b) = (quota.acquire(), quota.acquire());
        assert!(a.is_some() && b.is_some());
        assert!(quota.acquire().is_none());
        drop(a);
        assert!(quota.acquire().is_some());
    }

    #[test]
    fn escapes_and_orders_keys() {
        let p = inbound_payload("s", "c\"1", Some("ü"), "e\n", Some("[1,null]"), Some("7"));
        assert_eq!(
            String::from_utf8(p).unwrap(),
            r#"{"serverId":"s","clientId":"c\"1","userId":"ü","event":"e\n","data":[1,null],"id":7}"#
        );
    }
}

//! The `ws:inbound` payload: how a node forwards a client's custom event to backends,
//! byte-compatible with the Ignis refpeer's
//! `JSON.stringify({serverId, clientId, userId, event, data, id})` (undefined keys omitted).

use crate::protocol::envelope::write_json_string;

/// The Redis channel client events are forwarded to.
pub const INBOUND_CHANNEL: &str = "ws:inbound";

/// Build `{"serverId","clientId","userId"?,"event","data"?,"id"?}`.
///
/// `user_id` is omitted when `None` (a client authenticated without a user id); `data` and
/// `id` are raw JSON text embedded verbatim (as the client sent them, re-serialized
/// compactly by the frame parser) and omitted when the client sent none.
///
/// ```
/// use shardcast::redis::inbound_payload;
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
    out.extend_from_slice(b"{\"serverId\":");
    write_json_string(&mut out, server_id);
    out.extend_from_slice(b",\"clientId\":");
    write_json_string(&mut out, client_id);
    if let Some(user_id) = user_id {
        out.extend_from_slice(b",\"userId\":");
        write_json_string(&mut out, user_id);
    }
    out.extend_from_slice(b",\"event\":");
    write_json_string(&mut out, event);
    if let Some(data) = data {
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(data.as_bytes());
    }
    if let Some(id) = id {
        out.extend_from_slice(b",\"id\":");
        out.extend_from_slice(id.as_bytes());
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_orders_keys() {
        let p = inbound_payload("s", "c\"1", Some("ü"), "e\n", Some("[1,null]"), Some("7"));
        assert_eq!(
            String::from_utf8(p).unwrap(),
            r#"{"serverId":"s","clientId":"c\"1","userId":"ü","event":"e\n","data":[1,null],"id":7}"#
        );
    }
}

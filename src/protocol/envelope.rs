//! The Ignis Redis envelope (`IRedisSocketMessage`): what nodes and emitters publish on the
//! `ws:*` channels.
//!
//! Wire form, exactly as Ignis produces it with
//! `JSON.stringify({serverId, type, target, event, data, exclude})`:
//!
//! ```text
//! {"serverId":"<uuid>|emitter","type":"client|user|room|broadcast","target":"…","event":"…","data":…,"exclude":["…"]}
//! ```
//!
//! `target` is absent for `broadcast`, `data` when undefined, `exclude` when undefined.
//!
//! # Acceptance rules (mirrors `WebSocketServerHelper.onRedisMessage`)
//!
//! * The payload must be a JSON object with a string `serverId` and a string `event`
//!   (an empty `event` is accepted, as in Ignis).
//! * `type` must be `client`, `user`, `room` or `broadcast`.
//! * `client`/`user`/`room` need a non-empty string `target` (Ignis drops a falsy target).
//!   A `target` on a `broadcast` is ignored.
//! * `exclude`, when present and not `null`, must be an array; non-string members are
//!   skipped. It is kept for `room` and `broadcast` only.
//! * Duplicate top-level keys: the last one wins, as with `JSON.parse`.
//!
//! # Data
//!
//! Parsing uses simd-json's tape, which keeps document order, so `data` is re-emitted as
//! compact JSON with its keys in the original order. Strings are escaped the way
//! `JSON.stringify` escapes them; numbers keep their value (integers print as integers,
//! floats in shortest round-trip form, integral floats without a fraction as in JS).
//! Numbers beyond 64-bit integers are rejected by simd-json (Ignis would round them).
//!
//! Nothing here panics on any input bytes; the nesting depth is bounded by simd-json (1024).

use simd_json::prelude::*;
use simd_json::{Node, StaticNode};
use thiserror::Error;

/// The `serverId` used by emitters (never equal to a node's random UUID, so every node
/// delivers emitter messages).
pub const EMITTER_SERVER_ID: &str = "emitter";

/// The Ignis channel for broadcast envelopes (SUBSCRIBE).
pub const BROADCAST_CHANNEL: &str = "ws:broadcast";
/// Prefix of room channels; nodes PSUBSCRIBE `ws:room:*`.
pub const ROOM_PREFIX: &str = "ws:room:";
/// Prefix of client channels; nodes PSUBSCRIBE `ws:client:*`.
pub const CLIENT_PREFIX: &str = "ws:client:";
/// Prefix of user channels; nodes PSUBSCRIBE `ws:user:*`.
pub const USER_PREFIX: &str = "ws:user:";

/// Who an envelope is addressed to (`type` + `target` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EnvelopeTarget {
    /// One client, by client id (`type: "client"`).
    Client(String),
    /// Every session of a user, by user id (`type: "user"`).
    User(String),
    /// Every member of a room (`type: "room"`); `exclude` applies.
    Room(String),
    /// Every authenticated client (`type: "broadcast"`); `exclude` applies.
    Broadcast,
}

impl EnvelopeTarget {
    /// The wire `type`: `client`, `user`, `room` or `broadcast`.
    pub fn kind(&self) -> &'static str {
        match self {
            EnvelopeTarget::Client(_) => "client",
            EnvelopeTarget::User(_) => "user",
            EnvelopeTarget::Room(_) => "room",
            EnvelopeTarget::Broadcast => "broadcast",
        }
    }

    /// The wire `target` (`None` for broadcast).
    pub fn target(&self) -> Option<&str> {
        match self {
            EnvelopeTarget::Client(t) | EnvelopeTarget::User(t) | EnvelopeTarget::Room(t) => {
                Some(t)
            }
            EnvelopeTarget::Broadcast => None,
        }
    }

    /// Whether `exclude` is honoured for this target (room and broadcast only).
    pub fn honours_exclude(&self) -> bool {
        matches!(self, EnvelopeTarget::Room(_) | EnvelopeTarget::Broadcast)
    }
}

/// One cross-instance message, as published on the `ws:*` channels.
///
/// ```
/// use shardcast::protocol::envelope::{Envelope, EnvelopeTarget};
///
/// let mut raw = br#"{"serverId":"emitter","type":"room","target":"lobby","event":"tick","data":{"n": 1}}"#.to_vec();
/// let env = Envelope::parse(&mut raw).unwrap();
/// assert_eq!(env.target, EnvelopeTarget::Room("lobby".into()));
/// assert_eq!(env.data.as_deref(), Some(r#"{"n":1}"#));
/// assert_eq!(env.channel(), "ws:room:lobby");
/// assert_eq!(
///     env.encode(),
///     br#"{"serverId":"emitter","type":"room","target":"lobby","event":"tick","data":{"n":1}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The publishing process (`"emitter"` for emitters); a node skips its own.
    pub server_id: String,
    /// Who the message is for.
    pub target: EnvelopeTarget,
    /// The event name delivered to clients.
    pub event: String,
    /// `data` as compact JSON text, exactly as it will be embedded in the client frame; None when absent.
    pub data: Option<String>,
    /// Client ids to skip; honoured for Room and Broadcast only.
    pub exclude: Vec<String>,
}

/// Why a payload is not an acceptable envelope. Every variant means "log (rate-limited) and
/// drop"; the fix is on the publishing side.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    /// The payload is not valid UTF-8 JSON (the detail says where). Publish
    /// `JSON.stringify`-style text.
    #[error("not valid JSON: {0}")]
    InvalidJson(String),
    /// The payload is JSON but not an object. Publish `{"serverId":…,"type":…,…}`.
    #[error("envelope is not a JSON object")]
    NotAnObject,
    /// `serverId` is missing or not a string. Emitters use `"emitter"`.
    #[error("envelope has no string `serverId`")]
    MissingServerId,
    /// `event` is missing or not a string.
    #[error("envelope has no string `event`")]
    MissingEvent,
    /// `type` is missing or not one of client|user|room|broadcast.
    #[error("envelope `type` must be one of client|user|room|broadcast")]
    UnknownType,
    /// A client/user/room envelope lacks a non-empty string `target`.
    #[error("envelope of type `{0}` needs a non-empty string `target`")]
    MissingTarget(&'static str),
    /// `exclude` is present but not an array (of client ids).
    #[error("envelope `exclude` must be an array of client ids")]
    ExcludeNotArray,
}

/// The top-level fields found while walking the tape.
#[derive(Default)]
struct Fields<'t> {
    server_id: Option<Node<'t>>,
    kind: Option<Node<'t>>,
    target: Option<Node<'t>>,
    event: Option<Node<'t>>,
    /// Tape index of the `data` value.
    data: Option<usize>,
    /// Tape index of the `exclude` value.
    exclude: Option<usize>,
}

impl Envelope {
    /// Parse with simd-json (the buffer is modified in place). Accepted only as a JSON object with string
    /// `serverId` and string `event`; `type` must be client|user|room|broadcast; client/user/room need a string
    /// `target`; `exclude` must be an array (non-string members ignored) when present. Anything else → EnvelopeError.
    pub fn parse(buf: &mut [u8]) -> Result<Envelope, EnvelopeError> {
        let tape =
            simd_json::to_tape(buf).map_err(|e| EnvelopeError::InvalidJson(e.to_string()))?;
        let nodes = tape.0.as_slice();
        let fields = top_level_fields(nodes)?;
        let server_id = string_of(fields.server_id).ok_or(EnvelopeError::MissingServerId)?;
        let event = string_of(fields.event).ok_or(EnvelopeError::MissingEvent)?;
        let target = parse_target(fields.kind, fields.target)?;
        let exclude = match fields.exclude {
            Some(i) if target.honours_exclude() => string_members(nodes, i)?,
            Some(i) => {
                string_members(nodes, i)?;
                Vec::new()
            }
            None => Vec::new(),
        };
        let data = fields.data.map(|i| {
            let mut out = Vec::new();
            write_node(nodes, i, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        });
        Ok(Envelope {
            server_id: server_id.to_owned(),
            target,
            event: event.to_owned(),
            data,
            exclude,
        })
    }

    /// Serialize like Ignis' JSON.stringify({serverId, type, target, event, data, exclude}) (same key order;
    /// `target` omitted for broadcast; `data` omitted when None; `exclude` omitted when empty).
    ///
    /// `data` is embedded verbatim: it must already be JSON text (see [`compact_json`]).
    pub fn encode(&self) -> Vec<u8> {
        let data_len = self.data.as_ref().map_or(0, String::len);
        let mut out = Vec::with_capacity(96 + self.event.len() + data_len);
        out.extend_from_slice(b"{\"serverId\":");
        write_json_string(&mut out, &self.server_id);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(self.target.kind().as_bytes());
        out.push(b'"');
        if let Some(target) = self.target.target() {
            out.extend_from_slice(b",\"target\":");
            write_json_string(&mut out, target);
        }
        out.extend_from_slice(b",\"event\":");
        write_json_string(&mut out, &self.event);
        if let Some(data) = &self.data {
            out.extend_from_slice(b",\"data\":");
            out.extend_from_slice(data.as_bytes());
        }
        if !self.exclude.is_empty() {
            out.extend_from_slice(b",\"exclude\":[");
            for (i, id) in self.exclude.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(&mut out, id);
            }
            out.push(b']');
        }
        out.push(b'}');
        out
    }

    /// The Ignis channel: ws:broadcast, ws:room:{room}, ws:client:{id}, ws:user:{id}.
    pub fn channel(&self) -> String {
        match &self.target {
            EnvelopeTarget::Client(id) => format!("{CLIENT_PREFIX}{id}"),
            EnvelopeTarget::User(id) => format!("{USER_PREFIX}{id}"),
            EnvelopeTarget::Room(room) => format!("{ROOM_PREFIX}{room}"),
            EnvelopeTarget::Broadcast => BROADCAST_CHANNEL.to_owned(),
        }
    }
}

/// Validate JSON text and return it in compact form (insignificant whitespace removed, key
/// order kept, strings re-escaped like `JSON.stringify`) — the form [`Envelope::data`] holds.
///
/// ```
/// use shardcast::protocol::envelope::compact_json;
/// assert_eq!(compact_json(r#"{ "a" : [1, 2.5, "x"] }"#).unwrap(), r#"{"a":[1,2.5,"x"]}"#);
/// assert!(compact_json("{nope").is_err());
/// ```
pub fn compact_json(text: &str) -> Result<String, EnvelopeError> {
    let mut buf = text.as_bytes().to_vec();
    let tape =
        simd_json::to_tape(&mut buf).map_err(|e| EnvelopeError::InvalidJson(e.to_string()))?;
    let mut out = Vec::with_capacity(text.len());
    write_node(tape.0.as_slice(), 0, &mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Append `s` as a JSON string literal, escaped exactly like `JSON.stringify`: `"` and `\`,
/// the short escapes `\b \f \n \r \t`, other control characters as lowercase `\u00xx`;
/// everything else (including non-ASCII, `/`, U+2028/2029) verbatim.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&hex);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Walk the root object, remembering the fields an envelope cares about (last key wins).
fn top_level_fields<'t>(nodes: &[Node<'t>]) -> Result<Fields<'t>, EnvelopeError> {
    let Some(Node::Object { len, .. }) = nodes.first() else {
        return Err(EnvelopeError::NotAnObject);
    };
    let mut fields = Fields::default();
    let mut i = 1;
    for _ in 0..*len {
        let key = match nodes.get(i) {
            Some(Node::String(key)) => *key,
            _ => break,
        };
        let value = i + 1;
        let node = nodes.get(value).copied();
        match key {
            "serverId" => fields.server_id = node,
            "type" => fields.kind = node,
            "target" => fields.target = node,
            "event" => fields.event = node,
            "data" => fields.data = Some(value),
            "exclude" => fields.exclude = Some(value),
            _ => {}
        }
        i = value + span(nodes, value);
    }
    Ok(fields)
}

/// `type` + `target` → [`EnvelopeTarget`].
fn parse_target(
    kind: Option<Node<'_>>,
    target: Option<Node<'_>>,
) -> Result<EnvelopeTarget, EnvelopeError> {
    let kind = string_of(kind).ok_or(EnvelopeError::UnknownType)?;
    let build: fn(String) -> EnvelopeTarget = match kind {
        "broadcast" => return Ok(EnvelopeTarget::Broadcast),
        "client" => EnvelopeTarget::Client,
        "user" => EnvelopeTarget::User,
        "room" => EnvelopeTarget::Room,
        _ => return Err(EnvelopeError::UnknownType),
    };
    match string_of(target) {
        Some(t) if !t.is_empty() => Ok(build(t.to_owned())),
        _ => Err(EnvelopeError::MissingTarget(match kind {
            "client" => "client",
            "user" => "user",
            _ => "room",
        })),
    }
}

/// The string members of the array at tape index `i` (`null` counts as an empty list).
fn string_members(nodes: &[Node<'_>], i: usize) -> Result<Vec<String>, EnvelopeError> {
    let len = match nodes.get(i) {
        Some(Node::Array { len, .. }) => *len,
        Some(Node::Static(StaticNode::Null)) => return Ok(Vec::new()),
        _ => return Err(EnvelopeError::ExcludeNotArray),
    };
    let mut out = Vec::with_capacity(len);
    let mut j = i + 1;
    for _ in 0..len {
        if let Some(Node::String(s)) = nodes.get(j) {
            out.push((*s).to_owned());
        }
        j += span(nodes, j);
    }
    Ok(out)
}

fn string_of<'t>(node: Option<Node<'t>>) -> Option<&'t str> {
    match node {
        Some(Node::String(s)) => Some(s),
        _ => None,
    }
}

/// Number of tape nodes the value at `i` occupies (at least 1, so walks always advance).
fn span(nodes: &[Node<'_>], i: usize) -> usize {
    match nodes.get(i) {
        Some(Node::Object { count, .. } | Node::Array { count, .. }) => count + 1,
        _ => 1,
    }
}

/// Serialize the value at tape index `i` compactly; returns the index after it.
fn write_node(nodes: &[Node<'_>], i: usize, out: &mut Vec<u8>) -> usize {
    match nodes.get(i) {
        Some(Node::String(s)) => write_json_string(out, s),
        Some(Node::Static(s)) => write_static(out, s),
        Some(Node::Array { len, .. }) => {
            out.push(b'[');
            let mut j = i + 1;
            for k in 0..*len {
                if k > 0 {
                    out.push(b',');
                }
                j = write_node(nodes, j, out);
            }
            out.push(b']');
            return j;
        }
        Some(Node::Object { len, .. }) => {
            out.push(b'{');
            let mut j = i + 1;
            for k in 0..*len {
                if k > 0 {
                    out.push(b',');
                }
                j = write_node(nodes, j, out);
                out.push(b':');
                j = write_node(nodes, j, out);
            }
            out.push(b'}');
            return j;
        }
        None => return nodes.len(),
    }
    i + 1
}

/// Numbers, booleans and null, printed the way JS prints them where it matters
/// (integral floats without a fraction, `-0` as `0`).
fn write_static(out: &mut Vec<u8>, node: &StaticNode) {
    let text = match node.value_type() {
        ValueType::Null => "null".to_owned(),
        ValueType::Bool => node.as_bool().unwrap_or(false).to_string(),
        ValueType::I64 => node.as_i64().unwrap_or(0).to_string(),
        ValueType::U64 => node.as_u64().unwrap_or(0).to_string(),
        _ => format_f64(node.cast_f64().unwrap_or(f64::NAN)),
    };
    out.extend_from_slice(text.as_bytes());
}

fn format_f64(f: f64) -> String {
    if !f.is_finite() {
        "null".to_owned()
    } else if f == 0.0 {
        "0".to_owned()
    } else if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        format!("{f:?}")
    }
}

#[cfg(test)]
mod tests;

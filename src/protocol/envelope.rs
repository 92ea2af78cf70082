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
//! # Parsed once, straight into the frame
//!
//! An [`Envelope`] carries its message as the [`Frame`] clients will receive: parsing
//! walks simd-json's tape once and writes `{"event":…,"data":…}` directly into the
//! frame's buffer, so an envelope from Redis is never re-validated or copied again on its
//! way to the shards. Encoding slices the same frame (`"event":…,"data":…` appear in the
//! same order in both forms), so a local message goes to Redis without re-serializing.
//!
//! # Acceptance rules (mirrors `WebSocketServerHelper.onRedisMessage`)
//!
//! * The payload must be a JSON object with a string `serverId` and a string `event`
//!   (an empty `event` is accepted, as in Ignis).
//! * `type` must be `client`, `user`, `room` or `broadcast`.
//! * `client`/`user`/`room` need a non-empty string `target` (Ignis drops a falsy target).
//!   A `client` target must be a client id (a lowercase UUID, as every Ignis and
//!   shardcast node mints them): no node can hold any other. A `target` on a `broadcast`
//!   is ignored.
//! * `exclude`, when present and not `null`, must be an array; non-string members are
//!   skipped. It is kept for `room` and `broadcast` only.
//! * Duplicate top-level keys: the last one wins, as with `JSON.parse`.
//!
//! # Data
//!
//! simd-json's tape keeps document order, so `data` is re-emitted as compact JSON with
//! its keys in the original order. Strings are escaped the way `JSON.stringify` escapes
//! them; numbers keep their value (integers print as integers, floats in shortest
//! round-trip form, integral floats without a fraction as in JS, except beyond 2^63
//! where they keep an exponent: `1e20`, not JS's `100000000000000000000`, so that the
//! output parses again). Integer literals beyond 64 bits are rejected by simd-json
//! (Ignis would round them).
//!
//! Nothing here panics on any input bytes; the nesting depth is bounded by simd-json (1024).

use serde_json::value::RawValue;
use simd_json::prelude::*;
use simd_json::{Node, StaticNode};
use thiserror::Error;

use std::sync::Arc;

use super::frame::{Frame, Position};
use super::target::{Target, TargetError};

/// The `serverId` used by emitters (never equal to a node's random UUID, so every node
/// delivers emitter messages).
pub const EMITTER_SERVER_ID: &str = "emitter";

/// One cross-instance message, as published on the `ws:*` channels.
///
/// ```
/// use shardcast::protocol::Target;
/// use shardcast::protocol::envelope::Envelope;
///
/// let mut raw = br#"{"serverId":"emitter","type":"room","target":"lobby","event":"tick","data":{"n": 1}}"#.to_vec();
/// let env = Envelope::parse(&mut raw).unwrap();
/// assert_eq!(env.target, Target::room("lobby"));
/// assert_eq!(&env.message.payload()[..], br#"{"event":"tick","data":{"n":1}}"#);
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
    pub target: Target,
    /// The message as clients receive it: `{"event":…,"data":…}` in a WebSocket frame.
    pub message: Frame,
    /// Client ids to skip; honoured for rooms and broadcasts only.
    pub exclude: Vec<String>,
    /// A history room's message carries its position (`"offset":N,"epoch":"S"`, which
    /// only shardcast's publish script writes); Ignis ignores both members.
    pub position: Option<Position>,
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
    /// `type` and `target` name no target (the detail says why).
    #[error("envelope {0}")]
    Target(#[from] TargetError),
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
    offset: Option<Node<'t>>,
    epoch: Option<Node<'t>>,
}

impl Envelope {
    /// An envelope for `event` with `data` (already JSON text; `None` omits it).
    pub fn new(
        server_id: impl Into<String>,
        target: Target,
        event: &str,
        data: Option<&RawValue>,
        exclude: Vec<String>,
    ) -> Self {
        Self::with_json_data(server_id, target, event, data.map(RawValue::get), exclude)
    }

    /// An envelope whose `data` is JSON text known to be valid (a [`RawValue`], or
    /// compacted by [`compact_json`]); not checked again.
    pub(crate) fn with_json_data(
        server_id: impl Into<String>,
        target: Target,
        event: &str,
        data: Option<&str>,
        exclude: Vec<String>,
    ) -> Self {
        let write = data.map(|d| move |out: &mut Vec<u8>| out.extend_from_slice(d.as_bytes()));
        let capacity = event.len() + data.map_or(0, str::len) + 24;
        Envelope {
            server_id: server_id.into(),
            target,
            message: Frame::event_with(event, capacity, write),
            exclude,
            position: None,
        }
    }

    /// Parses with simd-json (the buffer is modified in place), building the client frame
    /// on the way; see the module docs for what is accepted.
    pub fn parse(buf: &mut [u8]) -> Result<Envelope, EnvelopeError> {
        let size = buf.len();
        let tape =
            simd_json::to_tape(buf).map_err(|e| EnvelopeError::InvalidJson(e.to_string()))?;
        let nodes = tape.0.as_slice();
        let fields = top_level_fields(nodes)?;
        let server_id = string_of(fields.server_id).ok_or(EnvelopeError::MissingServerId)?;
        let event = string_of(fields.event).ok_or(EnvelopeError::MissingEvent)?;
        let kind = string_of(fields.kind).ok_or(TargetError::UnknownKind)?;
        let target = Target::parse(kind, string_of(fields.target))?;
        let exclude = exclude_of(nodes, fields.exclude, &target)?;
        let write_data = fields.data.map(|i| {
            move |out: &mut Vec<u8>| {
                write_node(nodes, i, out);
            }
        });
        let position = position_of(fields.offset, fields.epoch);
        Ok(Envelope {
            server_id: server_id.to_owned(),
            target,
            message: Frame::event_with(event, size, write_data),
            exclude,
            position,
        })
    }

    /// Serializes like Ignis' `JSON.stringify({serverId, type, target, event, data,
    /// exclude})`; see [`Envelope::write`].
    pub fn encode(&self) -> Vec<u8> {
        Self::write(&self.server_id, &self.target, &self.message, &self.exclude)
    }

    /// Serializes an envelope from its parts without assembling one: same key order as
    /// Ignis, `target` omitted for broadcast, `data` omitted when the message has none,
    /// `exclude` omitted when empty. `message` must be an event frame.
    pub fn write(server_id: &str, target: &Target, message: &Frame, exclude: &[String]) -> Vec<u8> {
        let members = message.members_json();
        let mut out = Vec::with_capacity(96 + members.len() + exclude.len() * 40);
        out.extend_from_slice(b"{\"serverId\":");
        write_json_string(&mut out, server_id);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(target.kind().as_bytes());
        out.push(b'"');
        if !matches!(target, Target::Broadcast) {
            out.extend_from_slice(b",\"target\":");
            write_json_string(&mut out, &target.to_string());
        }
        out.push(b',');
        out.extend_from_slice(members);
        write_exclude(&mut out, exclude);
        out.push(b'}');
        out
    }

    /// The Ignis channel: `ws:broadcast`, `ws:room:{room}`, `ws:client:{id}`,
    /// `ws:user:{id}`.
    pub fn channel(&self) -> String {
        self.target.channel()
    }

    /// The event name, decoded.
    pub fn event(&self) -> String {
        serde_json::from_slice(self.message.event_json()).unwrap_or_default()
    }

    /// The `data` member as compact JSON text, if any.
    pub fn data(&self) -> Option<&str> {
        std::str::from_utf8(self.message.data_json()?).ok()
    }
}

fn write_exclude(out: &mut Vec<u8>, exclude: &[String]) {
    if exclude.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"exclude\":[");
    for (i, id) in exclude.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(out, id);
    }
    out.push(b']');
}

/// Validate JSON text and return it in compact form (insignificant whitespace removed, key
/// order kept, strings re-escaped like `JSON.stringify`) — the form envelopes carry.
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
        let Some(Node::String(key)) = nodes.get(i) else {
            break;
        };
        fields.remember(key, i + 1, nodes.get(i + 1).copied());
        i += 1 + span(nodes, i + 1);
    }
    Ok(fields)
}

impl<'t> Fields<'t> {
    /// Records the value at tape index `at` if `key` is one of the envelope's fields.
    fn remember(&mut self, key: &str, at: usize, node: Option<Node<'t>>) {
        match key {
            "serverId" => self.server_id = node,
            "type" => self.kind = node,
            "target" => self.target = node,
            "event" => self.event = node,
            "data" => self.data = Some(at),
            "exclude" => self.exclude = Some(at),
            "offset" => self.offset = node,
            "epoch" => self.epoch = node,
            _ => {}
        }
    }
}

/// The position of a history room's message: a positive integer `offset` and a
/// non-empty string `epoch`, both present; anything else is no position (the message is
/// delivered as any other).
fn position_of(offset: Option<Node<'_>>, epoch: Option<Node<'_>>) -> Option<Position> {
    let offset = match offset? {
        Node::Static(StaticNode::U64(n)) => n,
        Node::Static(StaticNode::I64(n)) => u64::try_from(n).ok()?,
        _ => return None,
    };
    let epoch = string_of(epoch).filter(|e| !e.is_empty())?;
    (offset > 0).then(|| Position {
        offset,
        epoch: Arc::from(epoch),
    })
}

/// The exclude list, kept for rooms and broadcasts (checked for every type).
fn exclude_of(
    nodes: &[Node<'_>],
    at: Option<usize>,
    target: &Target,
) -> Result<Vec<String>, EnvelopeError> {
    let Some(at) = at else {
        return Ok(Vec::new());
    };
    let members = string_members(nodes, at)?;
    Ok(if target.honours_exclude() {
        members
    } else {
        Vec::new()
    })
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
        Some(Node::Array { len, .. }) => return write_members(nodes, i + 1, *len, b"[]", out),
        Some(Node::Object { len, .. }) => return write_members(nodes, i + 1, *len, b"{}", out),
        None => return nodes.len(),
    }
    i + 1
}

/// Writes `len` array elements (`brackets` `[]`) or object entries (`{}`) starting at
/// tape index `j`; returns the index after the last.
fn write_members(
    nodes: &[Node<'_>],
    mut j: usize,
    len: usize,
    brackets: &[u8; 2],
    out: &mut Vec<u8>,
) -> usize {
    out.push(brackets[0]);
    for k in 0..len {
        if k > 0 {
            out.push(b',');
        }
        if brackets[0] == b'{' {
            j = write_node(nodes, j, out);
            out.push(b':');
        }
        j = write_node(nodes, j, out);
    }
    out.push(brackets[1]);
    j
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

/// Integral floats below this magnitude print as integers; larger ones in exponent form,
/// because simd-json (ours and every other shardcast node's) refuses integer literals
/// beyond 64 bits, while `1e20` reads as the same number everywhere.
const MAX_INTEGRAL_F64: f64 = 9_223_372_036_854_775_808.0; // 2^63

fn format_f64(f: f64) -> String {
    if !f.is_finite() {
        "null".to_owned()
    } else if f == 0.0 {
        "0".to_owned()
    } else if f.fract() == 0.0 && f.abs() < MAX_INTEGRAL_F64 {
        format!("{f:.0}")
    } else {
        format!("{f:?}")
    }
}

#[cfg(test)]
mod tests;

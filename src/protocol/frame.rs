//! [`Frame`]: a server message encoded once, into a complete WebSocket frame.
//!
//! Server-to-client frames are unmasked, so the whole frame — header and the JSON
//! `{"event":…,"data":…}` — is byte-for-byte the same for every recipient. A [`Frame`]
//! holds it in one [`Bytes`]: a fan-out clones the refcount, never the bytes. The same
//! frame also yields the Redis envelope's `"event":…,"data":…` members by slicing, so a
//! message crossing nodes is never re-encoded.
//!
//! # Compressed once
//!
//! A frame [marked](Frame::share_compression) for permessage-deflate (the router marks
//! what it fans out when compression is on) carries one shared cell for its compressed
//! form: the first recipient that negotiated compression fills it, on whichever shard,
//! and every clone reads it after that (`OnceLock`: a second shard asking meanwhile
//! waits for that one compression instead of doing it again). Recipients without
//! compression keep getting the plain bytes.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::ws::deflate::Deflater;
use crate::ws::frame::{MAX_HEADER_LEN, OpCode, write_header};

/// `{"event":` — every event frame's payload starts with it.
const EVENT_PREFIX: &[u8] = b"{\"event\":";
/// What the position adds besides the room, the offset's digits and the epoch:
/// `,"room":"","offset":,"epoch":""}`.
const POSITION_LEN: usize = 32;
/// `,"data":` — between the event name and the data.
const DATA_KEY: &[u8] = b",\"data\":";

/// A message's place in its room's history (the `offset` and `epoch` a history room's
/// frames and envelopes carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// 1 for the room's first message, then +1 per message.
    pub offset: u64,
    /// The lifetime of the room's history this offset belongs to.
    pub epoch: std::sync::Arc<str>,
}

/// A complete, immutable WebSocket text frame carrying `{"event":…,"data":…}`.
///
/// ```
/// use shardcast::protocol::Frame;
///
/// let frame = Frame::from_serialize("tick", &[1, 2]).unwrap();
/// assert_eq!(&frame.payload()[..], br#"{"event":"tick","data":[1,2]}"#);
/// assert_eq!(frame.data_json(), Some(&b"[1,2]"[..]));
/// assert_eq!(frame.event_json(), br#""tick""#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
    header_len: u8,
    /// Where `data`'s JSON starts in the payload (0: no `data`, or not an event frame).
    data_start: u32,
    /// Where it ends (exclusive).
    data_end: u32,
    /// The permessage-deflate form, once made (only for a marked frame).
    compressed: Compressed,
}

/// The shared cell of a frame's compressed form: `None` until the frame is marked;
/// inside, `None` when compressing did not make it smaller. It is not part of the
/// message: two frames with the same bytes are equal either way.
#[derive(Clone, Debug, Default)]
struct Compressed(Option<Arc<OnceLock<Option<Bytes>>>>);

impl PartialEq for Compressed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Compressed {}

impl Frame {
    /// Builds the frame for an event whose `data` is already JSON text (`None` omits
    /// `data`, like `JSON.stringify` does for `undefined`).
    pub fn from_raw(event: &str, data: Option<&RawValue>) -> Frame {
        let capacity = event.len() + data.map_or(0, |d| d.get().len()) + 24;
        let data = data.map(|d| move |buf: &mut Vec<u8>| buf.extend_from_slice(d.get().as_bytes()));
        Self::event_with(event, capacity, data)
    }

    /// Builds the frame for an event whose `data` is any serializable value.
    ///
    /// # Errors
    /// Fails only when `data`'s `Serialize` impl fails (e.g. a map with non-string keys).
    pub fn from_serialize<T: Serialize + ?Sized>(
        event: &str,
        data: &T,
    ) -> Result<Frame, serde_json::Error> {
        let mut result = Ok(());
        let write = |buf: &mut Vec<u8>| result = serde_json::to_writer(&mut *buf, data);
        let frame = Self::event_with(event, event.len() + 64, Some(write));
        result.map(|()| frame)
    }

    /// Wraps an already-encoded JSON text (e.g. an encrypted envelope) in a frame.
    pub fn from_json_text(json: &[u8]) -> Frame {
        Self::build(json.len(), |buf| {
            buf.extend_from_slice(json);
            (0, 0)
        })
    }

    /// Builds `{"event":event,"data":…}`, where `write_data` (if any) appends the data's
    /// JSON text. The caller guarantees it writes one valid JSON value.
    pub(crate) fn event_with(
        event: &str,
        capacity: usize,
        write_data: Option<impl FnOnce(&mut Vec<u8>)>,
    ) -> Frame {
        Self::build(capacity, |buf| {
            buf.extend_from_slice(EVENT_PREFIX);
            super::envelope::write_json_string(buf, event);
            let (mut data_start, mut data_end) = (0, 0);
            if let Some(write) = write_data {
                buf.extend_from_slice(DATA_KEY);
                data_start = buf.len();
                write(buf);
                data_end = buf.len();
            }
            buf.push(b'}');
            (data_start, data_end)
        })
    }

    /// This event frame with its place in a room's history appended:
    /// `{"event":…,"data":…,"room":R,"offset":N,"epoch":"S"}` (one copy of the payload;
    /// every member of the room gets these same bytes). A frame marked for shared
    /// compression gives a marked frame.
    ///
    /// ```
    /// use shardcast::protocol::Frame;
    ///
    /// let frame = Frame::from_serialize("tick", &1).unwrap().with_position("lobby", 7, "e1");
    /// assert_eq!(
    ///     &frame.payload()[..],
    ///     br#"{"event":"tick","data":1,"room":"lobby","offset":7,"epoch":"e1"}"#
    /// );
    /// assert_eq!(frame.data_json(), Some(&b"1"[..]));
    /// ```
    pub fn with_position(&self, room: &str, offset: u64, epoch: &str) -> Frame {
        let payload = self.payload_slice();
        let body = &payload[..payload.len().saturating_sub(1)];
        // Exactly what is written when neither name needs escaping (the common case; a
        // history keeps these frames, so slack would be kept with them).
        let digits = offset.checked_ilog10().map_or(1, |d| d as usize + 1);
        let capacity = body.len() + room.len() + epoch.len() + digits + POSITION_LEN;
        let (start, end) = (self.data_start, self.data_end);
        let mut positioned = Self::build(capacity, |buf| {
            let base = buf.len();
            buf.extend_from_slice(body);
            buf.extend_from_slice(b",\"room\":");
            super::envelope::write_json_string(buf, room);
            buf.extend_from_slice(b",\"offset\":");
            // Writing to a Vec cannot fail.
            let _ = std::io::Write::write_fmt(buf, format_args!("{offset}"));
            buf.extend_from_slice(b",\"epoch\":");
            super::envelope::write_json_string(buf, epoch);
            buf.push(b'}');
            match start {
                0 => (0, 0),
                _ => (base + start as usize, base + end as usize),
            }
        });
        // A marked frame's positioned form is marked too (its own cell: other bytes).
        if self.shares_compression() {
            positioned.share_compression();
        }
        positioned
    }

    /// Reserves room for the largest header, lets `fill` write the payload, then writes
    /// the header right-aligned in the reserved room so the result needs no copy.
    /// `fill` returns where `data` starts and ends in `buf` (0, 0 without data).
    fn build(capacity_hint: usize, fill: impl FnOnce(&mut Vec<u8>) -> (usize, usize)) -> Frame {
        let mut buf = Vec::with_capacity(MAX_HEADER_LEN + capacity_hint);
        buf.resize(MAX_HEADER_LEN, 0);
        let (data_at, data_until) = fill(&mut buf);
        let data_start = data_at.saturating_sub(MAX_HEADER_LEN) as u32;
        let data_end = data_until.saturating_sub(MAX_HEADER_LEN) as u32;
        let payload_len = buf.len() - MAX_HEADER_LEN;
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = write_header(&mut header, OpCode::Text, payload_len as u64);
        let start = MAX_HEADER_LEN - header_len;
        buf[start..MAX_HEADER_LEN].copy_from_slice(&header[..header_len]);
        Frame {
            bytes: Bytes::from(buf).slice(start..),
            header_len: header_len as u8,
            data_start,
            data_end,
            compressed: Compressed::default(),
        }
    }

    /// Marks this frame to be compressed at most once for every recipient that
    /// negotiated permessage-deflate: its clones from now on share the result. Marking
    /// again does nothing.
    pub fn share_compression(&mut self) {
        if self.compressed.0.is_none() {
            self.compressed.0 = Some(Arc::default());
        }
    }

    /// Whether this frame is marked ([`Frame::share_compression`]).
    pub fn shares_compression(&self) -> bool {
        self.compressed.0.is_some()
    }

    /// The complete compressed frame (RSV1 set) for a recipient that negotiated
    /// permessage-deflate: made by `compress` (see [`Frame::deflate`]) for the first
    /// clone that asks, shared after that. `None` when the frame is not marked, or
    /// compressing did not make it smaller (send [`Frame::bytes`] then).
    pub fn compressed(&self, compress: impl FnOnce() -> Option<Bytes>) -> Option<&Bytes> {
        self.compressed.0.as_ref()?.get_or_init(compress).as_ref()
    }

    /// Compresses this frame's payload into a new compressed frame (what
    /// [`Frame::compressed`] calls once per marked frame).
    pub fn deflate(&self, deflater: &mut Deflater) -> Option<Bytes> {
        deflater.frame(OpCode::Text, self.payload_slice())
    }

    /// Length of the JSON payload.
    pub fn payload_len(&self) -> usize {
        self.bytes.len() - self.header_len as usize
    }

    /// The whole frame, ready to be written to a socket.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The JSON payload `{"event":…,"data":…}` (a shared slice, no copy).
    pub fn payload(&self) -> Bytes {
        self.bytes.slice(self.header_len as usize..)
    }

    fn payload_slice(&self) -> &[u8] {
        &self.bytes[self.header_len as usize..]
    }

    /// The `data` member's JSON text, sliced out of the payload (for the Redis envelope).
    pub fn data_json(&self) -> Option<&[u8]> {
        if self.data_start == 0 {
            return None;
        }
        self.payload_slice()
            .get(self.data_start as usize..self.data_end as usize)
    }

    /// The event name as its JSON string literal (quotes and escapes included). Only
    /// meaningful for frames built from an event (not [`Frame::from_json_text`]).
    pub fn event_json(&self) -> &[u8] {
        let payload = self.payload_slice();
        let end = match self.data_start {
            0 => payload.len().saturating_sub(1),
            start => start as usize - DATA_KEY.len(),
        };
        payload.get(EVENT_PREFIX.len()..end).unwrap_or_default()
    }

    /// `"event":…,"data":…` — the payload without its braces, as the Redis envelope
    /// embeds it.
    pub(crate) fn members_json(&self) -> &[u8] {
        let payload = self.payload_slice();
        payload
            .get(1..payload.len().saturating_sub(1))
            .unwrap_or_default()
    }

    /// Length of the whole frame in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a frame has at least a header. Present for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_header_plus_json() {
        let data = RawValue::from_string(r#"{"n":1}"#.to_owned()).unwrap();
        let f = Frame::from_raw("tick", Some(&data));
        let json = br#"{"event":"tick","data":{"n":1}}"#;
        assert_eq!(&f.bytes()[..2], &[0x81, json.len() as u8]);
        assert_eq!(&f.payload()[..], json);
        assert_eq!(f.data_json(), Some(&br#"{"n":1}"#[..]));
        assert_eq!(f.event_json(), br#""tick""#);
        assert_eq!(f.members_json(), br#""event":"tick","data":{"n":1}"#);
        let f = Frame::from_serialize("e", &[1, 2]).unwrap();
        assert_eq!(f.data_json(), Some(&b"[1,2]"[..]));
        assert_eq!(Frame::from_raw("e", None).data_json(), None);
        assert_eq!(Frame::from_raw("e", None).event_json(), br#""e""#);
    }

    #[test]
    fn absent_data_is_omitted_and_event_escaped() {
        let f = Frame::from_raw("a\"b", None);
        assert_eq!(&f.payload()[..], br#"{"event":"a\"b"}"#);
        assert_eq!(f.event_json(), br#""a\"b""#);
    }

    #[test]
    fn long_payload_uses_extended_length() {
        let big = "x".repeat(70_000);
        let f = Frame::from_serialize("big", &big).unwrap();
        assert_eq!(f.bytes()[1], 127);
        assert_eq!(f.payload().len() + 10, f.len());
        let f = Frame::from_serialize("mid", &"y".repeat(300)).unwrap();
        assert_eq!(f.bytes()[1], 126);
    }

    #[test]
    fn a_marked_frame_is_compressed_once_for_all_its_clones() {
        let data = "abc".repeat(100);
        let plain = Frame::from_serialize("tick", &data).unwrap();
        assert_eq!(plain.compressed(|| unreachable!("not marked")), None);
        let mut frame = plain.clone();
        frame.share_compression();
        let clone = frame.clone();
        let mut deflater = Deflater::default();
        let mut calls = 0;
        let first = frame
            .compressed(|| {
                calls += 1;
                frame.deflate(&mut deflater)
            })
            .cloned()
            .unwrap();
        let again = clone.compressed(|| {
            calls += 1;
            None
        });
        assert_eq!((calls, again), (1, Some(&first)));
        assert_eq!(first[0], 0xC1, "FIN, RSV1, text");
        assert!(first.len() < frame.len() / 4);
        assert_eq!(frame, plain, "the cell is not part of the message");
        let positioned = frame.with_position("r", 1, "e");
        assert!(positioned.shares_compression());
        assert!(!plain.with_position("r", 1, "e").shares_compression());
    }
}

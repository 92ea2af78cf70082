//! Encoding a server message once, into a complete WebSocket frame.
//!
//! Server-to-client frames are unmasked, so the whole frame — header and the JSON
//! `{"event":…,"data":…}` — is byte-for-byte the same for every recipient. [`Frame`]
//! holds it in one [`Bytes`]: a fan-out clones the refcount, never the bytes.

use bytes::Bytes;
use serde::Serialize;

pub use serde_json::value::RawValue as RawJson;

use crate::ws::frame::{MAX_HEADER_LEN, OpCode, write_header};

/// A complete, immutable WebSocket text frame carrying `{"event":…,"data":…}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
    header_len: u8,
    /// Where `data`'s JSON starts in the payload (0: no `data`, or not an event frame).
    data_start: u32,
}

impl Frame {
    /// Builds the frame for an event whose `data` is already JSON text (`None` omits `data`,
    /// like `JSON.stringify` does for `undefined`).
    pub fn from_raw(event: &str, data: Option<&RawJson>) -> Frame {
        Self::build(
            event.len() + data.map_or(0, |d| d.get().len()) + 24,
            |buf| {
                write_event_prefix(buf, event);
                let mut data_start = 0;
                if let Some(data) = data {
                    buf.extend_from_slice(b",\"data\":");
                    data_start = buf.len();
                    buf.extend_from_slice(data.get().as_bytes());
                }
                buf.push(b'}');
                data_start
            },
        )
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
        let frame = Self::build(event.len() + 64, |buf| {
            write_event_prefix(buf, event);
            buf.extend_from_slice(b",\"data\":");
            let data_start = buf.len();
            result = serde_json::to_writer(&mut *buf, data);
            buf.push(b'}');
            data_start
        });
        result.map(|()| frame)
    }

    /// Wraps an already-encoded JSON text (e.g. an encrypted envelope) in a frame.
    pub fn from_json_text(json: &[u8]) -> Frame {
        Self::build(json.len(), |buf| {
            buf.extend_from_slice(json);
            0
        })
    }

    /// Reserves room for the largest header, lets `fill` write the payload, then writes
    /// the header right-aligned in the reserved room so the result needs no copy.
    fn build(capacity_hint: usize, fill: impl FnOnce(&mut Vec<u8>) -> usize) -> Frame {
        let mut buf = Vec::with_capacity(MAX_HEADER_LEN + capacity_hint);
        buf.resize(MAX_HEADER_LEN, 0);
        let data_at = fill(&mut buf);
        let data_start = data_at.saturating_sub(MAX_HEADER_LEN) as u32;
        let payload_len = buf.len() - MAX_HEADER_LEN;
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = write_header(&mut header, OpCode::Text, payload_len as u64);
        let start = MAX_HEADER_LEN - header_len;
        buf[start..MAX_HEADER_LEN].copy_from_slice(&header[..header_len]);
        Frame {
            bytes: Bytes::from(buf).slice(start..),
            header_len: header_len as u8,
            data_start,
        }
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

    /// The `data` member's JSON text, sliced out of the payload (for the Redis envelope).
    pub fn data_json(&self) -> Option<&[u8]> {
        if self.data_start == 0 {
            return None;
        }
        let payload = &self.bytes[self.header_len as usize..];
        payload.get(self.data_start as usize..payload.len() - 1)
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

fn write_event_prefix(buf: &mut Vec<u8>, event: &str) {
    buf.extend_from_slice(b"{\"event\":");
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, event);
}

/// The `{"message": text}` data of an `error` event.
pub fn error_frame(text: &str) -> Frame {
    #[derive(Serialize)]
    struct ErrorData<'a> {
        message: &'a str,
    }
    // Serializing a struct of one &str cannot fail.
    Frame::from_serialize("error", &ErrorData { message: text })
        .unwrap_or_else(|_| Frame::from_raw("error", None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_header_plus_json() {
        let data = RawJson::from_string(r#"{"n":1}"#.to_owned()).unwrap();
        let f = Frame::from_raw("tick", Some(&data));
        let json = br#"{"event":"tick","data":{"n":1}}"#;
        assert_eq!(&f.bytes()[..2], &[0x81, json.len() as u8]);
        assert_eq!(&f.payload()[..], json);
        assert_eq!(f.data_json(), Some(&br#"{"n":1}"#[..]));
        let f = Frame::from_serialize("e", &[1, 2]).unwrap();
        assert_eq!(f.data_json(), Some(&b"[1,2]"[..]));
        assert_eq!(Frame::from_raw("e", None).data_json(), None);
    }

    #[test]
    fn absent_data_is_omitted_and_event_escaped() {
        let f = Frame::from_raw("a\"b", None);
        assert_eq!(&f.payload()[..], br#"{"event":"a\"b"}"#);
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
    fn error_frame_matches_ignis() {
        assert_eq!(
            &error_frame("Not authenticated").payload()[..],
            br#"{"event":"error","data":{"message":"Not authenticated"}}"#
        );
    }
}

/// The `connected` event: `{"id","userId"?,"time"}` plus any extra members (the
/// encryption handshake's `serverPublicKey` and `salt`), in Ignis' key order.
pub fn connected_frame(
    client_id: &str,
    user_id: Option<&str>,
    time: std::time::SystemTime,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Frame {
    let mut data = serde_json::Map::new();
    data.insert("id".into(), client_id.into());
    if let Some(user) = user_id {
        data.insert("userId".into(), user.into());
    }
    data.insert("time".into(), iso8601(time).into());
    for (key, value) in extra {
        data.insert(key.clone(), value.clone());
    }
    Frame::from_serialize("connected", &data).unwrap_or_else(|_| Frame::from_raw("connected", None))
}

/// `time` as ISO-8601 UTC with milliseconds, like JavaScript's `Date.prototype.toISOString`.
pub fn iso8601(time: std::time::SystemTime) -> String {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod time_tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn iso8601_matches_javascript() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_305_457_123);
        assert_eq!(iso8601(t), "2026-11-21T23:57:37.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn connected_has_ignis_key_order_and_omits_missing_user() {
        let f = connected_frame("c1", None, UNIX_EPOCH, &Default::default());
        assert_eq!(
            &f.payload()[..],
            br#"{"event":"connected","data":{"id":"c1","time":"1970-01-01T00:00:00.000Z"}}"#
        );
        let extra = serde_json::json!({ "salt": "s" });
        let f = connected_frame("c1", Some("u"), UNIX_EPOCH, extra.as_object().unwrap());
        assert!(
            std::str::from_utf8(&f.payload())
                .unwrap()
                .contains(r#""id":"c1","userId":"u","time""#)
        );
    }
}

//! The server's own events: `error` and `connected`, the history and presence events
//! (`ws:presence`, `ws:join`, `ws:leave`; `ws:joined` and `ws:history` are
//! [`crate::history`]'s), encoded as
//! [`Frame`]s, and the ISO time `connected` carries.

use serde::Serialize;

use super::frame::Frame;
use crate::presence::PresenceEntry;

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

/// `ws:presence`: `{"room","clients":[{"id","userId"?}…]}`.
pub fn presence_frame(room: &str, clients: &[PresenceEntry]) -> Frame {
    #[derive(Serialize)]
    struct Presence<'a> {
        room: &'a str,
        clients: &'a [PresenceEntry],
    }
    Frame::from_serialize("ws:presence", &Presence { room, clients })
        .unwrap_or_else(|_| Frame::from_raw("ws:presence", None))
}

/// Whether a presence event announces a join or a leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceChange {
    /// `ws:join`.
    Join,
    /// `ws:leave`.
    Leave,
}

impl PresenceChange {
    /// The event name.
    pub const fn event(self) -> &'static str {
        match self {
            PresenceChange::Join => "ws:join",
            PresenceChange::Leave => "ws:leave",
        }
    }
}

/// The data of `ws:join` and `ws:leave`: `{"room","id","userId"?}`.
#[derive(Serialize)]
struct Change<'a> {
    room: &'a str,
    id: &'a str,
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

impl<'a> Change<'a> {
    fn new(room: &'a str, client: &'a PresenceEntry) -> Self {
        Change {
            room,
            id: &client.id,
            user_id: client.user_id.as_deref(),
        }
    }
}

/// `ws:join` / `ws:leave`: `{"room","id","userId"?}`.
pub fn presence_change_frame(change: PresenceChange, room: &str, client: &PresenceEntry) -> Frame {
    Frame::from_serialize(change.event(), &Change::new(room, client))
        .unwrap_or_else(|_| Frame::from_raw(change.event(), None))
}

/// The data of a presence event as JSON text (what Redis keeps per client).
pub fn presence_data(room: &str, client: &PresenceEntry) -> Vec<u8> {
    serde_json::to_vec(&Change::new(room, client)).unwrap_or_else(|_| b"{}".to_vec())
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
mod tests {
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
    fn error_frame_matches_ignis() {
        assert_eq!(
            &error_frame("Not authenticated").payload()[..],
            br#"{"event":"error","data":{"message":"Not authenticated"}}"#
        );
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

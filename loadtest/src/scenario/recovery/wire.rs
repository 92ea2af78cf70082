//! The history part of the wire protocol, as `recovery` speaks it: the join with `since`,
//! and what comes back — deliveries with their place in the room's history
//! (`{"event":E,"data":D,"room":R,"offset":N,"epoch":"S"}`) and
//! `{"event":"ws:joined","data":{"room":R,"epoch":S,"offset":TOP,"recovered":B}}`.
//!
//! Parsing never fails loudly: a frame that is not JSON, or lacks what its kind needs, is
//! [`Incoming::Malformed`] and only counted. A delivery's `data` is skipped by the parser
//! (serde's ignored-any), so a delivery costs one pass over its bytes and no allocation
//! unless a string holds escapes.

use super::checker::Position;
use serde::Deserialize;
use std::borrow::Cow;

/// The event the server confirms a join with.
pub const JOINED_EVENT: &str = "ws:joined";

/// A message from the server, as far as `recovery` cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A message of a history room, with its place.
    Delivery {
        /// The room.
        room: Cow<'a, str>,
        /// Its offset.
        offset: u64,
        /// The epoch of that offset.
        epoch: Cow<'a, str>,
    },
    /// The server's confirmation of a join.
    Joined(Joined),
    /// An `error` event, with its message.
    Error(String),
    /// Any other well-formed event (`connected`, a message without a place, …).
    Other,
    /// Not JSON, or a delivery / `ws:joined` without the fields it needs.
    Malformed,
}

/// The `data` of `ws:joined`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Joined {
    /// The room joined.
    pub room: String,
    /// The epoch of the room's history.
    pub epoch: String,
    /// `TOP`: the offset of the room's last message (0 before any).
    pub offset: u64,
    /// Whether the missed messages were replayed (only on a join with `since`).
    #[serde(default)]
    pub recovered: Option<bool>,
}

/// The top level of a frame; `data` and unknown fields are skipped.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    room: Option<Cow<'a, str>>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(borrow, default)]
    epoch: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WithData<T> {
    data: T,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    message: Option<String>,
}

/// Reads one server message.
pub fn parse(m: &[u8]) -> Incoming<'_> {
    let Ok(head) = serde_json::from_slice::<Head<'_>>(m) else {
        return Incoming::Malformed;
    };
    match (head.offset, head.epoch, head.room) {
        (Some(offset), Some(epoch), Some(room)) => Incoming::Delivery {
            room,
            offset,
            epoch,
        },
        (None, None, _) => match head.event.as_ref() {
            JOINED_EVENT => serde_json::from_slice::<WithData<Joined>>(m)
                .map_or(Incoming::Malformed, |w| Incoming::Joined(w.data)),
            "error" => Incoming::Error(error_message(m)),
            _ => Incoming::Other,
        },
        // Part of a place but not all of it.
        _ => Incoming::Malformed,
    }
}

fn error_message(m: &[u8]) -> String {
    serde_json::from_slice::<WithData<ErrorData>>(m)
        .ok()
        .and_then(|w| w.data.message)
        .unwrap_or_else(|| "error".into())
}

/// `{"event":"join","data":{"rooms":[room]}}`, with
/// `"since":{room:{"offset":N,"epoch":S}}` next to `rooms` when rejoining.
pub fn join_message(room: &str, since: Option<&Position>) -> String {
    let data = match since {
        None => serde_json::json!({ "rooms": [room] }),
        Some(p) => {
            let mut at = serde_json::Map::new();
            at.insert(
                room.to_string(),
                serde_json::json!({ "offset": p.offset, "epoch": p.epoch }),
            );
            serde_json::json!({ "rooms": [room], "since": at })
        }
    };
    serde_json::json!({ "event": "join", "data": data }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_delivery_without_touching_its_data() {
        let m = br#"{"event":"bench","data":{"t":17,"s":3,"p":"xx"},"room":"rec-1","offset":42,"epoch":"e-9"}"#;
        assert_eq!(
            parse(m),
            Incoming::Delivery {
                room: "rec-1".into(),
                offset: 42,
                epoch: "e-9".into()
            }
        );
        assert_eq!(crate::payload::scan(m).map(|s| (s.t, s.s)), Some((17, 3)));
    }

    #[test]
    fn reads_ws_joined_with_and_without_recovered() {
        let m = br#"{"event":"ws:joined","data":{"room":"rec-1","epoch":"e","offset":7,"recovered":false}}"#;
        let want = Joined {
            room: "rec-1".into(),
            epoch: "e".into(),
            offset: 7,
            recovered: Some(false),
        };
        assert_eq!(parse(m), Incoming::Joined(want.clone()));
        let m = br#"{"event":"ws:joined","data":{"room":"rec-1","epoch":"e","offset":7}}"#;
        let fresh = Joined {
            recovered: None,
            ..want
        };
        assert_eq!(parse(m), Incoming::Joined(fresh));
    }

    #[test]
    fn bad_input_is_malformed_never_a_panic() {
        for m in [
            &b"not json"[..],
            br#"{"event":"ws:joined","data":{"room":"r"}}"#,
            br#"{"event":"ws:joined"}"#,
            br#"{"event":"x","room":"r","offset":-1,"epoch":"e"}"#,
            br#"{"event":"x","room":"r","offset":1}"#,
            br#"{"data":1}"#,
            b"",
        ] {
            assert_eq!(
                parse(m),
                Incoming::Malformed,
                "{}",
                String::from_utf8_lossy(m)
            );
        }
    }

    #[test]
    fn errors_and_other_events() {
        let m = br#"{"event":"error","data":{"message":"Room not allowed"}}"#;
        assert_eq!(parse(m), Incoming::Error("Room not allowed".into()));
        assert_eq!(
            parse(br#"{"event":"error","data":7}"#),
            Incoming::Error("error".into())
        );
        assert_eq!(
            parse(br#"{"event":"connected","data":{"id":"x"}}"#),
            Incoming::Other
        );
        assert_eq!(
            parse(br#"{"event":"bench-warmup","data":{}}"#),
            Incoming::Other
        );
    }

    #[test]
    fn join_messages_carry_since_next_to_rooms() {
        let v: serde_json::Value =
            serde_json::from_str(&join_message("rec-\"1", None)).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"event":"join","data":{"rooms":["rec-\"1"]}})
        );
        let since = Position {
            epoch: "e1".into(),
            offset: 12,
        };
        let v: serde_json::Value =
            serde_json::from_str(&join_message("rec-1", Some(&since))).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"event":"join","data":{
                "rooms":["rec-1"],
                "since":{"rec-1":{"offset":12,"epoch":"e1"}}
            }})
        );
    }
}

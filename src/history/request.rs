//! What a client asks of a room's history and presence: the `since` of a `join`, the
//! `data` of `ws:history` and of `ws:presence`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::Since;

/// `ws:history`'s `data`: `{"room":R,"limit"?:L,"since"?:{"offset":N,"epoch":S}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HistoryRequest {
    /// The room.
    pub room: String,
    /// At most this many messages (default and cap: the room's `history_size`).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only those after this position.
    #[serde(default)]
    pub since: Option<Since>,
}

/// `ws:presence`'s `data`: `{"room":R}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PresenceRequest {
    /// The room.
    pub room: String,
}

impl HistoryRequest {
    /// Parses a `ws:history` `data`; `None` when it is not an object naming a room.
    pub fn parse(data: Option<&RawValue>) -> Option<Self> {
        object(data).and_then(|d| serde_json::from_str(d).ok())
    }
}

impl PresenceRequest {
    /// Parses a `ws:presence` `data`; `None` when it is not an object naming a room.
    pub fn parse(data: Option<&RawValue>) -> Option<Self> {
        object(data).and_then(|d| serde_json::from_str(d).ok())
    }
}

/// The JSON text of `data` when it is an object (serde would also read a struct from an
/// array).
fn object(data: Option<&RawValue>) -> Option<&str> {
    data.map(RawValue::get).filter(|d| d.starts_with('{'))
}

/// The positions a `join`'s `data.since` gives, by room: `{"since":{R:{"offset":N,
/// "epoch":S}}}`. An entry that is not a position asks to recover from nowhere: it gets
/// an empty epoch, which names no history, so that room's `ws:joined` says
/// `recovered: false` (the client asked to recover and cannot). A `since` that is not an
/// object gives none.
pub fn join_since(data: Option<&RawValue>) -> Vec<(String, Since)> {
    #[derive(Deserialize)]
    struct Join {
        #[serde(default)]
        since: Option<BTreeMap<String, serde_json::Value>>,
    }
    let Some(Ok(Join { since: Some(since) })) = data.map(|d| serde_json::from_str(d.get())) else {
        return Vec::new();
    };
    since
        .into_iter()
        .map(|(room, position)| {
            let since = serde_json::from_value(position).unwrap_or(Since {
                offset: 0,
                epoch: String::new(),
            });
            (room, since)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn requests_parse_or_name_no_room() {
        let got = HistoryRequest::parse(Some(&raw(r#"{"room":"r","limit":5}"#))).unwrap();
        assert_eq!(
            (got.room.as_str(), got.limit, got.since),
            ("r", Some(5), None)
        );
        let got = HistoryRequest::parse(Some(&raw(
            r#"{"room":"r","since":{"offset":3,"epoch":"e"}}"#,
        )));
        assert_eq!(got.unwrap().since.unwrap().offset, 3);
        assert!(HistoryRequest::parse(Some(&raw(r#"{"limit":5}"#))).is_none());
        assert!(HistoryRequest::parse(Some(&raw(r#"{"room":"r","limit":-1}"#))).is_none());
        assert!(HistoryRequest::parse(None).is_none());
        assert_eq!(
            PresenceRequest::parse(Some(&raw(r#"{"room":"p"}"#)))
                .unwrap()
                .room,
            "p"
        );
        assert!(PresenceRequest::parse(Some(&raw(r#"["p"]"#))).is_none());
    }

    #[test]
    fn join_since_keeps_the_positions_given() {
        let data = raw(r#"{"rooms":["a","b","c"],"since":{"a":{"offset":4,"epoch":"e"},"b":7}}"#);
        let since = join_since(Some(&data));
        assert_eq!(since.len(), 2);
        assert_eq!((since[0].0.as_str(), since[0].1.offset), ("a", 4));
        // Not a position: recovery from nowhere (an epoch no history has).
        assert_eq!((since[1].0.as_str(), since[1].1.epoch.as_str()), ("b", ""));
        assert!(join_since(Some(&raw(r#"{"rooms":["a"]}"#))).is_empty());
        assert!(join_since(Some(&raw(r#"{"rooms":["a"],"since":[1]}"#))).is_empty());
        assert!(join_since(None).is_empty());
    }
}

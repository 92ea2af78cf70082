//! Parsing a client frame `{"event": string, "data"?: any, "id"?: any}`.
//!
//! The parse borrows from the frame: `data` and `id` stay raw JSON text ([`RawValue`]) so
//! that forwarding them (to a message handler or to Redis) never re-serializes them.
//! Duplicate keys resolve like `JSON.parse`: the last one wins.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// What a client frame turned out to be.
#[derive(Debug)]
pub enum Inbound<'a> {
    /// Not UTF-8, or not JSON: answered with "Invalid message format".
    Invalid,
    /// Valid JSON without a non-empty string `event` (`{}`, `[]`, `123`…): dropped silently.
    Ignored,
    /// A message with an event name.
    Message(InboundMessage<'a>),
}

/// A parsed client message; `data` and `id` are borrowed raw JSON.
#[derive(Debug)]
pub struct InboundMessage<'a> {
    /// The event name (never empty).
    pub event: Cow<'a, str>,
    /// The `data` member as raw JSON text, if present.
    pub data: Option<&'a RawValue>,
    /// The `id` member as raw JSON text, if present.
    pub id: Option<&'a RawValue>,
}

/// Deepest nesting of arrays and objects accepted in a client message (serde_json's
/// own recursion limit); deeper is "Invalid message format", so nothing a backend's JSON
/// parser would choke on is ever forwarded.
pub const MAX_DEPTH: usize = 128;

/// Parses one client frame whose bytes may not be UTF-8 (a binary frame, a decrypted
/// payload): not UTF-8 is "Invalid message format".
pub fn parse(payload: &[u8]) -> Inbound<'_> {
    match std::str::from_utf8(payload) {
        Ok(text) => parse_str(text),
        Err(_) => Inbound::Invalid,
    }
}

/// Parses one client frame already known to be UTF-8 (a text frame).
pub fn parse_str(text: &str) -> Inbound<'_> {
    if nesting_exceeds(text.as_bytes(), MAX_DEPTH) {
        return Inbound::Invalid;
    }
    let Ok(top) = serde_json::from_str::<TopLevel<'_>>(text) else {
        return invalid_or_ignored(text);
    };
    let TopLevel::Object { event, data, id } = top else {
        return Inbound::Ignored;
    };
    let Some(event) = event.and_then(raw_string).filter(|e| !e.is_empty()) else {
        return Inbound::Ignored;
    };
    Inbound::Message(InboundMessage { event, data, id })
}

/// Whether JSON text nests arrays and objects deeper than `max` (strings skipped; the
/// text need not be valid JSON).
fn nesting_exceeds(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in json {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A frame the parse refused: `Invalid` unless it is JSON that serde_json only refuses to
/// decode (a number beyond `f64` such as `1e999`, a lone surrogate), which `JSON.parse`
/// reads, so it is ignored like any other JSON without an event.
fn invalid_or_ignored(text: &str) -> Inbound<'_> {
    match serde_json::from_str::<IgnoredAny>(text) {
        Ok(_) => Inbound::Ignored,
        Err(_) => Inbound::Invalid,
    }
}

/// Decodes a raw JSON value as a string, borrowing when it has no escapes.
pub fn raw_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<MaybeBorrowed<'_>>(raw.get())
        .ok()
        .map(|s| s.0)
}

enum TopLevel<'a> {
    Object {
        event: Option<&'a RawValue>,
        data: Option<&'a RawValue>,
        id: Option<&'a RawValue>,
    },
    Other,
}

impl<'de> serde::Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut event, mut data, mut id) = (None, None, None);
        while let Some(key) = map.next_key::<MaybeBorrowed<'de>>()? {
            match key.0.as_ref() {
                "event" => event = Some(map.next_value()?),
                "data" => data = Some(map.next_value()?),
                "id" => id = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(TopLevel::Object { event, data, id })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TopLevel::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(TopLevel::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(TopLevel::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(TopLevel::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(TopLevel::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(TopLevel::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(TopLevel::Other)
    }
}

/// A string that borrows from the input when it contains no escapes.
struct MaybeBorrowed<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for MaybeBorrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeBorrowed<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeBorrowed(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MaybeBorrowed(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_of(input: &str) -> Option<String> {
        match parse(input.as_bytes()) {
            Inbound::Message(m) => Some(m.event.into_owned()),
            _ => None,
        }
    }

    #[test]
    fn not_json_or_not_utf8_is_invalid() {
        for bad in ["", "{", "hello", "{\"event\":\"a\"} x", "{'event':'a'}"] {
            assert!(matches!(parse(bad.as_bytes()), Inbound::Invalid), "{bad}");
        }
        assert!(matches!(parse(&[0xff, 0xfe, b'{']), Inbound::Invalid));
    }

    #[test]
    fn json_without_event_is_ignored() {
        for quiet in [
            "{}",
            "{\"event\":\"\"}",
            "123",
            "[]",
            "[1,{\"event\":\"a\"}]",
            "null",
            "true",
            "\"event\"",
            "{\"event\":5}",
            "{\"event\":null}",
            "{\"data\":{}}",
        ] {
            assert!(
                matches!(parse(quiet.as_bytes()), Inbound::Ignored),
                "{quiet}"
            );
        }
    }

    /// Found by `fuzz/fuzz_targets/inbound_message.rs`: `4e999` is JSON (`JSON.parse`
    /// reads Infinity) but was answered "Invalid message format".
    #[test]
    fn fuzz_regression_out_of_range_number_is_ignored() {
        for quiet in ["4e999", "-1e400", "\"\\ud800\"", "{\"\\udc00\":1}"] {
            assert!(
                matches!(parse(quiet.as_bytes()), Inbound::Ignored),
                "{quiet}"
            );
        }
        assert!(matches!(parse(b"4e999x"), Inbound::Invalid));
    }

    #[test]
    fn message_keeps_data_and_id_raw() {
        let Inbound::Message(m) =
            parse(br#"{"event":"chat","data":{"a": [1, 2]},"id":"m1","x":0}"#)
        else {
            panic!("expected a message");
        };
        assert_eq!(m.event, "chat");
        assert_eq!(m.data.map(RawValue::get), Some(r#"{"a": [1, 2]}"#));
        assert_eq!(m.id.map(RawValue::get), Some(r#""m1""#));
    }

    #[test]
    fn deep_nesting_is_invalid_and_strings_do_not_count() {
        let deep = |n: usize| {
            format!(
                r#"{{"event":"e","data":{}1{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(matches!(
            parse(deep(MAX_DEPTH - 1).as_bytes()),
            Inbound::Message(_)
        ));
        assert!(matches!(
            parse(deep(MAX_DEPTH).as_bytes()),
            Inbound::Invalid
        ));
        assert!(matches!(parse(deep(50_000).as_bytes()), Inbound::Invalid));
        let brackets_in_strings = format!(
            r#"{{"event":"e","data":"{}\"{}"}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(matches!(
            parse(brackets_in_strings.as_bytes()),
            Inbound::Message(_)
        ));
    }

    #[test]
    fn escaped_event_names_and_last_duplicate_wins() {
        assert_eq!(event_of(r#"{"event":"a\"b"}"#).as_deref(), Some("a\"b"));
        assert_eq!(
            event_of(r#"{"event":"a","event":"b"}"#).as_deref(),
            Some("b")
        );
        assert_eq!(event_of(r#"{"\u0065vent":"esc"}"#).as_deref(), Some("esc"));
    }
}

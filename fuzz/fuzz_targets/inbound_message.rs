//! A client frame `{"event","data","id"}` through the inbound parser, then the `rooms` of
//! its `data` as a `join`/`leave` reads them.
//!
//! Invariants: no panic; a message has a non-empty event; `Invalid` exactly when the
//! input is not UTF-8 JSON (serde_json agrees); `data`/`id` are valid JSON text that is a
//! slice of the input; every requested room passes the room-name rules.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use shardcast::internals::inbound::{Inbound, parse};
use shardcast::internals::requested_rooms;
use shardcast::rooms::is_valid_room_name;

/// `raw` is JSON and lies inside `input`.
fn check_raw(input: &[u8], raw: &RawValue) {
    let text = raw.get();
    // JSON by grammar (`IgnoredAny`): a lone surrogate escape is JSON, as for `JSON.parse`.
    assert!(serde_json::from_str::<IgnoredAny>(text).is_ok(), "{text}");
    let range = input.as_ptr_range();
    assert!(
        range.contains(&text.as_ptr()) || text.is_empty(),
        "not borrowed from the frame"
    );
}

fuzz_target!(|data: &[u8]| {
    let is_json =
        std::str::from_utf8(data).is_ok_and(|t| serde_json::from_str::<IgnoredAny>(t).is_ok());
    match parse(data) {
        Inbound::Invalid => assert!(!is_json, "valid JSON called invalid"),
        Inbound::Ignored => assert!(is_json, "invalid JSON ignored"),
        Inbound::Message(m) => {
            assert!(is_json, "invalid JSON accepted");
            assert!(!m.event.is_empty());
            m.data
                .into_iter()
                .chain(m.id)
                .for_each(|raw| check_raw(data, raw));
            for room in requested_rooms(m.data).unwrap_or_default() {
                assert!(is_valid_room_name(&room), "{room:?}");
            }
        }
    }
});

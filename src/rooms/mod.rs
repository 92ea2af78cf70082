//! Rooms: the name rules every join goes through, and the standalone server's glob
//! allow-list ([`glob::RoomPolicy`]). Which rooms a client may join is the
//! [`RoomValidator`](crate::hooks::RoomValidator)'s decision.

pub mod glob;

/// The longest room name, in UTF-16 code units like JavaScript's `String.length`.
pub const MAX_ROOM_NAME: usize = 256;

/// Names starting with this are reserved for the server and never joinable.
pub const RESERVED_PREFIX: &str = "ws:";

/// Whether `name` may be joined at all: 1 to 256 UTF-16 code units, no `ws:` prefix.
pub fn is_valid_room_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(RESERVED_PREFIX)
        && (name.len() <= MAX_ROOM_NAME || name.encode_utf16().count() <= MAX_ROOM_NAME)
}

/// Extracts the joinable names from a `join`/`leave` `data`: `None` when `data.rooms` is
/// not an array (the request is ignored); otherwise the valid string names, in order.
pub(crate) fn requested_rooms(data: Option<&serde_json::value::RawValue>) -> Option<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Request {
        rooms: Option<serde_json::Value>,
    }
    let request: Request = serde_json::from_str(data?.get()).ok()?;
    let serde_json::Value::Array(items) = request.rooms? else {
        return None;
    };
    Some(
        items
            .into_iter()
            .filter_map(|item| match item {
                serde_json::Value::String(s) if is_valid_room_name(&s) => Some(s),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<serde_json::value::RawValue> {
        serde_json::value::RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn name_rules() {
        assert!(is_valid_room_name("a"));
        assert!(is_valid_room_name(&"x".repeat(256)));
        assert!(!is_valid_room_name(&"x".repeat(257)));
        assert!(!is_valid_room_name(""));
        assert!(!is_valid_room_name("ws:internal"));
        assert!(is_valid_room_name("WS:upper-is-allowed"));
        // 128 emoji are 256 UTF-16 units (512 UTF-8 bytes): allowed; 129 are not.
        assert!(is_valid_room_name(&"😀".repeat(128)));
        assert!(!is_valid_room_name(&"😀".repeat(129)));
    }

    #[test]
    fn requested_rooms_filters_and_ignores_non_arrays() {
        let got = requested_rooms(Some(&raw(r#"{"rooms":["a",1,"",null,"ws:x","b"]}"#)));
        assert_eq!(got, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(requested_rooms(Some(&raw(r#"{"rooms":"a"}"#))), None);
        assert_eq!(requested_rooms(Some(&raw(r#"["a"]"#))), None);
        assert_eq!(requested_rooms(None), None);
    }
}

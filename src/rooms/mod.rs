//! Rooms: the name rules every join goes through, the [`RoomValidator`] that decides
//! which rooms a client may join, and the standalone server's glob allow-list.
//!
//! With no validator configured every join is rejected (Ignis behaviour).

pub mod glob;

use std::future::Future;
use std::sync::Arc;

use crate::auth::LocalFuture;
use crate::id::ClientId;

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
pub fn requested_rooms(data: Option<&serde_json::value::RawValue>) -> Option<Vec<String>> {
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

/// A client's request to join rooms, after the name rules.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The connection asking.
    pub client_id: ClientId,
    /// Its user id, if any.
    pub user_id: Option<Arc<str>>,
    /// The rooms asked for (valid names only).
    pub rooms: Vec<String>,
}

/// Decides which of the requested rooms a client may join; returns the allowed subset
/// (anything not requested is ignored).
pub trait RoomValidator: Send + Sync + 'static {
    /// Returns the allowed rooms.
    fn validate(&self, request: JoinRequest) -> LocalFuture<Vec<String>>;
}

impl RoomValidator for glob::RoomPolicy {
    fn validate(&self, request: JoinRequest) -> LocalFuture<Vec<String>> {
        let allowed = request
            .rooms
            .into_iter()
            .filter(|room| self.allows(room, request.user_id.as_deref()))
            .collect();
        Box::pin(std::future::ready(allowed))
    }
}

/// Adapts a closure `Fn(JoinRequest) -> impl Future<Output = Vec<String>>`.
pub(crate) struct FnValidator<F>(pub F);

impl<F, Fut> RoomValidator for FnValidator<F>
where
    F: Fn(JoinRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<String>> + 'static,
{
    fn validate(&self, request: JoinRequest) -> LocalFuture<Vec<String>> {
        Box::pin((self.0)(request))
    }
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

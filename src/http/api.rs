//! The plain HTTP endpoints (everything but the upgrade).

use serde_json::Value;

use super::request::RequestHead;
use super::response::Response;
use crate::engine::{Destination, Handle, Publication};

const DASHBOARD: &str = include_str!("dashboard.html");

/// Answers one non-upgrade request.
pub(crate) async fn route(
    handle: &Handle,
    api_key: Option<&str>,
    head: &RequestHead,
    body: &[u8],
) -> Response {
    let get = head.method == "GET" || head.method == "HEAD";
    match head.path.as_str() {
        "/health" if get => Response::json(200, &serde_json::json!({ "status": "ok" })),
        "/ready" if get => ready(handle),
        "/metrics" if get => Response::body(
            200,
            "text/plain; version=0.0.4",
            handle.metrics().render_prometheus(),
        ),
        "/api/stats" if get => Response::json(200, &handle.stats()),
        "/dashboard" if get => Response::body(200, "text/html; charset=utf-8", DASHBOARD),
        "/api/publish" if head.method == "POST" => match authorized(head, api_key) {
            true => publish(handle, body),
            false => Response::error(401, "Unauthorized"),
        },
        "/api/publish" => Response::error(405, "Method Not Allowed"),
        path if get && path.starts_with("/api/") => {
            if !authorized(head, api_key) {
                return Response::error(401, "Unauthorized");
            }
            query(handle, path).await
        }
        _ => Response::error(404, "Not Found"),
    }
}

fn ready(handle: &Handle) -> Response {
    if handle.is_ready() {
        Response::json(200, &serde_json::json!({ "status": "ready" }))
    } else {
        Response::json(503, &serde_json::json!({ "status": "not ready" }))
    }
}

/// Whether the request carries `Authorization: Bearer <api key>` (compared in constant time).
fn authorized(head: &RequestHead, api_key: Option<&str>) -> bool {
    let (Some(key), Some(header)) = (api_key, head.header("authorization")) else {
        return false;
    };
    let Some(given) = header.strip_prefix("Bearer ") else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), key.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A validated `/api/publish` body.
#[derive(Debug)]
struct PublishBody {
    kind: String,
    target: Option<String>,
    event: String,
    data: Option<Box<serde_json::value::RawValue>>,
    exclude: Vec<String>,
}

fn parse_publish(body: &[u8]) -> Result<PublishBody, &'static str> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return Err("Body must be a JSON object");
    };
    let kind = match map.remove("type") {
        Some(Value::String(t))
            if matches!(t.as_str(), "client" | "user" | "room" | "broadcast") =>
        {
            t
        }
        _ => return Err("type must be one of client|user|room|broadcast"),
    };
    let event = match map.remove("event") {
        Some(Value::String(e)) if !e.is_empty() => e,
        _ => return Err("event must be a non-empty string"),
    };
    let target = match map.remove("target") {
        Some(Value::String(t)) if !t.is_empty() => Some(t),
        _ if kind == "broadcast" => None,
        _ => return Err("target must be a non-empty string"),
    };
    let exclude = match map.remove("exclude") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err("exclude must be an array of strings"),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("exclude must be an array of strings"),
    };
    let data = match map.remove("data") {
        None => None,
        Some(value) => {
            Some(serde_json::value::to_raw_value(&value).map_err(|_| "data is not encodable")?)
        }
    };
    Ok(PublishBody {
        kind,
        target,
        event,
        data,
        exclude,
    })
}

fn publish(handle: &Handle, body: &[u8]) -> Response {
    let body = match parse_publish(body) {
        Ok(b) => b,
        Err(message) => return Response::error(400, message),
    };
    let target = body.target.as_deref().unwrap_or_default();
    let destination = match body.kind.as_str() {
        "client" => Destination::Client(target),
        "user" => Destination::User(target),
        "room" => Destination::Room(target),
        _ => Destination::Broadcast,
    };
    handle.publish(Publication {
        destination,
        event: &body.event,
        data: body.data.as_deref(),
        exclude: &body.exclude,
    });
    Response::json(202, &serde_json::json!({ "ok": true }))
}

async fn query(handle: &Handle, path: &str) -> Response {
    let parts: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
    let ids = match parts.as_slice() {
        ["rooms", room, "clients"] => handle.clients_of_room(&percent_decode(room)).await,
        ["users", user, "clients"] => handle.clients_of_user(&percent_decode(user)).await,
        _ => return Response::error(404, "Not Found"),
    };
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    Response::json(200, &serde_json::json!({ "clients": ids }))
}

/// Decodes `%XX` escapes in a path segment (invalid escapes are kept as they are).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && segment.is_char_boundary(i + 1)
            && segment.is_char_boundary(i + 3)
            && let Ok(v) = u8::from_str_radix(&segment[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_body_rules() {
        let ok = parse_publish(
            br#"{"type":"room","target":"r","event":"e","data":{"a":1},"exclude":["x"]}"#,
        )
        .unwrap();
        assert_eq!(
            (ok.kind.as_str(), ok.target.as_deref()),
            ("room", Some("r"))
        );
        assert_eq!(ok.data.unwrap().get(), r#"{"a":1}"#);
        assert!(parse_publish(br#"{"type":"broadcast","event":"e"}"#).is_ok());
        let null_data = parse_publish(br#"{"type":"broadcast","event":"e","data":null}"#).unwrap();
        assert_eq!(null_data.data.unwrap().get(), "null");
        for bad in [
            &b"nope"[..],
            br#"[1]"#,
            br#"{"type":"x","target":"r","event":"e"}"#,
            br#"{"type":"room","target":"r","event":""}"#,
            br#"{"type":"room","event":"e"}"#,
            br#"{"type":"client","target":"","event":"e"}"#,
            br#"{"type":"room","target":"r","event":"e","exclude":"x"}"#,
            br#"{"type":"room","target":"r","event":"e","exclude":[1]}"#,
        ] {
            assert!(
                parse_publish(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

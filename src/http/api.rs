//! The plain HTTP endpoints (everything but the upgrade), answered through the handle.

use super::HttpService;
use super::request::RequestHead;
use super::response::Response;
use crate::routing::Handle;

const DASHBOARD: &str = include_str!("dashboard.html");

/// Answers one non-upgrade request.
pub(crate) async fn route(service: &HttpService, head: &RequestHead, body: &[u8]) -> Response {
    let (handle, api_key) = (&service.handle, service.api_key.as_deref());
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
            true => super::publish::publish(handle, body),
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
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

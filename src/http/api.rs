//! The plain HTTP endpoints (everything but the upgrade), answered through the handle.

use super::HttpService;
use super::dashboard::{self, Part};
use super::request::RequestHead;
use super::response::Response;
use crate::config::Endpoints;
use crate::metrics::HttpRoute;
use crate::routing::Handle;

/// What a request's path names, before its method is checked (the route table of the
/// module doc of [`super`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    /// The WebSocket path without an upgrade by GET: 426.
    WsPath,
    /// An upgrade on any other path: 404.
    UpgradeElsewhere,
    Health,
    Ready,
    Metrics,
    Stats,
    /// The dashboard's page, assets and data (access decided by [`dashboard`]).
    Dashboard(Part),
    Publish,
    /// `/api/rooms/{room}/clients` (the room still percent-encoded).
    RoomClients(&'a str),
    /// `/api/rooms/{room}/history` (the room still percent-encoded).
    RoomHistory(&'a str),
    /// `/api/rooms/{room}/presence` (the room still percent-encoded).
    RoomPresence(&'a str),
    /// `/api/users/{user}/clients` (the user still percent-encoded).
    UserClients(&'a str),
    /// `/api/clients/{id}`: what a local client is.
    Client(&'a str),
    /// `/api/clients/{id}/disconnect`: close a local client with 1000.
    Disconnect(&'a str),
    /// No route: 404 whatever the (known) method.
    NotFound,
}

impl<'a> Route<'a> {
    /// The route of `head` among the `endpoints` that are on; `ws_path` is the WebSocket
    /// path.
    fn of(head: &'a RequestHead, ws_path: &str, endpoints: &Endpoints) -> Self {
        match Self::by_path(head, ws_path) {
            route if route.is_on(endpoints) => route,
            _ => Route::NotFound,
        }
    }

    /// Whether the endpoint of this route is on (the dashboard's parts decide for
    /// themselves, by its mode).
    fn is_on(self, endpoints: &Endpoints) -> bool {
        match self {
            Route::Health => endpoints.health,
            Route::Ready => endpoints.ready,
            Route::Metrics => endpoints.metrics,
            Route::Publish => endpoints.publish,
            Route::Stats
            | Route::RoomClients(_)
            | Route::RoomHistory(_)
            | Route::RoomPresence(_)
            | Route::UserClients(_)
            | Route::Client(_)
            | Route::Disconnect(_) => endpoints.api,
            Route::WsPath | Route::UpgradeElsewhere | Route::Dashboard(_) | Route::NotFound => true,
        }
    }

    /// The route `head`'s path names.
    fn by_path(head: &'a RequestHead, ws_path: &str) -> Self {
        match head.path.as_str() {
            path if path == ws_path => Route::WsPath,
            _ if head.is_websocket_upgrade() => Route::UpgradeElsewhere,
            "/health" => Route::Health,
            "/ready" => Route::Ready,
            "/metrics" => Route::Metrics,
            "/api/stats" => Route::Stats,
            "/api/publish" => Route::Publish,
            path => match Part::of(path) {
                Some(part) => Route::Dashboard(part),
                None => Self::query(path),
            },
        }
    }

    /// The `/api/{rooms|users}/{name}/clients` queries and the `/api/clients/{id}` routes.
    fn query(path: &'a str) -> Self {
        let Some(rest) = path.strip_prefix("/api/") else {
            return Route::NotFound;
        };
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            ["rooms", room, "clients"] => Route::RoomClients(room),
            ["rooms", room, "history"] => Route::RoomHistory(room),
            ["rooms", room, "presence"] => Route::RoomPresence(room),
            ["users", user, "clients"] => Route::UserClients(user),
            ["clients", id] => Route::Client(id),
            ["clients", id, "disconnect"] => Route::Disconnect(id),
            _ => Route::NotFound,
        }
    }

    /// The `route` label of `shardcast_http_requests_total`.
    fn label(self) -> HttpRoute {
        match self {
            Route::WsPath => HttpRoute::WsPath,
            Route::UpgradeElsewhere | Route::NotFound => HttpRoute::NotFound,
            Route::Health => HttpRoute::Health,
            Route::Ready => HttpRoute::Ready,
            Route::Metrics => HttpRoute::Metrics,
            Route::Stats => HttpRoute::Stats,
            Route::Dashboard(_) => HttpRoute::Dashboard,
            Route::Client(_) => HttpRoute::Client,
            Route::Disconnect(_) => HttpRoute::Disconnect,
            Route::Publish => HttpRoute::Publish,
            Route::RoomClients(_) => HttpRoute::RoomClients,
            Route::RoomHistory(_) => HttpRoute::RoomHistory,
            Route::RoomPresence(_) => HttpRoute::RoomPresence,
            Route::UserClients(_) => HttpRoute::UserClients,
        }
    }

    /// The methods this route serves (the `Allow` header of its 405); `None` when the
    /// path has no route (404 for every method).
    fn allow(self) -> Option<&'static str> {
        match self {
            Route::UpgradeElsewhere | Route::NotFound => None,
            Route::Publish | Route::Disconnect(_) => Some("POST"),
            _ => Some("GET, HEAD"),
        }
    }
}

/// Answers one request that is not an upgrade of the WebSocket path: 501 for a method
/// outside [`KNOWN_METHODS`](super::request::KNOWN_METHODS), 404 for a path with no route
/// or whose endpoint is off in `endpoints`, 405 (with `Allow`) for a known method the
/// route does not serve, else the route's answer. Each answer is counted by route and
/// status.
pub(crate) async fn route(
    service: &HttpService,
    endpoints: &Endpoints,
    head: &RequestHead,
    body: &[u8],
) -> Response {
    let (route, response) = respond(service, endpoints, head, body).await;
    let metrics = service.handle.metrics();
    metrics.http.record(route, response.status);
    response
}

/// [`route`] without the counting: the route label and the answer.
async fn respond(
    service: &HttpService,
    endpoints: &Endpoints,
    head: &RequestHead,
    body: &[u8],
) -> (HttpRoute, Response) {
    if !head.has_known_method() {
        return (HttpRoute::Invalid, Response::error(501, "Not Implemented"));
    }
    let route = Route::of(head, &service.path, endpoints);
    let response = match route.allow() {
        Some(allow) if !allow.split(", ").any(|m| m == head.method) => {
            Response::error(405, "Method Not Allowed").with_header("Allow", allow)
        }
        _ => answer(service, head, route, body).await,
    };
    (route.label(), response)
}

/// The answer of a route to a method it serves.
async fn answer(
    service: &HttpService,
    head: &RequestHead,
    route: Route<'_>,
    body: &[u8],
) -> Response {
    let handle = &service.handle;
    let key = service.keys.api.get();
    let authorized = || authorized(head, key.as_deref());
    match route {
        Route::WsPath => {
            Response::error(426, "Upgrade Required").with_header("Upgrade", "websocket")
        }
        Route::UpgradeElsewhere | Route::NotFound => Response::error(404, "Not Found"),
        Route::Health => Response::json(200, &serde_json::json!({ "status": "ok" })),
        Route::Ready => ready(handle),
        Route::Metrics => Response::body(200, PROMETHEUS, handle.render_metrics()),
        Route::Stats => Response::json(200, &handle.stats()),
        Route::Dashboard(part) => dashboard::answer(service, head, part).await,
        _ if !authorized() => Response::error(401, "Unauthorized"),
        Route::Publish => super::publish::publish(handle, body),
        Route::RoomClients(room) => clients(handle.clients_of_room(&percent_decode(room)).await),
        Route::RoomHistory(room) => history(handle, &percent_decode(room), head).await,
        Route::RoomPresence(room) => presence(handle, &percent_decode(room)).await,
        Route::UserClients(user) => clients(handle.clients_of_user(&percent_decode(user)).await),
        Route::Client(id) => client(handle, id).await,
        Route::Disconnect(id) => disconnect(handle, id).await,
    }
}

/// `GET /api/rooms/{room}/history?limit=N`: the room's latest N messages (default and
/// cap: `history_size`), fleet-wide, as `ws:history` gives them; 400 for a bad `limit`,
/// 404 when the room keeps no history, 503 when Redis does not answer.
async fn history(handle: &Handle, room: &str, head: &RequestHead) -> Response {
    let limit = match query_param(head, "limit") {
        None => usize::MAX,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) => limit,
            Err(_) => return Response::error(400, "limit must be a non-negative integer"),
        },
    };
    let query = crate::history::Query { since: None, limit };
    match handle.history(room, query).await {
        Ok(snapshot) => {
            let frame = crate::history::frames::history_frame(room, &snapshot);
            let data = frame.data_json().unwrap_or(b"{}").to_vec();
            Response::body(200, "application/json", data)
        }
        Err(error) => recall_error(&error),
    }
}

/// `GET /api/rooms/{room}/presence`: `{"room","clients":[{"id","userId"}…]}`, fleet-wide;
/// 404 when the room tracks no presence, 503 when Redis does not answer.
async fn presence(handle: &Handle, room: &str) -> Response {
    match handle.presence(room).await {
        Ok(clients) => Response::json(
            200,
            &serde_json::json!({ "room": room, "clients": clients }),
        ),
        Err(error) => recall_error(&error),
    }
}

fn recall_error(error: &crate::routing::RecallError) -> Response {
    use crate::routing::RecallError;
    match error {
        RecallError::NoHistory(_) | RecallError::NoPresence(_) => {
            Response::error(404, &error.to_string())
        }
        RecallError::Unavailable(_) => Response::error(503, &error.to_string()),
    }
}

/// The value of `name` in the request's query string, percent-decoded.
fn query_param(head: &RequestHead, name: &str) -> Option<String> {
    head.query.as_deref()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

/// `GET /api/clients/{id}`: 200 with the client, 400 for a malformed id, 404 when it is
/// not connected here.
async fn client(handle: &Handle, id: &str) -> Response {
    if id.parse::<crate::id::ClientId>().is_err() {
        return bad_client_id();
    }
    match handle.client_info(id).await {
        Some(info) => Response::json(200, &info),
        None => no_such_client(),
    }
}

/// `POST /api/clients/{id}/disconnect`: 202 when the client is connected here (its
/// close with 1000 is on its way), 400 for a malformed id, 404 otherwise.
async fn disconnect(handle: &Handle, id: &str) -> Response {
    if id.parse::<crate::id::ClientId>().is_err() {
        return bad_client_id();
    }
    if !handle.is_local_client(id).await {
        return no_such_client();
    }
    match handle.disconnect(id) {
        Ok(()) => Response::json(202, &serde_json::json!({ "ok": true })),
        Err(_) => bad_client_id(),
    }
}

fn bad_client_id() -> Response {
    Response::error(400, "not a client id (a lowercase hyphenated UUID)")
}

fn no_such_client() -> Response {
    Response::error(404, "no such client on this instance")
}

/// The content type of `/metrics`.
const PROMETHEUS: &str = "text/plain; version=0.0.4";

fn ready(handle: &Handle) -> Response {
    if handle.is_ready() {
        Response::json(200, &serde_json::json!({ "status": "ready" }))
    } else {
        Response::json(503, &serde_json::json!({ "status": "not ready" }))
    }
}

/// Whether the request carries `Authorization: Bearer <key>` (compared in constant time).
pub(super) fn authorized(head: &RequestHead, api_key: Option<&str>) -> bool {
    let (Some(key), Some(header)) = (api_key, head.header("authorization")) else {
        return false;
    };
    let Some(given) = header.strip_prefix("Bearer ") else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), key.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `{"clients": [...]}`.
fn clients(ids: Vec<crate::id::ClientId>) -> Response {
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

    fn head(method: &str, path: &str, upgrade: bool) -> RequestHead {
        let headers = match upgrade {
            true => vec![("upgrade".to_owned(), "websocket".to_owned())],
            false => Vec::new(),
        };
        RequestHead {
            method: method.to_owned(),
            path: path.to_owned(),
            query: None,
            minor_version: 1,
            headers,
        }
    }

    #[test]
    fn route_table() {
        let route =
            |path, upgrade| Route::of(&head("GET", path, upgrade), "/ws", &Endpoints::ALL).allow();
        assert_eq!(route("/ws", false), Some("GET, HEAD"));
        assert_eq!(route("/ws", true), Some("GET, HEAD"));
        assert_eq!(route("/health", true), None, "an upgrade elsewhere is 404");
        assert_eq!(route("/api/publish", false), Some("POST"));
        assert_eq!(route("/api/rooms/r%20x/clients", false), Some("GET, HEAD"));
        for missing in ["/api/rooms/r", "/api/other", "/nothing", "*"] {
            assert_eq!(route(missing, false), None, "{missing}");
        }
        let users = head("GET", "/api/users/u/clients", false);
        assert_eq!(
            Route::of(&users, "/ws", &Endpoints::ALL),
            Route::UserClients("u")
        );
        assert_eq!(route("/api/clients/c/disconnect", false), Some("POST"));
        let client = head("GET", "/api/clients/c", false);
        assert_eq!(
            Route::of(&client, "/ws", &Endpoints::ALL),
            Route::Client("c")
        );
        for (path, part) in [("/dashboard", Part::Page), ("/api/dashboard", Part::Data)] {
            assert_eq!(
                Route::of(&head("GET", path, false), "/ws", &Endpoints::ALL),
                Route::Dashboard(part)
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

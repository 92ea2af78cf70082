//! HTTP/1.1 on the engine's port: reading requests (bounded in size and time), the
//! upgrade handshake, health and readiness, metrics, the publish API, local queries and
//! the live dashboard. Every answer goes through the [`Handle`]; nothing here touches a
//! shard. A successful upgrade hands the socket back to the caller (the shard that
//! accepted it), which adopts it as a WebSocket connection.
//!
//! Layers: [`request`] parses a head and decides its body framing and [`response`]
//! encodes answers, both without I/O (the fuzzing entry points are
//! [`request::parse_head`], [`request::body_length`] and [`request::target_path`]);
//! `io` owns the socket (every read and write bounded by `request_timeout`); `server`
//! runs one connection; `api` and `publish` answer.
//!
//! Routes (`{path}` is the WebSocket path, `/ws` by default). A request is routed by the
//! path of its target, origin-form (`/health`) or absolute-form (`http://host/health`);
//! the query string is ignored. The rows are tried in order:
//!
//! | request | answer |
//! |---|---|
//! | a method other than GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE | 501, on every path |
//! | `GET {path}` with `Upgrade: websocket` | 503 while shutting down, 403 if `Origin` is not allowed (`allowed_origins`), 400 (or 426 for the version) for a bad handshake, else 101 and the connection moves to its shard |
//! | `GET` or `HEAD {path}` otherwise | 426 |
//! | an upgrade on any other path | 404 |
//! | an endpoint below that is off in [`EngineConfig::endpoints`](crate::EngineConfig::endpoints) | 404, whatever the method |
//! | `GET /health` | 200 `{"status":"ok"}` |
//! | `GET /ready` | 200 when Redis (if configured) is subscribed, else 503 |
//! | `GET /metrics` | Prometheus text |
//! | `POST /api/publish` | Bearer API key; 202 / 400 / 401 |
//! | `GET /api/stats` | totals of this instance (JSON) |
//! | `GET /api/rooms/{room}/clients`, `GET /api/users/{user}/clients` | Bearer API key (401); local client ids |
//! | `GET /api/clients/{id}` | Bearer API key (401); the local client (shard, user, rooms, connected for), 400 / 404 |
//! | `POST /api/clients/{id}/disconnect` | Bearer API key (401); 202 and the client is closed with 1000, 400 / 404 |
//! | `GET /dashboard`, `/dashboard/app.js`, `/dashboard/app.css` | the operator dashboard (404 when `dashboard` is off) |
//! | `GET /api/dashboard` | the dashboard's data: 404 when off; API or dashboard key (401) when protected; aggregates only without a key when public |
//! | a known method a route above does not serve (`POST /health`, `GET /api/publish`, `OPTIONS {path}`, …) | 405 with `Allow` |
//! | anything else | 404 |
//!
//! Every `GET` route answers `HEAD` with the same status and headers (`Content-Length`
//! included) and no body. A request with ambiguous framing (two `Content-Length`, one
//! that is not digits, any `Transfer-Encoding`), a malformed head, or an upgrade with a
//! body is answered 400 and the connection closed; a stalled request 408, an oversized
//! head 431 or body 413, each followed by a close. An idle keep-alive connection is
//! closed without a response.

mod api;
mod api_key;
mod dashboard;
mod io;
mod publish;
pub mod request;
mod response;
mod server;

use std::sync::Arc;
use std::time::Duration;

use crate::admission::Admission;
use crate::config::Endpoints;
use crate::rooms::glob::RoomPolicy;
use crate::routing::Handle;

pub(crate) use api_key::ApiKey;
pub(crate) use dashboard::Dashboard;
pub(crate) use server::{Upgraded, serve};
/// What `crate::mount` answers an application's requests with.
#[cfg(feature = "axum")]
pub(crate) use {
    api::route,
    request::RequestHead,
    response::Response,
    server::{Acceptance, admit, check_upgrade, refused, upgrade_info},
};

/// What the HTTP side of the engine's port needs, shared by every shard.
pub(crate) struct HttpService {
    /// The engine's handle: every answer goes through it.
    pub handle: Handle,
    /// The WebSocket path.
    pub path: String,
    /// The Bearer keys of the API and the dashboard.
    pub keys: Keys,
    /// Who may see the dashboard, and its room summary cache.
    pub dashboard: Dashboard,
    /// Time allowed for each request (head and body) and for each response write.
    pub request_timeout: Duration,
    /// Who may open one more connection.
    pub admission: Arc<Admission>,
    /// Origins that may upgrade (`None`: every origin).
    pub origins: Option<RoomPolicy>,
    /// Which built-in endpoints the engine's port serves.
    pub endpoints: Endpoints,
    /// Negotiate permessage-deflate with clients that offer it.
    pub compression: bool,
}

/// The Bearer keys a request may carry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keys {
    /// The API key: `POST /api/publish`, the `/api/` queries and actions, the whole
    /// dashboard (`None`: those answer 401); replaceable while running.
    pub api: ApiKey,
    /// The dashboard key: the whole dashboard and nothing else.
    pub dashboard: Option<String>,
}

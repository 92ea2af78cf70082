//! HTTP on the engine's port: the upgrade to WebSocket, health and readiness, metrics,
//! the publish API, local queries, and the live dashboard.
//!
//! Routes (`{path}` is the WebSocket path, `/ws` by default):
//!
//! | request | answer |
//! |---|---|
//! | `GET {path}` with `Upgrade: websocket` | 101, then the connection moves to its shard |
//! | `GET {path}` without upgrade | 426 |
//! | an upgrade on any other path | 404 |
//! | `GET /health` | 200 `{"status":"ok"}` |
//! | `GET /ready` | 200 when Redis (if configured) is subscribed, else 503 |
//! | `GET /metrics` | Prometheus text |
//! | `POST /api/publish` | Bearer API key; 202 / 400 / 401 |
//! | `GET /api/stats` | totals of this instance (JSON) |
//! | `GET /api/rooms/{room}/clients`, `GET /api/users/{user}/clients` | Bearer API key; local client ids |
//! | `GET /dashboard` | live stats page |

mod api;
pub mod request;
mod response;
pub(crate) mod server;

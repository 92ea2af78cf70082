//! Counters with a fixed label set: disconnects by close code (per shard) and HTTP
//! requests by route and status (engine-wide).
//!
//! Contract: each family is a fixed array of atomics indexed by a label from a fixed
//! table declared here — no map, no allocation, no lock when counting. A label value that
//! is not in the table lands in its `other` slot. [`DisconnectCounts`] has one writer
//! (its shard thread, like [`super::OwnedCounter`]); [`HttpCounts`] is written by every
//! shard's HTTP service (atomic adds). Scrapes read them with relaxed loads.

use std::sync::atomic::{AtomicU64, Ordering};

/// The close codes the server sends (the close table of [`crate::protocol::CloseReason`]).
pub const CLOSE_CODES: [u16; 11] = [
    1000, 1001, 1002, 1007, 1008, 1009, 1013, 4001, 4002, 4003, 4004,
];

/// Label values of `shardcast_disconnects_total{code}`: each close code, then `none` (the
/// connection ended without the server sending a close frame: the peer vanished or the
/// socket failed) and `other` (a code outside the table).
pub const DISCONNECT_LABELS: [&str; CLOSE_CODES.len() + 2] = [
    "1000", "1001", "1002", "1007", "1008", "1009", "1013", "4001", "4002", "4003", "4004", "none",
    "other",
];

/// Connections removed from a shard, by the close code the server sent them.
#[derive(Debug, Default)]
pub struct DisconnectCounts([AtomicU64; DISCONNECT_LABELS.len()]);

impl DisconnectCounts {
    /// Counts one connection that ended after the server sent close `code` (`None`: no
    /// close frame was sent). Owning thread only.
    pub fn record(&self, code: Option<u16>) {
        let slot = match code {
            None => CLOSE_CODES.len(),
            Some(code) => CLOSE_CODES
                .iter()
                .position(|&c| c == code)
                .unwrap_or(CLOSE_CODES.len() + 1),
        };
        let cell = &self.0[slot];
        cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// The count for label `DISCONNECT_LABELS[i]`.
    pub fn get(&self, i: usize) -> u64 {
        self.0.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The count for close `code` (`None`: ended without a close frame).
    pub fn of(&self, code: Option<u16>) -> u64 {
        let label = code.map_or_else(|| "none".to_owned(), |c| c.to_string());
        DISCONNECT_LABELS
            .iter()
            .position(|&l| l == label)
            .map_or(0, |i| self.get(i))
    }
}

/// The HTTP routes, as the `route` label of `shardcast_http_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRoute {
    /// `/health`.
    Health,
    /// `/ready`.
    Ready,
    /// `/metrics`.
    Metrics,
    /// `/api/stats`.
    Stats,
    /// `/dashboard`.
    Dashboard,
    /// `/api/publish`.
    Publish,
    /// `/api/rooms/{room}/clients`.
    RoomClients,
    /// `/api/rooms/{room}/history`.
    RoomHistory,
    /// `/api/rooms/{room}/presence`.
    RoomPresence,
    /// `/api/users/{user}/clients`.
    UserClients,
    /// `/api/clients/{id}`.
    Client,
    /// `/api/clients/{id}/disconnect`.
    Disconnect,
    /// The WebSocket path without an upgrade (426).
    WsPath,
    /// A WebSocket upgrade of the WebSocket path (101, or its refusal).
    Upgrade,
    /// No route (404), including upgrades of other paths.
    NotFound,
    /// A request that could not be read (400, 408, 413, 431) or used an unknown method
    /// (501): no route is known.
    Invalid,
}

impl HttpRoute {
    /// Every route, in label order.
    pub const ALL: [HttpRoute; 16] = [
        HttpRoute::Health,
        HttpRoute::Ready,
        HttpRoute::Metrics,
        HttpRoute::Stats,
        HttpRoute::Dashboard,
        HttpRoute::Publish,
        HttpRoute::RoomClients,
        HttpRoute::RoomHistory,
        HttpRoute::RoomPresence,
        HttpRoute::UserClients,
        HttpRoute::Client,
        HttpRoute::Disconnect,
        HttpRoute::WsPath,
        HttpRoute::Upgrade,
        HttpRoute::NotFound,
        HttpRoute::Invalid,
    ];

    /// The `route` label value.
    pub const fn label(self) -> &'static str {
        match self {
            HttpRoute::Health => "health",
            HttpRoute::Ready => "ready",
            HttpRoute::Metrics => "metrics",
            HttpRoute::Stats => "stats",
            HttpRoute::Dashboard => "dashboard",
            HttpRoute::Publish => "publish",
            HttpRoute::RoomClients => "room_clients",
            HttpRoute::RoomHistory => "room_history",
            HttpRoute::RoomPresence => "room_presence",
            HttpRoute::UserClients => "user_clients",
            HttpRoute::Client => "client",
            HttpRoute::Disconnect => "disconnect",
            HttpRoute::WsPath => "ws_path",
            HttpRoute::Upgrade => "upgrade",
            HttpRoute::NotFound => "not_found",
            HttpRoute::Invalid => "invalid",
        }
    }
}

/// The statuses the server answers with; anything else is counted as `other`.
pub const HTTP_STATUSES: [u16; 16] = [
    101, 200, 202, 400, 401, 403, 404, 405, 408, 413, 426, 429, 431, 500, 501, 503,
];

/// Status slots: each of [`HTTP_STATUSES`], then `other`.
const STATUS_SLOTS: usize = HTTP_STATUSES.len() + 1;

/// HTTP requests answered, by route and status.
#[derive(Debug)]
pub struct HttpCounts([[AtomicU64; STATUS_SLOTS]; HttpRoute::ALL.len()]);

impl Default for HttpCounts {
    fn default() -> Self {
        HttpCounts(std::array::from_fn(|_| {
            std::array::from_fn(|_| AtomicU64::new(0))
        }))
    }
}

impl HttpCounts {
    /// Counts one answer; any thread.
    pub fn record(&self, route: HttpRoute, status: u16) {
        self.cell(route, status).fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of `route` answered with `status` so far.
    pub fn get(&self, route: HttpRoute, status: u16) -> u64 {
        self.cell(route, status).load(Ordering::Relaxed)
    }

    /// Every answer so far, all routes and statuses.
    pub fn total(&self) -> u64 {
        self.0
            .iter()
            .flatten()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    fn cell(&self, route: HttpRoute, status: u16) -> &AtomicU64 {
        let row = HttpRoute::ALL.iter().position(|&r| r == route).unwrap_or(0);
        let col = HTTP_STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(HTTP_STATUSES.len());
        &self.0[row][col]
    }

    /// Every non-zero `(route, status label, count)`.
    pub(super) fn nonzero(&self) -> impl Iterator<Item = (&'static str, String, u64)> + '_ {
        HttpRoute::ALL
            .iter()
            .enumerate()
            .flat_map(move |(r, route)| {
                self.0[r].iter().enumerate().filter_map(move |(s, cell)| {
                    let n = cell.load(Ordering::Relaxed);
                    let status = HTTP_STATUSES
                        .get(s)
                        .map_or_else(|| "other".to_owned(), u16::to_string);
                    (n > 0).then_some((route.label(), status, n))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::CloseReason;

    #[test]
    fn every_close_reason_has_its_own_label() {
        let reasons = [
            CloseReason::Normal,
            CloseReason::ShuttingDown,
            CloseReason::ProtocolError,
            CloseReason::InvalidPayload,
            CloseReason::MessageTooBig,
            CloseReason::SlowConsumer,
            CloseReason::RateLimited,
            CloseReason::Overloaded,
            CloseReason::AuthTimeout,
            CloseReason::HeartbeatTimeout,
            CloseReason::AuthFailed,
            CloseReason::EncryptionRequired,
        ];
        let counts = DisconnectCounts::default();
        for reason in reasons {
            assert!(CLOSE_CODES.contains(&reason.code()), "{reason:?}");
            counts.record(Some(reason.code()));
        }
        counts.record(None);
        counts.record(Some(3999));
        assert_eq!(counts.of(Some(1008)), 2, "slow consumer and rate limit");
        assert_eq!(counts.of(Some(4001)), 1);
        assert_eq!(counts.of(None), 1);
        assert_eq!(counts.get(DISCONNECT_LABELS.len() - 1), 1, "3999 is other");
    }

    #[test]
    fn http_counts_by_route_and_status() {
        let counts = HttpCounts::default();
        counts.record(HttpRoute::Publish, 401);
        counts.record(HttpRoute::Publish, 401);
        counts.record(HttpRoute::NotFound, 404);
        counts.record(HttpRoute::Invalid, 299);
        assert_eq!(counts.get(HttpRoute::Publish, 401), 2);
        assert_eq!(counts.get(HttpRoute::Invalid, 599), 1, "both are other");
        assert_eq!(counts.total(), 4);
        let rows: Vec<_> = counts.nonzero().collect();
        assert!(rows.contains(&("publish", "401".to_owned(), 2)), "{rows:?}");
        assert!(
            rows.contains(&("invalid", "other".to_owned(), 1)),
            "{rows:?}"
        );
    }
}

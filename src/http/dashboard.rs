//! The operator dashboard: the page (HTML, script and style compiled into the binary, no
//! CDN) and `GET /api/dashboard`, the one JSON document it polls.
//!
//! Access follows [`DashboardMode`]: `off` answers 404 on every dashboard route;
//! `protected` serves the page to anyone (it holds no data and asks for a key) and the
//! data only with the API key or the dashboard key (401 otherwise); `public` serves the
//! aggregate numbers to anyone and the room names only with a key. The browser sends the
//! key as `Authorization: Bearer` (entered in the page, kept in `sessionStorage`), never
//! in a URL.
//!
//! State: one room summary cache ([`Dashboard`]), behind a `Mutex` that only dashboard
//! requests take, never across an `.await` and never on a delivery path. It bounds the
//! cost of the room counts (linear in the rooms, see [`Handle::room_summary`]) to one
//! listing per [`ROOMS_FRESH`] however many dashboards poll.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::HttpService;
use super::request::RequestHead;
use super::response::Response;
use crate::build_info;
use crate::config::DashboardMode;
use crate::metrics::{BOUNDS_US, HistogramSnapshot, Metrics, ProcessStats, ShardMetrics};
use crate::routing::{Handle, RoomSummary};

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/app.css");

/// The rooms listed by members.
const TOP_ROOMS: usize = 10;
/// How long a room summary is reused: however many dashboards poll, the shards list
/// their rooms at most once per this period.
const ROOMS_FRESH: Duration = Duration::from_millis(900);

/// The dashboard's setting and its one piece of state, shared by every shard's HTTP.
pub(crate) struct Dashboard {
    /// Who may see it.
    pub mode: DashboardMode,
    /// The last room summary and when it was taken (locked only to read or replace it,
    /// never across an `.await`).
    rooms: Mutex<Option<(Instant, RoomSummary)>>,
}

impl Dashboard {
    /// A dashboard in `mode`, no summary taken yet.
    pub fn new(mode: DashboardMode) -> Self {
        Dashboard {
            mode,
            rooms: Mutex::new(None),
        }
    }

    /// The room summary (top [`TOP_ROOMS`]), reused when younger than [`ROOMS_FRESH`].
    async fn rooms(&self, handle: &Handle) -> RoomSummary {
        let cached = self.rooms.lock().ok().and_then(|c| c.clone());
        if let Some((_, summary)) = cached.filter(|(at, _)| at.elapsed() < ROOMS_FRESH) {
            return summary;
        }
        let summary = handle.room_summary(TOP_ROOMS).await;
        if let Ok(mut cache) = self.rooms.lock() {
            *cache = Some((Instant::now(), summary.clone()));
        }
        summary
    }
}

/// What the page may load: itself, its script and style, and fetches to this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// A dashboard route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// `GET /dashboard`.
    Page,
    /// `GET /dashboard/app.js`.
    Script,
    /// `GET /dashboard/app.css`.
    Style,
    /// `GET /api/dashboard`.
    Data,
}

impl Part {
    /// The dashboard route of `path`, if it is one.
    pub(super) fn of(path: &str) -> Option<Part> {
        match path {
            "/dashboard" | "/dashboard/" => Some(Part::Page),
            "/dashboard/app.js" => Some(Part::Script),
            "/dashboard/app.css" => Some(Part::Style),
            "/api/dashboard" => Some(Part::Data),
            _ => None,
        }
    }
}

/// Answers a GET of a dashboard route.
pub(super) async fn answer(service: &HttpService, head: &RequestHead, part: Part) -> Response {
    let mode = service.dashboard.mode;
    if mode == DashboardMode::Off {
        return Response::error(404, "Not Found");
    }
    match part {
        Part::Page => page(mode, head.path.ends_with('/')),
        Part::Script => asset("text/javascript; charset=utf-8", SCRIPT),
        Part::Style => asset("text/css; charset=utf-8", STYLE),
        Part::Data => data(service, head, mode).await,
    }
}

/// The page, told its mode (so it knows whether to ask for a key before polling). Its
/// assets are linked relative to the page (`dashboard/app.js` from `/dashboard`,
/// `app.js` from `/dashboard/`), so it works wherever an application mounts the
/// endpoints (`mount::endpoints` nested under a prefix).
fn page(mode: DashboardMode, trailing_slash: bool) -> Response {
    let assets = if trailing_slash { "" } else { "dashboard/" };
    let html = PAGE
        .replace("{{MODE}}", mode.as_str())
        .replace("{{ASSETS}}", assets);
    asset("text/html; charset=utf-8", &html).with_header("Content-Security-Policy", CSP)
}

fn asset(content_type: &'static str, body: &str) -> Response {
    Response::body(200, content_type, body)
        .with_header("Cache-Control", "no-cache")
        .with_header("X-Content-Type-Options", "nosniff")
}

/// `GET /api/dashboard`: everything with a key; aggregates only in public mode without.
async fn data(service: &HttpService, head: &RequestHead, mode: DashboardMode) -> Response {
    let api_key = service.keys.api.get();
    let keyed = [api_key.as_deref(), service.keys.dashboard.as_deref()]
        .into_iter()
        .any(|key| super::api::authorized(head, key));
    if !keyed && mode == DashboardMode::Protected {
        return Response::error(401, "Unauthorized");
    }
    let rooms = service.dashboard.rooms(&service.handle).await;
    let body = document(&service.handle, rooms, keyed);
    Response::json(200, &body).with_header("Cache-Control", "no-store")
}

/// The JSON document of `GET /api/dashboard`; room names only when `full`.
fn document(handle: &Handle, rooms: RoomSummary, full: bool) -> serde_json::Value {
    let metrics = handle.metrics();
    let redis = handle.remote_status();
    let redis_dropped = redis.as_ref().map_or(0, |r| r.publish_dropped);
    serde_json::json!({
        "access": if full { "full" } else { "aggregate" },
        "server": server(handle),
        "redis": redis,
        "totals": totals(metrics, redis_dropped),
        "shards": shards(metrics, &handle.inbox_depths()),
        "latency": latency(metrics.shards()),
        "rooms": {
            "distinct": rooms.distinct,
            "summed_over_shards": metrics.snapshot().rooms,
            "top": full.then_some(rooms.top),
        },
    })
}

/// Who and what is running.
fn server(handle: &Handle) -> serde_json::Value {
    serde_json::json!({
        "version": build_info::VERSION,
        "commit": build_info::COMMIT,
        "build_date": build_info::BUILD_DATE,
        "server_id": handle.server_id().as_str(),
        "uptime_ms": u64::try_from(handle.uptime().as_millis()).unwrap_or(u64::MAX),
        "shards": handle.metrics().shards().len(),
        "rss_bytes": ProcessStats::read().map(|p| p.resident_bytes),
    })
}

/// Instance totals: the page charts their rates.
fn totals(metrics: &Metrics, redis_publish_dropped: u64) -> serde_json::Value {
    let sum = |f: fn(&ShardMetrics) -> u64| metrics.shards().iter().map(|s| f(s)).sum::<u64>();
    let snapshot = metrics.snapshot();
    serde_json::json!({
        "connections": snapshot.connections,
        "authenticated": snapshot.authenticated,
        "published": snapshot.published,
        "deliveries": snapshot.deliveries,
        "frames_in": sum(|s| s.frames_in.get()),
        "backpressure_dropped": snapshot.backpressure_dropped,
        "inbox_dropped": snapshot.inbox_dropped,
        "redis_publish_dropped": redis_publish_dropped,
        "inbound_dropped": metrics.inbound_dropped.get(),
    })
}

/// One row per shard.
fn shards(metrics: &Metrics, depths: &[usize]) -> Vec<serde_json::Value> {
    let row = |(i, s): (usize, &std::sync::Arc<ShardMetrics>)| {
        serde_json::json!({
            "shard": i,
            "connections": s.connections.get(),
            "authenticated": s.authenticated.get(),
            "rooms": s.rooms.get(),
            "deliveries": s.deliveries.get(),
            "frames_in": s.frames_in.get(),
            "dropped": s.backpressure_dropped.get(),
            "inbox_depth": depths.get(i),
        })
    };
    metrics.shards().iter().enumerate().map(row).collect()
}

/// The latency histograms summed over shards (cumulative since start; the page takes
/// the difference between two polls to chart the quantiles of each interval).
fn latency(shards: &[std::sync::Arc<ShardMetrics>]) -> serde_json::Value {
    let mut delivery = HistogramSnapshot::default();
    let mut connect = HistogramSnapshot::default();
    for shard in shards {
        delivery.add(&shard.delivery_latency);
        connect.add(&shard.connect_latency);
    }
    serde_json::json!({
        "bounds_us": BOUNDS_US,
        "delivery": delivery.buckets,
        "connect": connect.buckets,
    })
}

//! Scenarios (`connect`, `fanout`, `chat`, `churn`, `soak`, `recovery`). Each one is an
//! `async fn run(ctx, args) -> Result<Outcome>` executed on the main thread's runtime; it
//! starts worker threads (a [`fleet`] through a [`driver::Driver`], or its own loop), moves
//! them through [`Phase`]s, samples the server at phase boundaries and turns what came
//! back into results and summary lines. Stopping the workers and collecting their results
//! is [`driver`]'s, the same for every scenario.

pub mod chat;
pub mod churn;
pub mod connect;
pub mod driver;
pub mod fanout;
pub mod fleet;
pub mod recovery;
pub mod soak;

use crate::ci::CiFacts;
use crate::ci::thresholds::Check;
use crate::cli::CommonArgs;
use crate::meter::ClientUsage;
use crate::proc::ServerProbe;
use crate::progress::Progress;
use crate::report::Summary;
use crate::runtime::ThreadRegistry;
use crate::session::SessionConfig;
use crate::stats::Live;
use crate::traffic::WireWindow;
use crate::ws::WireCounts;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Everything a scenario needs from the command line and the process.
pub struct Ctx {
    /// Shared options.
    pub common: CommonArgs,
    /// How clients connect and authenticate.
    pub session: Arc<SessionConfig>,
    /// The server to sample, if given.
    pub server: Option<ServerProbe>,
    /// The progress line.
    pub progress: Progress,
    /// Live counters.
    pub live: Arc<Live>,
    /// Threads to account for.
    pub registry: ThreadRegistry,
}

impl Ctx {
    /// What every connection of the run has read so far (the edges of a measured
    /// window; see [`Outcome::wire`]).
    pub fn wire(&self) -> WireCounts {
        self.session
            .conn
            .meter
            .as_ref()
            .map(|m| m.snapshot())
            .unwrap_or_default()
    }
}

/// What a scenario hands to the report.
pub struct Outcome {
    /// Machine-readable results.
    pub results: serde_json::Value,
    /// Human summary.
    pub summary: Summary,
    /// The load generator's CPU over the measured window.
    pub client: ClientUsage,
    /// Scenario warnings (client saturation is added by the caller).
    pub warnings: Vec<String>,
    /// The server's `Server` header, if seen.
    pub server_header: Option<String>,
    /// What the plot, the exports and the thresholds take (`fanout`, `soak`).
    pub ci: Option<CiFacts>,
    /// Pass/fail checks the scenario judged itself (`recovery`'s verdict); they join the
    /// thresholds, so a failed one exits 1.
    pub checks: Vec<Check>,
    /// The wire meter at the edges of the measured window, for the per-delivery figures
    /// of the report's `wire` section (`None`: the whole run).
    pub wire: Option<WireWindow>,
}

impl Outcome {
    /// `results` (as JSON) and their summary, with no warnings and no server header.
    pub fn new(results: &impl Serialize, summary: Summary, client: ClientUsage) -> Outcome {
        Outcome {
            results: serde_json::to_value(results).unwrap_or_default(),
            summary,
            client,
            warnings: Vec::new(),
            server_header: None,
            ci: None,
            checks: Vec::new(),
            wire: None,
        }
    }
}

/// Where a run is; clients watch it through a `tokio::sync::watch` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Connecting, joining, warming up.
    Setup,
    /// The measured window.
    Measure,
    /// Senders stop; readers keep reading.
    Drain,
    /// Everyone closes.
    Stop,
}

/// A drain ends early when nothing arrived for this long (a stalled server may hold
/// messages for a while; what never comes is counted as lost).
pub const DRAIN_QUIET: Duration = Duration::from_secs(3);

/// Optional duration from seconds (0 or less = none).
pub fn secs(s: f64) -> Option<Duration> {
    (s > 0.0).then(|| Duration::from_secs_f64(s))
}

/// `12.3 MiB`-style byte count.
pub fn fmt_bytes(b: f64) -> String {
    let (v, unit) = if b.abs() >= 1024.0 * 1024.0 {
        (b / (1024.0 * 1024.0), "MiB")
    } else if b.abs() >= 1024.0 {
        (b / 1024.0, "KiB")
    } else {
        (b, "B")
    };
    format!("{v:.1} {unit}")
}

/// Polls `done` every 100 ms (refreshing the progress line with `status`) until it holds
/// or `limit` passes; returns whether it held.
pub async fn wait_until(
    ctx: &Ctx,
    limit: Duration,
    mut done: impl FnMut() -> bool,
    mut status: impl FnMut() -> (u64, String),
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (pos, msg) = status();
        ctx.progress.update(pos, msg);
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every attempt finished (established or failed), at most the time the
/// ramp should take plus the timeouts.
pub async fn wait_connected(ctx: &Ctx, n: u64) {
    ctx.progress.phase("connect", Some(n));
    let c = &ctx.common;
    let limit = Duration::from_secs_f64(n as f64 / c.connect_rate.max(1e-9))
        + Duration::from_millis(c.connect_timeout_ms + c.auth_timeout_ms + 5000);
    let live = &ctx.live;
    let done = || Live::get(&live.established) + Live::get(&live.failed) >= n;
    let status = || {
        let (ok, failed) = (Live::get(&live.established), Live::get(&live.failed));
        (ok + failed, format!("{ok} authenticated, {failed} failed"))
    };
    wait_until(ctx, limit, done, status).await;
}

/// Awaits `fut`, refreshing the progress line with `status` every 100 ms meanwhile.
pub async fn with_progress<T>(
    ctx: &Ctx,
    fut: impl Future<Output = T>,
    mut status: impl FnMut() -> (u64, String),
) -> T {
    let mut fut = std::pin::pin!(fut);
    loop {
        let (pos, msg) = status();
        ctx.progress.update(pos, msg);
        tokio::select! {
            out = &mut fut => return out,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// The heartbeat message.
pub const HEARTBEAT: &[u8] = br#"{"event":"heartbeat"}"#;

/// First heartbeat of client `i`: spread over one period so heartbeats do not arrive in
/// bursts.
pub fn heartbeat_phase(period: Option<Duration>, i: u64) -> Duration {
    period
        .map(|p| p.mul_f64(((i.wrapping_mul(2_654_435_761) % 1000) as f64 + 1.0) / 1000.0))
        .unwrap_or_default()
}

/// Counts of how client connections ended, keyed `stopped`, `server_close_<code>`,
/// `server_eof`, `error`.
pub type Endings = std::collections::BTreeMap<String, u64>;

/// How one client connection ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum End {
    /// The scenario stopped it.
    #[default]
    Stopped,
    /// The server sent a close frame (with this code).
    ServerClosed(Option<u16>),
    /// The server closed TCP without a close frame.
    ServerEof,
    /// I/O or protocol error.
    Error(String),
}

impl End {
    /// The key counted in [`Endings`].
    pub fn key(&self) -> String {
        match self {
            End::Stopped => "stopped".into(),
            End::ServerClosed(Some(c)) => format!("server_close_{c}"),
            End::ServerClosed(None) => "server_close".into(),
            End::ServerEof => "server_eof".into(),
            End::Error(_) => "error".into(),
        }
    }

    /// From a drain status (`None` while open).
    pub fn from_status(s: crate::ws::ReadStatus) -> Option<End> {
        match s {
            crate::ws::ReadStatus::Open => None,
            crate::ws::ReadStatus::Closed(c) => Some(End::ServerClosed(c)),
            crate::ws::ReadStatus::Eof => Some(End::ServerEof),
        }
    }
}

/// Counts endings.
pub fn count_endings<'a>(ends: impl Iterator<Item = &'a End>) -> Endings {
    let mut m = Endings::new();
    for e in ends {
        *m.entry(e.key()).or_default() += 1;
    }
    m
}

/// `key n, key n` for the summary.
pub fn fmt_endings(e: &Endings) -> String {
    if e.is_empty() {
        return "none".into();
    }
    e.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

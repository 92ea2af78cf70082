//! `connect`: ramp N connections at `--connect-rate`, authenticate, hold them for
//! `--hold-s` with heartbeats, then close them gracefully.
//!
//! Server samples: before the ramp, after it, at the end of the hold, after the close.
//! RSS per connection = (end of hold − before) / established; CPU per connection = CPU of
//! the ramp / established.

use super::driver::Driver;
use super::fleet::{Behavior, Merged};
use super::{
    Ctx, End, Endings, HEARTBEAT, Outcome, Phase, count_endings, fmt_bytes, fmt_endings,
    heartbeat_phase, secs, wait_until,
};
use crate::cli::ConnectArgs;
use crate::error::Result;
use crate::meter::Meter;
use crate::proc::{ServerProbe, Stamped, delta};
use crate::report::Summary;
use crate::runtime::Ticker;
use crate::session::Established;
use crate::stats::{Failures, LatencySummary, Live};
use crate::ws::CloseOutcome;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

struct Hold {
    phase: watch::Receiver<Phase>,
    heartbeat: Option<Duration>,
    close_timeout: Duration,
    live: Arc<Live>,
}

struct HoldClient {
    end: End,
    heartbeats: u64,
    close: Option<CloseOutcome>,
}

impl Hold {
    fn new(phase: watch::Receiver<Phase>, args: &ConnectArgs, ctx: &Ctx) -> Self {
        Hold {
            phase,
            heartbeat: secs(args.heartbeat_s),
            close_timeout: Duration::from_millis(args.close_timeout_ms),
            live: ctx.live.clone(),
        }
    }
}

impl Behavior for Hold {
    type Client = HoldClient;
    type Worker = ();

    async fn run(self: Arc<Self>, est: Established, i: u64) -> HoldClient {
        let mut conn = est.conn;
        let mut heartbeats = 0;
        let mut hb = Ticker::new(self.heartbeat, heartbeat_phase(self.heartbeat, i));
        let mut phase = self.phase.clone();
        let mut stop = std::pin::pin!(phase.wait_for(|p| *p >= Phase::Stop));
        let end = loop {
            tokio::select! {
                biased;
                _ = &mut stop => break End::Stopped,
                _ = hb.tick() => match conn.send_text(HEARTBEAT).await {
                    Ok(()) => { heartbeats += 1; continue }
                    Err(e) => break End::Error(e.to_string()),
                },
                r = conn.readable() => if let Err(e) = r { break End::Error(e.to_string()) },
            }
            let status = match conn.drain(&mut |_, _| {}) {
                Ok(d) => d.status,
                Err(e) => break End::Error(e.to_string()),
            };
            let _ = conn.flush_control().await;
            if let Some(end) = End::from_status(status) {
                Live::add(&self.live.server_closed, 1);
                break end;
            }
        };
        let close = (end == End::Stopped).then_some(conn.close(1000, self.close_timeout).await);
        HoldClient {
            end,
            heartbeats,
            close,
        }
    }

    fn finish_worker(&self) {}
}

/// Server-side figures of a `connect` run.
#[derive(Debug, Serialize)]
pub struct ConnectServer {
    /// RSS before the ramp.
    pub rss_before_bytes: u64,
    /// RSS right after the ramp.
    pub rss_after_ramp_bytes: u64,
    /// RSS at the end of the hold.
    pub rss_held_bytes: u64,
    /// RSS after every client closed.
    pub rss_after_close_bytes: u64,
    /// (held − before) / established.
    pub rss_per_conn_bytes: f64,
    /// CPU seconds during the ramp.
    pub cpu_ramp_s: f64,
    /// Ramp CPU per established connection, ms.
    pub cpu_per_conn_ms: f64,
    /// CPU seconds during the hold.
    pub cpu_hold_s: f64,
    /// Cores used during the hold.
    pub cpu_hold_cores: f64,
    /// CPU seconds of the close phase.
    pub cpu_close_s: f64,
}

/// Results of a `connect` run.
#[derive(Debug, Serialize)]
pub struct ConnectResults {
    /// Connections requested.
    pub clients: u64,
    /// Authenticated.
    pub established: u64,
    /// Failed.
    pub failed: u64,
    /// Failures by kind.
    pub failures: Failures,
    /// Ramp duration.
    pub ramp_s: f64,
    /// Established per second of ramp.
    pub ramp_rate: f64,
    /// TCP connect + upgrade.
    pub connect_latency: LatencySummary,
    /// authenticate → connected.
    pub auth_latency: LatencySummary,
    /// Hold duration.
    pub hold_s: f64,
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// How connections ended (`stopped` = by us).
    pub endings: Endings,
    /// Graceful closes answered by the server (close frame + TCP close).
    pub closes_clean: u64,
    /// Graceful closes that timed out.
    pub closes_timed_out: u64,
    /// Server figures (with --server-pid).
    pub server: Option<ConnectServer>,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, args: &ConnectArgs) -> Result<Outcome> {
    let probe = ctx.server.as_ref();
    let s0 = ServerProbe::sample(probe);
    let meter = Meter::start(&ctx.registry, ctx.server.map(|s| s.pid));
    let fleet = Driver::spawn(ctx, args.clients, |phase| Hold::new(phase, args, ctx))?;
    let t0 = Instant::now();
    super::wait_connected(ctx, args.clients).await;
    let ramp_s = t0.elapsed().as_secs_f64();
    let s1 = ServerProbe::sample(probe);
    hold(ctx, args.hold_s).await;
    let s2 = ServerProbe::sample(probe);
    let mut client = meter.finish(&ctx.registry);
    let m = fleet.stop(ctx, &mut client).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s3 = ServerProbe::sample(probe);
    let m = m.require_clients()?;
    let results = tally(args, &m, ramp_s, [s0, s1, s2, s3]);
    let summary = summarize(&results);
    Ok(Outcome {
        server_header: m.server_header,
        ..Outcome::new(&results, summary, client)
    })
}

/// Holds every connection open for `hold_s` seconds.
async fn hold(ctx: &Ctx, hold_s: f64) {
    ctx.progress.phase("hold", None);
    let live = &ctx.live;
    let status = || {
        let (open, closed) = (Live::get(&live.open), Live::get(&live.server_closed));
        (0, format!("{open} open, {closed} closed by server"))
    };
    let limit = Duration::from_secs_f64(hold_s.max(0.0));
    wait_until(ctx, limit, || false, status).await;
}

fn tally(
    args: &ConnectArgs,
    m: &Merged<Hold>,
    ramp_s: f64,
    samples: [Option<Stamped>; 4],
) -> ConnectResults {
    let established = m.clients.len() as u64;
    let closes = m.clients.iter().filter_map(|(_, c)| c.close);
    ConnectResults {
        clients: args.clients,
        established,
        failed: m.failures.total(),
        ramp_s,
        ramp_rate: established as f64 / ramp_s.max(1e-9),
        connect_latency: m.connect.summary(),
        auth_latency: m.auth.summary(),
        hold_s: args.hold_s,
        heartbeats_sent: m.clients.iter().map(|(_, c)| c.heartbeats).sum(),
        endings: count_endings(m.clients.iter().map(|(_, c)| &c.end)),
        closes_clean: closes
            .clone()
            .filter(|c| c.server_frame.is_some() && c.eof)
            .count() as u64,
        closes_timed_out: closes.filter(|c| c.timed_out).count() as u64,
        server: server_figures(samples, established),
        failures: m.failures.clone(),
    }
}

fn server_figures(s: [Option<Stamped>; 4], established: u64) -> Option<ConnectServer> {
    let [s0, s1, s2, s3] = s;
    let (ramp, hold, close) = (delta(s0, s1)?, delta(s1, s2)?, delta(s2, s3)?);
    let n = established.max(1) as f64;
    Some(ConnectServer {
        rss_before_bytes: ramp.rss_before_bytes,
        rss_after_ramp_bytes: ramp.rss_after_bytes,
        rss_held_bytes: hold.rss_after_bytes,
        rss_after_close_bytes: close.rss_after_bytes,
        rss_per_conn_bytes: (hold.rss_after_bytes as f64 - ramp.rss_before_bytes as f64) / n,
        cpu_ramp_s: ramp.cpu_s,
        cpu_per_conn_ms: ramp.cpu_s / n * 1000.0,
        cpu_hold_s: hold.cpu_s,
        cpu_hold_cores: hold.cores,
        cpu_close_s: close.cpu_s,
    })
}

fn summarize(r: &ConnectResults) -> Summary {
    let mut s = Summary::default();
    s.section("connections")
        .line("requested", r.clients)
        .line(
            "established",
            format!(
                "{} in {:.2} s ({:.0}/s)",
                r.established, r.ramp_s, r.ramp_rate
            ),
        )
        .line(
            "failed",
            format!(
                "{} {}",
                r.failed,
                if r.failed > 0 {
                    format!("{:?}", r.failures.samples)
                } else {
                    String::new()
                }
            ),
        )
        .line("connect", r.connect_latency.line())
        .line("auth", r.auth_latency.line())
        .line(
            "hold",
            format!("{:.1} s, {} heartbeats sent", r.hold_s, r.heartbeats_sent),
        )
        .line("endings", fmt_endings(&r.endings))
        .line(
            "closes",
            format!("{} clean, {} timed out", r.closes_clean, r.closes_timed_out),
        );
    if let Some(v) = &r.server {
        s.section("server")
            .line(
                "RSS",
                format!(
                    "{} before, {} after ramp, {} held, {} after close",
                    fmt_bytes(v.rss_before_bytes as f64),
                    fmt_bytes(v.rss_after_ramp_bytes as f64),
                    fmt_bytes(v.rss_held_bytes as f64),
                    fmt_bytes(v.rss_after_close_bytes as f64)
                ),
            )
            .line("RSS per connection", fmt_bytes(v.rss_per_conn_bytes))
            .line(
                "CPU ramp",
                format!(
                    "{:.2} s ({:.3} ms per connection)",
                    v.cpu_ramp_s, v.cpu_per_conn_ms
                ),
            )
            .line(
                "CPU hold",
                format!(
                    "{:.2} s ({:.1}% of a core)",
                    v.cpu_hold_s,
                    v.cpu_hold_cores * 100.0
                ),
            )
            .line("CPU close", format!("{:.2} s", v.cpu_close_s));
    }
    s
}

//! `churn`: a connect → authenticate → (hold) → close storm at `--rate` connections/s for
//! `--duration-s`. Worker `w` of `W` starts attempts `w, w+W, …` (the index is the token
//! subject), with at most `--max-inflight / W` cycles open at once; when that many are
//! open the next attempt waits, so the achieved rate shows whether the server kept up.
//!
//! Server samples before, right after, and one second after the storm: CPU per
//! connection, and RSS growth (a leak shows as RSS that does not come back).

use super::driver::take_all;
use super::{Ctx, Outcome, fmt_bytes};
use crate::cli::ChurnArgs;
use crate::error::Result;
use crate::meter::Meter;
use crate::proc::{ServerDelta, ServerProbe, Stamped, delta};
use crate::report::Summary;
use crate::runtime::{Pacer, ThreadOutput, spawn_workers};
use crate::session::{self, SessionConfig};
use crate::stats::{Failures, Latency, LatencySummary, Live};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Per-worker tallies.
#[derive(Default)]
struct Tally {
    ok: u64,
    connect: Latency,
    auth: Latency,
    close: Latency,
    cycle: Latency,
    failures: Failures,
    closes_clean: u64,
    closes_no_frame: u64,
    closes_timed_out: u64,
}

impl Tally {
    fn merge(&mut self, o: &Tally) {
        self.ok += o.ok;
        self.connect.merge(&o.connect);
        self.auth.merge(&o.auth);
        self.close.merge(&o.close);
        self.cycle.merge(&o.cycle);
        self.failures.merge(&o.failures);
        self.closes_clean += o.closes_clean;
        self.closes_no_frame += o.closes_no_frame;
        self.closes_timed_out += o.closes_timed_out;
    }
}

#[derive(Clone, Copy)]
struct Cfg {
    rate: f64,
    attempts: u64,
    workers: usize,
    inflight: usize,
    hold: Duration,
    close_timeout: Duration,
}

impl Cfg {
    fn new(ctx: &Ctx, args: &ChurnArgs) -> Result<Self> {
        if args.rate.is_nan()
            || args.rate <= 0.0
            || args.duration_s.is_nan()
            || args.duration_s <= 0.0
        {
            return Err(crate::Error::Config(
                "--rate and --duration-s must be positive".into(),
            ));
        }
        Ok(Cfg {
            rate: args.rate,
            attempts: (args.rate * args.duration_s).round() as u64,
            workers: ctx.common.threads,
            inflight: ctx.common.max_inflight,
            hold: Duration::from_millis(args.hold_ms),
            close_timeout: Duration::from_millis(args.close_timeout_ms),
        })
    }
}

/// Server figures of a `churn` run.
#[derive(Debug, Serialize)]
pub struct ChurnServer {
    /// CPU and RSS over the storm.
    pub storm: ServerDelta,
    /// Storm CPU per successful cycle, ms.
    pub cpu_per_conn_ms: f64,
    /// RSS one second after the storm.
    pub rss_settled_bytes: u64,
    /// settled − before.
    pub rss_growth_bytes: i64,
}

/// Results of a `churn` run.
#[derive(Debug, Serialize)]
pub struct ChurnResults {
    /// Attempts planned (rate × duration).
    pub planned: u64,
    /// Attempts made.
    pub attempted: u64,
    /// Cycles that authenticated.
    pub succeeded: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Failures by kind.
    pub failures: Failures,
    /// Seconds the storm took.
    pub elapsed_s: f64,
    /// attempted / elapsed_s.
    pub achieved_rate: f64,
    /// TCP connect + upgrade.
    pub connect_latency: LatencySummary,
    /// authenticate → connected.
    pub auth_latency: LatencySummary,
    /// close sent → server close frame and TCP close.
    pub close_latency: LatencySummary,
    /// Whole cycle (connect → closed).
    pub cycle_latency: LatencySummary,
    /// Closes answered with a close frame and a TCP close.
    pub closes_clean: u64,
    /// Closes where the server dropped TCP without a close frame.
    pub closes_without_frame: u64,
    /// Closes that timed out.
    pub closes_timed_out: u64,
    /// Server figures (with --server-pid).
    pub server: Option<ChurnServer>,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, args: &ChurnArgs) -> Result<Outcome> {
    let cfg = Cfg::new(ctx, args)?;
    let probe = ctx.server.as_ref();
    let s0 = ServerProbe::sample(probe);
    let meter = Meter::start(&ctx.registry, ctx.server.map(|s| s.pid));
    let t0 = Instant::now();
    let outs = storm(ctx, cfg).await?;
    let elapsed_s = t0.elapsed().as_secs_f64();
    let s1 = ServerProbe::sample(probe);
    let mut client = meter.finish(&ctx.registry);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s2 = ServerProbe::sample(probe);
    let mut t = Tally::default();
    for r in take_all(outs, &mut client) {
        t.merge(&r);
    }
    let attempted = Live::get(&ctx.live.attempts);
    let results = tally(cfg, t, attempted, elapsed_s, [s0, s1, s2]);
    Ok(Outcome::new(&results, summarize(&results, args), client))
}

/// Runs the workers until every planned attempt is done.
async fn storm(ctx: &Ctx, cfg: Cfg) -> Result<Vec<ThreadOutput<Tally>>> {
    let (session, live) = (ctx.session.clone(), ctx.live.clone());
    let workers = spawn_workers(cfg.workers, &ctx.registry, move |w| {
        worker(w, cfg, session.clone(), live.clone())
    })?;
    ctx.progress.phase("churn", Some(cfg.attempts));
    let live = &ctx.live;
    super::with_progress(ctx, workers.join(), || {
        let (a, ok, f) = (
            Live::get(&live.attempts),
            Live::get(&live.established),
            Live::get(&live.failed),
        );
        (
            a,
            format!("{ok} ok, {f} failed, {} open", Live::get(&live.open)),
        )
    })
    .await
}

fn tally(
    cfg: Cfg,
    t: Tally,
    attempted: u64,
    elapsed_s: f64,
    samples: [Option<Stamped>; 3],
) -> ChurnResults {
    let [s0, s1, s2] = samples;
    ChurnResults {
        planned: cfg.attempts,
        attempted,
        succeeded: t.ok,
        failed: t.failures.total(),
        elapsed_s,
        achieved_rate: attempted as f64 / elapsed_s.max(1e-9),
        connect_latency: t.connect.summary(),
        auth_latency: t.auth.summary(),
        close_latency: t.close.summary(),
        cycle_latency: t.cycle.summary(),
        closes_clean: t.closes_clean,
        closes_without_frame: t.closes_no_frame,
        closes_timed_out: t.closes_timed_out,
        server: delta(s0, s1).map(|storm| ChurnServer {
            cpu_per_conn_ms: storm.cpu_s / t.ok.max(1) as f64 * 1000.0,
            rss_settled_bytes: s2
                .map(|s| s.sample.rss_bytes)
                .unwrap_or(storm.rss_after_bytes),
            rss_growth_bytes: s2
                .map(|s| s.sample.rss_bytes)
                .unwrap_or(storm.rss_after_bytes) as i64
                - storm.rss_before_bytes as i64,
            storm,
        }),
        failures: t.failures,
    }
}

async fn worker(w: usize, cfg: Cfg, session: Arc<SessionConfig>, live: Arc<Live>) -> Tally {
    let n = cfg.workers.max(1) as u64;
    let mine = cfg.attempts / n + u64::from((w as u64) < cfg.attempts % n);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let slots = Arc::new(Semaphore::new((cfg.inflight / n as usize).max(1)));
    let mut pacer = Pacer::new(cfg.rate / n as f64, mine);
    let mut tasks = Vec::new();
    let mut k = 0u64;
    loop {
        let due = pacer.next().await;
        if due == 0 {
            break;
        }
        for _ in 0..due {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let i = w as u64 + k * n;
            k += 1;
            let (session, live, tally) = (session.clone(), live.clone(), tally.clone());
            tasks.push(tokio::task::spawn_local(async move {
                cycle(i, cfg, &session, &live, &tally).await;
                drop(permit);
            }));
        }
        tasks.retain(|t| !t.is_finished());
    }
    for t in tasks {
        let _ = t.await;
    }
    tally.take()
}

async fn cycle(i: u64, cfg: Cfg, session: &SessionConfig, live: &Live, tally: &RefCell<Tally>) {
    Live::add(&live.attempts, 1);
    let t0 = Instant::now();
    let est = match session::establish(session, i).await {
        Ok(est) => est,
        Err(e) => {
            e.record(&mut tally.borrow_mut().failures);
            Live::add(&live.failed, 1);
            return;
        }
    };
    Live::add(&live.established, 1);
    Live::add(&live.open, 1);
    {
        let mut t = tally.borrow_mut();
        t.ok += 1;
        t.connect.record(est.connect_us);
        t.auth.record(est.auth_us);
    }
    if !cfg.hold.is_zero() {
        tokio::time::sleep(cfg.hold).await;
    }
    let t1 = Instant::now();
    let out = est.conn.close(1000, cfg.close_timeout).await;
    Live::dec(&live.open);
    Live::add(&live.closed, 1);
    let mut t = tally.borrow_mut();
    t.close.record(t1.elapsed().as_micros() as u64);
    t.cycle.record(t0.elapsed().as_micros() as u64);
    match (out.timed_out, out.server_frame.is_some()) {
        (true, _) => t.closes_timed_out += 1,
        (false, true) => t.closes_clean += 1,
        (false, false) => t.closes_no_frame += 1,
    }
}

fn summarize(r: &ChurnResults, a: &ChurnArgs) -> Summary {
    let mut s = Summary::default();
    s.section("churn")
        .line(
            "attempted",
            format!(
                "{} of {} in {:.2} s ({:.0}/s; target {:.0}/s)",
                r.attempted, r.planned, r.elapsed_s, r.achieved_rate, a.rate
            ),
        )
        .line("succeeded", r.succeeded)
        .line(
            "failed",
            format!(
                "{}{}",
                r.failed,
                if r.failures.samples.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.failures.samples.join("; "))
                }
            ),
        )
        .line("connect", r.connect_latency.line())
        .line("auth", r.auth_latency.line())
        .line("close", r.close_latency.line())
        .line("cycle", r.cycle_latency.line())
        .line(
            "closes",
            format!(
                "{} clean, {} without close frame, {} timed out",
                r.closes_clean, r.closes_without_frame, r.closes_timed_out
            ),
        );
    if let Some(v) = &r.server {
        s.section("server")
            .line(
                "CPU",
                format!(
                    "{:.2} s over {:.2} s ({:.0}% of a core)",
                    v.storm.cpu_s,
                    v.storm.wall_s,
                    v.storm.cores * 100.0
                ),
            )
            .line("CPU per connection", format!("{:.3} ms", v.cpu_per_conn_ms))
            .line(
                "RSS",
                format!(
                    "{} before, {} after, {} settled ({:+.1} KiB)",
                    fmt_bytes(v.storm.rss_before_bytes as f64),
                    fmt_bytes(v.storm.rss_after_bytes as f64),
                    fmt_bytes(v.rss_settled_bytes as f64),
                    v.rss_growth_bytes as f64 / 1024.0
                ),
            );
    }
    s
}

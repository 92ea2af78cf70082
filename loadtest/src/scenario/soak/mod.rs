//! `soak`: a bounded, self-stopping soak of one server process.
//!
//! Two populations share the run. `--clients` **steady members** (the fan-out readers,
//! client `i` in room `i % K`) connect, join, prove their join with a warm-up message and
//! stay to the end, reading the publisher's `--rate` messages/s. During the soak
//! (`--duration-s`) a **churn population** on its own thread ([`churn`]) connects,
//! authenticates, joins, leaves and closes at `--churn-rate` cycles/s. A sampler
//! ([`series`]) reads the server's RSS and open descriptors every `--sample-s` from
//! `/proc/<--server-pid>` into a series, and the [`verdict`] judges the run: RSS flat
//! after a warm-up, no descriptor leak, no error, every message accounted for.
//!
//! Order of a run: publisher connects (it warms up meanwhile) → descriptors at idle →
//! members ramp and join → warm-up until each has a message → descriptors at the soak
//! start → soak: publisher, churn and the measured window start together and end after
//! `--duration-s` (no churn cycle starts later) → drain (every expected message arrived,
//! none for 3 s, or `--drain-ms`) → descriptors after the churn (allowed a few seconds to
//! settle) → members close → descriptors after close (settling likewise) → last sample.
//!
//! Bounds: the run lasts about ramp + warm-up + duration + drain + 2 × settle + close;
//! the load generator holds at most `--clients` + `--max-inflight` + the publisher's
//! sockets (checked against `RLIMIT_NOFILE` before anything starts).

pub mod churn;
mod results;
pub mod series;
pub mod verdict;

pub use results::SoakResults;

use self::churn::{ChurnLive, ChurnPlan, ChurnTally, population};
use self::results::{Collected, FdChecks, ci_facts, collect, summarize, warnings};
use self::series::{Counters, Sampler, Stage};
use self::verdict::{FdCheck, Window, excess};
use super::driver::{Driver, take};
use super::fanout::{Fanout, drain_phase, estimate_expected, start_publisher, warmup_phase};
use super::{Ctx, Outcome, Phase, fmt_bytes, secs, with_progress};
use crate::cli::SoakArgs;
use crate::error::{Error, Result};
use crate::meter::Meter;
use crate::payload::{BENCH_EVENT, PayloadShape};
use crate::proc;
use crate::publisher::{Endpoint, Plan, PublishReport, Publisher};
use crate::runtime::{Role, Spawned, ThreadOutput, spawn_thread};
use crate::stats::Live;
use crate::traffic::WireWindow;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for the server's descriptor count to come back after the churn, and
/// after the members closed.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// Period of the descriptor reads while settling.
const SETTLE_POLL: Duration = Duration::from_millis(250);

/// Validated settings.
struct Cfg {
    pid: u32,
    rooms: Vec<String>,
    duration: Duration,
    sample: Duration,
    rss_warmup_s: f64,
}

impl Cfg {
    fn new(ctx: &Ctx, a: &SoakArgs) -> Result<Cfg> {
        let bad = |m: &str| Err(Error::Config(m.into()));
        let Some(server) = ctx.server else {
            return bad("soak samples the server: pass --server-pid PID");
        };
        if a.rooms == 0 || a.clients == 0 {
            return bad("--rooms and --clients must be at least 1");
        }
        let positive = [a.rate, a.churn_rate, a.duration_s, a.sample_s];
        if positive.iter().any(|v| v.is_nan() || *v <= 0.0) {
            return bad("--rate, --churn-rate, --duration-s and --sample-s must be positive");
        }
        let rss_warmup_s = a.rss_warmup_s.unwrap_or(a.duration_s / 3.0);
        if rss_warmup_s.is_nan() || rss_warmup_s < 0.0 || rss_warmup_s >= a.duration_s {
            return bad("--rss-warmup-s must be in [0, --duration-s)");
        }
        Ok(Cfg {
            pid: server.pid,
            rooms: (0..a.rooms)
                .map(|k| format!("{}{k}", a.room_prefix))
                .collect(),
            duration: Duration::from_secs_f64(a.duration_s),
            sample: Duration::from_secs_f64(a.sample_s),
            rss_warmup_s,
        })
    }

    fn publish_plan(&self, a: &SoakArgs) -> Plan {
        Plan {
            rooms: self.rooms.clone(),
            rate: a.rate,
            duration: self.duration,
            shape: PayloadShape::new(a.payload, BENCH_EVENT, a.frame_bytes),
        }
    }

    fn churn_plan(&self, ctx: &Ctx, a: &SoakArgs) -> ChurnPlan {
        ChurnPlan {
            rate: a.churn_rate,
            duration: self.duration,
            inflight: ctx.common.max_inflight,
            hold: Duration::from_millis(a.churn_hold_ms),
            close_timeout: Duration::from_millis(a.close_timeout_ms),
            first_index: a.clients,
            rooms: ChurnPlan::room_messages(&self.rooms),
        }
    }
}

/// What runs once the members are warmed up.
struct Running {
    publisher: Publisher,
    fleet: Driver<Fanout>,
    sampler: Sampler,
    churn_live: Arc<ChurnLive>,
    fds: FdChecks,
    warmed_all: bool,
}

/// What the soak window hands back.
struct Soaked {
    published: ThreadOutput<PublishReport>,
    churn: ThreadOutput<ChurnTally>,
    window: Window,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, args: &SoakArgs) -> Result<Outcome> {
    let cfg = Cfg::new(ctx, args)?;
    let Running {
        publisher,
        fleet,
        sampler,
        churn_live,
        mut fds,
        warmed_all,
    } = setup(ctx, &cfg, args).await?;
    let meter = Meter::start(&ctx.registry, Some(cfg.pid));
    let plan = cfg.churn_plan(ctx, args);
    let wire_at_go = ctx.wire();
    let soaked = soak_window(ctx, &cfg, &fleet, publisher, &plan, churn_live, &sampler).await?;
    drain(ctx, args, &soaked.published.result, &sampler).await;
    let wire = WireWindow {
        start: wire_at_go,
        end: ctx.wire(),
    };
    fds.steady_end = settle(ctx, cfg.pid, fds.steady_start).await;
    let mut client = meter.finish(&ctx.registry);
    let published = take(soaked.published, &mut client);
    let churn = take(soaked.churn, &mut client);
    sampler.enter(Stage::Close);
    let m = fleet.stop(ctx, &mut client).await?;
    fds.after_close = settle(ctx, cfg.pid, fds.idle).await;
    let collected = Collected {
        members: &m,
        churn,
        churn_plan: &plan,
        published,
        fds,
        series: sampler.finish().await,
        window: soaked.window,
    };
    let results = collect(args, cfg.rss_warmup_s, collected);
    Ok(Outcome {
        wire: Some(wire),
        warnings: warnings(&results, warmed_all),
        server_header: m.server_header.clone(),
        ci: Some(ci_facts(&m, &results)),
        ..Outcome::new(&results, summarize(&results), client)
    })
}

/// Publisher connected, sampler started, members connected, joined and warmed up; the
/// descriptors read before the members came and after.
async fn setup(ctx: &Ctx, cfg: &Cfg, args: &SoakArgs) -> Result<Running> {
    let endpoint = Endpoint::from_args(&args.publisher, &args.common, "soak")?;
    let publisher = start_publisher(ctx, endpoint, cfg.publish_plan(args)).await?;
    let churn_live = Arc::new(ChurnLive::default());
    let counters = Counters {
        live: ctx.live.clone(),
        churn: churn_live.clone(),
    };
    let sampler = Sampler::start(cfg.pid, cfg.sample, counters);
    let idle = fd_check(ctx, cfg.pid)?;
    let heartbeat = secs(args.heartbeat_s);
    let fleet = Driver::spawn(ctx, args.clients, |phase| {
        let timeline = args.ci.plot.is_some().then_some(cfg.duration);
        Fanout::members(phase, &cfg.rooms, heartbeat, ctx.live.clone(), timeline)
    })?;
    super::wait_connected(ctx, args.clients).await;
    if Live::get(&ctx.live.established) == 0 {
        publisher.abort();
        let _ = sampler.finish().await;
        return Err(fleet.abandon().await);
    }
    let warmed_all = warmup_phase(ctx, args.warmup_timeout_s).await;
    let fds = FdChecks {
        idle,
        steady_start: fd_check(ctx, cfg.pid)?,
        ..FdChecks::default()
    };
    Ok(Running {
        publisher,
        fleet,
        sampler,
        churn_live,
        fds,
        warmed_all,
    })
}

/// The soak itself: publisher, members' measured phase and churn start together; ends
/// when the publisher has published for the duration and every churn cycle ended.
async fn soak_window(
    ctx: &Ctx,
    cfg: &Cfg,
    fleet: &Driver<Fanout>,
    publisher: Publisher,
    plan: &ChurnPlan,
    churn_live: Arc<ChurnLive>,
    sampler: &Sampler,
) -> Result<Soaked> {
    let start_s = sampler.now_s();
    sampler.enter(Stage::Soak);
    publisher.go();
    fleet.enter(Phase::Measure);
    let churn = start_churn(ctx, plan.clone(), churn_live.clone())?;
    let both = async {
        let published = publisher.finish().await;
        let churned = churn.join().await;
        (published, churned)
    };
    let t0 = Instant::now();
    ctx.progress
        .phase("soak", Some(cfg.duration.as_secs().max(1)));
    let (published, churned) = with_progress(ctx, both, || {
        (
            t0.elapsed().as_secs(),
            soak_status(ctx, &churn_live, sampler),
        )
    })
    .await;
    let churn = churned?
        .pop()
        .ok_or_else(|| Error::Worker("load-churn".into()))?;
    Ok(Soaked {
        published: published?,
        churn,
        window: Window {
            start_s,
            end_s: sampler.now_s(),
        },
    })
}

/// Starts the churn population's thread.
fn start_churn(ctx: &Ctx, plan: ChurnPlan, live: Arc<ChurnLive>) -> Result<Spawned<ChurnTally>> {
    let session = ctx.session.clone();
    spawn_thread(
        "load-churn".into(),
        Role::Worker,
        &ctx.registry,
        move || population(plan, session, live),
    )
}

/// The progress line during the soak.
fn soak_status(ctx: &Ctx, churn: &ChurnLive, sampler: &Sampler) -> String {
    let server = sampler
        .latest()
        .map(|p| format!("RSS {} fds {}, ", fmt_bytes(p.rss_bytes as f64), p.fds))
        .unwrap_or_default();
    format!(
        "{server}{} held, churn {} done/{} failed, {} delivered",
        Live::get(&ctx.live.open),
        Live::get(&churn.done),
        Live::get(&churn.failed),
        Live::get(&ctx.live.frames)
    )
}

/// The server's descriptors now, with the members held.
fn fd_check(ctx: &Ctx, pid: u32) -> Result<FdCheck> {
    let fds = proc::fd_count(&pid.to_string())
        .map_err(Error::io(format!("reading /proc/{pid}/fd (--server-pid)")))?;
    Ok(FdCheck {
        fds,
        held: Live::get(&ctx.live.open),
        settle_s: 0.0,
    })
}

/// Waits for in-flight deliveries after the soak (as `fanout` does).
async fn drain(ctx: &Ctx, args: &SoakArgs, published: &PublishReport, sampler: &Sampler) {
    sampler.enter(Stage::Drain);
    let expected = estimate_expected(published, args.clients);
    drain_phase(ctx, expected, Duration::from_millis(args.drain_ms)).await;
}

/// Reads the descriptors until they are back at `base` (allowing for the members held,
/// [`excess`]) or [`SETTLE_LIMIT`] passed: closes finish asynchronously on the server.
/// Returns the last reading, which the verdict then judges with its tolerance; an
/// unreadable server reads as zero descriptors (its members' endings tell what happened).
async fn settle(ctx: &Ctx, pid: u32, base: FdCheck) -> FdCheck {
    let t0 = Instant::now();
    ctx.progress.phase("settle", None);
    loop {
        let mut c = fd_check(ctx, pid).unwrap_or_default();
        c.settle_s = t0.elapsed().as_secs_f64();
        ctx.progress
            .update(0, format!("{} server descriptors", c.fds));
        if excess(base, c) <= 0 || t0.elapsed() >= SETTLE_LIMIT {
            return c;
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

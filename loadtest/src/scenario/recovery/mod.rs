//! `recovery`: history with offsets and recovery, under abrupt disconnects.
//!
//! `--clients` clients, client `i` in history room `i % K` (`--rooms`, named
//! `{--room-prefix}{k}`; the server must be started with `--history-rooms` matching
//! them). A publisher sends `--rate` messages/s over the rooms for `--duration-s`, each
//! with a send stamp and a per-room sequence. Meanwhile every client ([`client`]) drops its
//! connection abruptly (TCP reset, no close frame) after a jittered `--drop-every-ms`,
//! waits `--reconnect-delay-ms`, reconnects, authenticates and joins again with
//! `since` = the last `(offset, epoch)` it saw. Its [`checker`] judges the stream offset by
//! offset: after `recovered:true` the replay and the live messages continue exactly from
//! where it was; within a connection live offsets are contiguous; `recovered:false` or an
//! epoch change is counted and resets the expectation to the `TOP` of `ws:joined`.
//!
//! Order of a run: publisher connects (warming up) → clients ramp, authenticate and join
//! (without `since`) → wait until every join is confirmed → measured window: publishing
//! and drops → drain (no more drops; until nothing arrived for 3 s, or `--drain-ms`) →
//! clients close. Bounds: ramp + joins (at most [`client::MAX_FAILURES_IN_ROW`] ×
//! `--join-timeout-ms`) + duration + drain + close; every connect, authentication and join
//! has its timeout, and the stop reaches clients wherever they are.
//!
//! Verdict: gaps, duplicates and out-of-order offsets must all be 0, and at least one
//! rejoin must have been confirmed (a server without history must not pass); each is a
//! check (`recovery-gaps`, …, `recovery-min-rejoins`) among the run's thresholds, so a
//! failure exits 1.

pub mod checker;
pub mod client;
mod results;
pub mod state;
pub mod wire;

pub use results::{RecoveryResults, RecoveryServer, Verdict};

use self::client::{MAX_FAILURES_IN_ROW, Recovery, RecoveryLive, Timing};
use self::results::{Collected, checks, collect, summarize, warnings};
use super::driver::{Driver, take};
use super::fanout::{drain_phase, start_publisher};
use super::{Ctx, Outcome, Phase, secs, wait_until, with_progress};
use crate::cli::RecoveryArgs;
use crate::error::{Error, Result};
use crate::meter::Meter;
use crate::payload::{BENCH_EVENT, PayloadShape};
use crate::proc::{ServerProbe, delta};
use crate::publisher::{Endpoint, Plan};
use crate::stats::Live;
use crate::traffic::WireWindow;
use std::sync::Arc;
use std::time::Duration;

/// Validated settings.
struct Cfg {
    rooms: Vec<String>,
    duration: Duration,
    timing: Timing,
}

impl Cfg {
    fn new(a: &RecoveryArgs) -> Result<Cfg> {
        let bad = |m: &str| Err(Error::Config(m.into()));
        if a.rooms == 0 || a.clients == 0 {
            return bad("--rooms and --clients must be at least 1");
        }
        if a.rate.is_nan() || a.rate <= 0.0 || a.duration_s.is_nan() || a.duration_s <= 0.0 {
            return bad("--rate and --duration-s must be positive");
        }
        if a.drop_every_ms == 0 || a.join_timeout_ms == 0 {
            return bad("--drop-every-ms and --join-timeout-ms must be positive");
        }
        Ok(Cfg {
            rooms: (0..a.rooms)
                .map(|k| format!("{}{k}", a.room_prefix))
                .collect(),
            duration: Duration::from_secs_f64(a.duration_s),
            timing: Timing {
                drop_every: Duration::from_millis(a.drop_every_ms),
                reconnect_delay: Duration::from_millis(a.reconnect_delay_ms),
                join_timeout: Duration::from_millis(a.join_timeout_ms),
                heartbeat: secs(a.heartbeat_s),
            },
        })
    }

    fn plan(&self, a: &RecoveryArgs) -> Plan {
        Plan {
            rooms: self.rooms.clone(),
            rate: a.rate,
            duration: self.duration,
            shape: PayloadShape::new(a.payload, BENCH_EVENT, a.frame_bytes),
        }
    }
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, args: &RecoveryArgs) -> Result<Outcome> {
    let cfg = Cfg::new(args)?;
    let endpoint = Endpoint::from_args(&args.publisher, &args.common, "recovery")?;
    let publisher = start_publisher(ctx, endpoint, cfg.plan(args)).await?;
    let counters = Arc::new(RecoveryLive::default());
    let fleet = Driver::spawn(ctx, args.clients, |phase| Recovery {
        phase,
        session: ctx.session.clone(),
        rooms: cfg.rooms.clone(),
        timing: cfg.timing,
        live: ctx.live.clone(),
        counters: counters.clone(),
    })?;
    super::wait_connected(ctx, args.clients).await;
    if Live::get(&ctx.live.established) == 0 {
        publisher.abort();
        return Err(fleet.abandon().await);
    }
    join_phase(ctx, &counters, cfg.timing.join_timeout).await;
    let probe = ctx.server.as_ref();
    let s_start = ServerProbe::sample(probe);
    let meter = Meter::start(&ctx.registry, ctx.server.map(|s| s.pid));
    let frames_at_go = Live::get(&ctx.live.frames);
    let wire_at_go = ctx.wire();
    publisher.go();
    fleet.enter(Phase::Measure);
    ctx.progress
        .phase("publish", Some(cfg.plan(args).planned()));
    let published = with_progress(ctx, publisher.finish(), || status(ctx, &counters)).await?;
    fleet.enter(Phase::Drain);
    drain_phase(ctx, u64::MAX, Duration::from_millis(args.drain_ms)).await;
    let deliveries = Live::get(&ctx.live.frames) - frames_at_go;
    let wire = WireWindow {
        start: wire_at_go,
        end: ctx.wire(),
    };
    let s_end = ServerProbe::sample(probe);
    let mut client = meter.finish(&ctx.registry);
    let published = take(published, &mut client);
    let m = fleet.stop(ctx, &mut client).await?;
    let collected = Collected {
        clients: &m,
        published,
        deliveries,
        server: delta(s_start, s_end),
    };
    let results = collect(args, collected);
    Ok(Outcome {
        wire: Some(wire),
        warnings: warnings(&results),
        checks: checks(&results),
        server_header: m.server_header.clone(),
        ..Outcome::new(&results, summarize(&results), client)
    })
}

/// Waits until every established client had its first join confirmed or gave up, at
/// most as long as a client may take to give up on joining (the warnings name clients
/// never joined).
async fn join_phase(ctx: &Ctx, c: &RecoveryLive, join_timeout: Duration) {
    let established = Live::get(&ctx.live.established);
    ctx.progress.phase("join", Some(established));
    let limit = join_timeout * MAX_FAILURES_IN_ROW + Duration::from_secs(5);
    let done = || Live::get(&c.joined) + Live::get(&c.gave_up) >= established;
    wait_until(ctx, limit, done, || {
        let (joined, gave_up) = (Live::get(&c.joined), Live::get(&c.gave_up));
        (joined, format!("joined ({gave_up} gave up)"))
    })
    .await;
}

/// The progress line while publishing.
fn status(ctx: &Ctx, c: &RecoveryLive) -> (u64, String) {
    let msg = format!(
        "{} delivered, {} drops, {} rejoins ({} recovered), {} away",
        Live::get(&ctx.live.frames),
        Live::get(&c.drops),
        Live::get(&c.rejoins),
        Live::get(&c.recovered),
        Live::get(&c.away)
    );
    (Live::get(&ctx.live.sent), msg)
}

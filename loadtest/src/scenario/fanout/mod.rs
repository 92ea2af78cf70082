//! `fanout`: N clients in M rooms (client `i` joins room `i % M`), a publisher at R
//! messages/s for T seconds through Redis envelopes or `/api/publish`.
//!
//! Order of a run: publisher connects → clients ramp, authenticate and join → warm-up
//! messages until every reader has one from its room (proof the join took effect) →
//! measured publishing → drain (until every expected message arrived, deliveries stop for
//! a second, or `--drain-ms` passes) → close.
//!
//! Readers scan each frame for the stamp, record `now − t` into their worker's histogram
//! (a thread-local, merged at the end) and track sequence numbers per connection. Expected
//! deliveries per reader = messages the publisher got acknowledged for its room.
//! `--stalled N` clients (the last N indices) join but never read; the readers' latency is
//! then the "others'" latency of the slow-reader isolation test.
//!
//! With `--node URL` (several), the clients are spread over those server nodes by
//! `--placement` ([`crate::nodes`]); the results then count clients and deliveries per
//! node, and read each node's CPU (`--node-pid`) and metrics (`--node-metric`) at the
//! measured window's edges (the private `nodes` module).

mod nodes;
mod results;

pub use nodes::{MetricEdges, NodeResult};
use nodes::{NodeProbes, node_results};
pub use results::{FanoutResults, FanoutServer};
use results::{ci_facts, collect, summarize, warnings};

use super::driver::{Driver, take};
use super::fleet::Behavior;
use super::{Ctx, End, HEARTBEAT, Outcome, Phase, heartbeat_phase, secs, wait_until};
use crate::cli::FanoutArgs;
use crate::error::{Error, Result};
use crate::meter::Meter;
use crate::payload::{self, BENCH_EVENT, PayloadShape};
use crate::proc::ServerProbe;
use crate::publisher::{Endpoint, Plan, PublishReport, Publisher};
use crate::runtime::{ThreadOutput, Ticker};
use crate::session::Established;
use crate::stats::{Live, SeqSummary, SeqTracker};
use crate::timeline::{Recorder, Timeline};
use crate::traffic::WireWindow;
use crate::ws::WsConn;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

thread_local! {
    /// End-to-end latency of every reader on this worker thread, whole run and over time.
    static RECORDER: RefCell<Recorder> = RefCell::new(Recorder::default());
    /// Latest arrival time (µs since the epoch) of a measured message on this thread.
    static LAST_ARRIVAL: Cell<u64> = const { Cell::new(0) };
}

/// Reads a stalled client may still do at the end to learn whether the server closed it.
const STALLED_PROBE_READS: usize = 64;

/// The fan-out client behavior (also driven by `client-bench`).
pub struct Fanout {
    phase: watch::Receiver<Phase>,
    rooms: u64,
    readers: u64,
    joins: Vec<Option<String>>,
    heartbeat: Option<Duration>,
    lazy: Option<Duration>,
    live: Arc<Live>,
    /// Interval of the latency timeline (`--plot` only).
    interval: Option<Duration>,
}

/// One fan-out client's outcome.
pub struct FanoutClient {
    /// Index of its room.
    pub room: usize,
    /// Whether it was a stalled client (never read).
    pub stalled: bool,
    /// Measured messages it received.
    pub seq: SeqSummary,
    /// Whether a warm-up message reached it (its join took effect).
    pub warmed: bool,
    /// Messages that were neither measured nor warm-up.
    pub other: u64,
    /// Of those, the server's `error` events.
    pub error_events: u64,
    /// How its connection ended.
    pub end: End,
}

/// What one reader saw; [`Reader::on_message`] is the per-frame hot path.
#[derive(Default)]
pub struct Reader {
    tracker: SeqTracker,
    warmed: bool,
    frames: u64,
    other: u64,
    errors: u64,
    last: u64,
}

impl Reader {
    /// Measured messages seen.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Handles one message: stamp → latency (whole run and by send time) + sequence;
    /// warm-up → first-time flag; else counted as other (and as an error event when it is
    /// one).
    #[inline]
    pub fn on_message(&mut self, m: &[u8], now: u64, rec: &mut Recorder, live: &Live) {
        if let Some(stamp) = payload::scan(m) {
            rec.record(stamp.t, now.saturating_sub(stamp.t));
            self.tracker.observe(stamp.s);
            self.frames += 1;
            self.last = now;
        } else if payload::is_warmup(m) {
            if !self.warmed {
                self.warmed = true;
                Live::add(&live.warmed, 1);
            }
        } else {
            self.other += 1;
            self.errors += u64::from(payload::is_error_event(m));
        }
    }
}

impl Behavior for Fanout {
    type Client = FanoutClient;
    type Worker = (Recorder, u64);

    async fn run(self: Arc<Self>, est: Established, i: u64) -> FanoutClient {
        let room = (i % self.rooms) as usize;
        let stalled = i >= self.readers;
        let mut conn = est.conn;
        let mut out = FanoutClient {
            room,
            stalled,
            seq: SeqSummary::default(),
            warmed: false,
            other: 0,
            error_events: 0,
            end: End::Stopped,
        };
        if let Some(join) = &self.joins[room]
            && let Err(e) = conn.send_text(join.as_bytes()).await
        {
            out.end = End::Error(e.to_string());
            return out;
        }
        if stalled {
            out.end = self.stall(conn, i).await;
        } else {
            Live::add(&self.live.ready, 1);
            self.read(conn, i, &mut out).await;
        }
        out
    }

    fn finish_worker(&self) -> (Recorder, u64) {
        (RECORDER.take(), LAST_ARRIVAL.get())
    }
}

impl Fanout {
    fn new(phase: watch::Receiver<Phase>, args: &FanoutArgs, rooms: &[String], ctx: &Ctx) -> Self {
        Fanout {
            phase,
            rooms: args.rooms,
            readers: args.clients - args.stalled,
            joins: join_messages(rooms, args.default_room),
            heartbeat: secs(args.heartbeat_s),
            lazy: (args.lazy_read_ms > 0).then(|| Duration::from_millis(args.lazy_read_ms)),
            live: ctx.live.clone(),
            interval: args
                .ci
                .plot
                .is_some()
                .then(|| Timeline::interval_for(Duration::from_secs_f64(args.duration_s))),
        }
    }

    /// Readers only, each joining room `i % rooms.len()` and sending heartbeats: the
    /// steady members of `soak`; `timeline`: the publishing lasts this long and a plot was
    /// asked for.
    pub fn members(
        phase: watch::Receiver<Phase>,
        rooms: &[String],
        heartbeat: Option<Duration>,
        live: Arc<Live>,
        timeline: Option<Duration>,
    ) -> Self {
        Fanout {
            phase,
            rooms: rooms.len() as u64,
            readers: u64::MAX,
            joins: join_messages(rooms, false),
            heartbeat,
            lazy: None,
            live,
            interval: timeline.map(Timeline::interval_for),
        }
    }

    /// Readers only, no joins, no heartbeats: for `client-bench`.
    pub fn readers_only(phase: watch::Receiver<Phase>, clients: u64, live: Arc<Live>) -> Self {
        Fanout {
            phase,
            rooms: 1,
            readers: clients,
            joins: vec![None],
            heartbeat: None,
            lazy: None,
            live,
            interval: None,
        }
    }

    async fn wait_data(&self, conn: &WsConn) -> std::io::Result<()> {
        match self.lazy {
            Some(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            None => conn.readable().await,
        }
    }

    async fn read(&self, mut conn: WsConn, i: u64, out: &mut FanoutClient) {
        let mut r = Reader::default();
        if let Some(interval) = self.interval {
            RECORDER.with_borrow_mut(|rec| rec.keep_timeline(interval));
        }
        let mut hb = Ticker::new(self.heartbeat, heartbeat_phase(self.heartbeat, i));
        let mut phase = self.phase.clone();
        let mut stop = std::pin::pin!(phase.wait_for(|p| *p >= Phase::Stop));
        let end = loop {
            tokio::select! {
                biased;
                _ = &mut stop => break End::Stopped,
                _ = hb.tick() => {
                    if let Err(e) = conn.send_text(HEARTBEAT).await { break End::Error(e.to_string()) }
                    continue;
                }
                res = self.wait_data(&conn) => if let Err(e) = res { break End::Error(e.to_string()) },
            }
            let before = r.frames;
            let drained = RECORDER.with_borrow_mut(|rec| {
                conn.drain(&mut |m, now| r.on_message(m, now, rec, &self.live))
            });
            Live::add(&self.live.frames, r.frames - before);
            let d = match drained {
                Ok(d) => d,
                Err(e) => break End::Error(e.to_string()),
            };
            Live::add(&self.live.bytes, d.bytes);
            Live::add(&self.live.reads, d.reads);
            let _ = conn.flush_control().await;
            if let Some(end) = End::from_status(d.status) {
                Live::add(&self.live.server_closed, 1);
                break end;
            }
        };
        LAST_ARRIVAL.set(LAST_ARRIVAL.get().max(r.last));
        if end == End::Stopped {
            conn.close(1000, Duration::from_secs(2)).await;
        }
        (out.seq, out.warmed, out.other, out.error_events) =
            (r.tracker.summary(), r.warmed, r.other, r.errors);
        out.end = end;
    }

    /// Never reads until the end (heartbeats keep it from being closed as idle), then
    /// looks whether the server closed it meanwhile.
    async fn stall(&self, mut conn: WsConn, i: u64) -> End {
        let mut hb = Ticker::new(self.heartbeat, heartbeat_phase(self.heartbeat, i));
        let mut phase = self.phase.clone();
        let mut stop = std::pin::pin!(phase.wait_for(|p| *p >= Phase::Stop));
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = hb.tick() => if conn.send_text(HEARTBEAT).await.is_err() { break },
            }
        }
        for _ in 0..STALLED_PROBE_READS {
            match conn.drain(&mut |_, _| {}) {
                Ok(d) if d.bytes == 0 => return End::from_status(d.status).unwrap_or(End::Stopped),
                Ok(d) => {
                    if let Some(end) = End::from_status(d.status) {
                        return end;
                    }
                }
                Err(e) => return End::Error(e.to_string()),
            }
        }
        End::Stopped
    }
}

/// The `{"event":"join",…}` message of each room (`None` everywhere for the default room).
pub(crate) fn join_messages(rooms: &[String], default_room: bool) -> Vec<Option<String>> {
    rooms
        .iter()
        .map(|r| (!default_room).then(|| room_message("join", r)))
        .collect()
}

/// `{"event":"<event>","data":{"rooms":["<room>"]}}`.
pub(crate) fn room_message(event: &str, room: &str) -> String {
    serde_json::json!({"event": event, "data": {"rooms": [room]}}).to_string()
}

fn validate(a: &FanoutArgs) -> Result<()> {
    let bad = |m: &str| Err(Error::Config(m.into()));
    if a.rooms == 0 || a.clients == 0 {
        return bad("--rooms and --clients must be at least 1");
    }
    if a.default_room && a.rooms != 1 {
        return bad("--default-room needs --rooms 1");
    }
    if a.stalled >= a.clients {
        return bad("--stalled must be smaller than --clients");
    }
    if a.rate.is_nan() || a.rate <= 0.0 || a.duration_s.is_nan() || a.duration_s <= 0.0 {
        return bad("--rate and --duration-s must be positive");
    }
    Ok(())
}

fn room_names(a: &FanoutArgs) -> Vec<String> {
    if a.default_room {
        vec!["ws-default".into()]
    } else {
        (0..a.rooms)
            .map(|k| format!("{}{k}", a.room_prefix))
            .collect()
    }
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, args: &FanoutArgs) -> Result<Outcome> {
    validate(args)?;
    let rooms = room_names(args);
    let plan = Plan {
        rooms: rooms.clone(),
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration_s),
        shape: PayloadShape::new(args.payload, BENCH_EVENT, args.frame_bytes),
    };
    let endpoint = Endpoint::from_args(&args.publisher, &args.common, "fanout")?;
    let node_probes = NodeProbes::new(&args.nodes, &ctx.session.nodes)?;
    let publisher = start_publisher(ctx, endpoint, plan).await?;
    let probe = ctx.server.as_ref();
    let s_idle = ServerProbe::sample(probe);
    let fleet = Driver::spawn(ctx, args.clients, |phase| {
        Fanout::new(phase, args, &rooms, ctx)
    })?;
    super::wait_connected(ctx, args.clients).await;
    if Live::get(&ctx.live.established) == 0 {
        publisher.abort();
        return Err(fleet.abandon().await);
    }
    let warmed_all = warmup_phase(ctx, args.warmup_timeout_s).await;
    let n_start = node_probes.sample().await;
    let s_start = ServerProbe::sample(probe);
    let servers = ctx.server.map(|s| s.pid).into_iter();
    let meter = Meter::start(
        &ctx.registry,
        servers.chain(args.nodes.pids.iter().copied()),
    );
    let (published, window) = publish_phase(ctx, &fleet, publisher, args).await?;
    let s_end = ServerProbe::sample(probe);
    let n_end = node_probes.sample().await;
    let mut client = meter.finish(&ctx.registry);
    let published = take(published, &mut client);
    let m = fleet.stop(ctx, &mut client).await?;
    let go_us = window.go_us;
    let wire = window.wire;
    let mut results = collect(args, &m, published, window, [s_idle, s_start, s_end]);
    results.nodes = node_results(
        &ctx.session.nodes,
        args.clients,
        &m,
        &node_probes,
        [&n_start, &n_end],
    );
    let summary = summarize(&results, args);
    Ok(Outcome {
        wire: Some(wire),
        warnings: warnings(&results, warmed_all),
        ci: Some(ci_facts(&m, &results, go_us)),
        server_header: m.server_header,
        ..Outcome::new(&results, summary, client)
    })
}

/// Starts the publisher and waits until it is connected (it warms up meanwhile).
pub(crate) async fn start_publisher(
    ctx: &Ctx,
    endpoint: Endpoint,
    plan: Plan,
) -> Result<Publisher> {
    let mut publisher = Publisher::start(endpoint, plan, ctx.live.clone(), &ctx.registry)?;
    publisher.ready().await?;
    Ok(publisher)
}

/// When the measured window started, and how reads went in it.
struct Window {
    /// Publish start, µs since the epoch.
    go_us: u64,
    /// Measured messages per `read(2)` from publish start to drain end.
    frames_per_read: f64,
    /// The clients' wire counters at publish start and drain end.
    wire: WireWindow,
}

/// The measured window: publishing, then the drain.
async fn publish_phase(
    ctx: &Ctx,
    fleet: &Driver<Fanout>,
    publisher: Publisher,
    args: &FanoutArgs,
) -> Result<(ThreadOutput<PublishReport>, Window)> {
    let live = &ctx.live;
    let go_us = crate::ws::conn::now_us();
    let reads_at_go = (Live::get(&live.frames), Live::get(&live.reads));
    let wire_at_go = ctx.wire();
    publisher.go();
    fleet.enter(Phase::Measure);
    let planned = (args.rate * args.duration_s).round() as u64;
    ctx.progress.phase("publish", Some(planned));
    let published = super::with_progress(ctx, publisher.finish(), || {
        let (sent, frames) = (Live::get(&live.sent), Live::get(&live.frames));
        (sent, format!("{frames} delivered"))
    })
    .await?;
    let expected_estimate = estimate_expected(&published.result, args.clients - args.stalled);
    drain_phase(ctx, expected_estimate, Duration::from_millis(args.drain_ms)).await;
    let frames_per_read = (Live::get(&live.frames) - reads_at_go.0) as f64
        / (Live::get(&live.reads) - reads_at_go.1).max(1) as f64;
    let window = Window {
        go_us,
        frames_per_read,
        wire: WireWindow {
            start: wire_at_go,
            end: ctx.wire(),
        },
    };
    Ok((published, window))
}

/// Waits until every reader got a warm-up message, at most `timeout_s`; false on timeout.
pub(crate) async fn warmup_phase(ctx: &Ctx, timeout_s: f64) -> bool {
    let live = &ctx.live;
    let readers = Live::get(&live.ready);
    ctx.progress.phase("warm-up", Some(readers));
    let limit = Duration::from_secs_f64(timeout_s.max(0.0));
    wait_until(
        ctx,
        limit,
        || Live::get(&live.warmed) >= Live::get(&live.ready),
        || {
            (
                Live::get(&live.warmed),
                format!(
                    "of {} readers got a warm-up message",
                    Live::get(&live.ready)
                ),
            )
        },
    )
    .await
}

/// Deliveries to expect if every reader is in its room (failed clients make it an
/// overestimate; the drain then ends when deliveries stop).
/// Readers are clients `0..readers`, reader `i` in room `i % rooms`.
pub(crate) fn estimate_expected(p: &PublishReport, readers: u64) -> u64 {
    let rooms = p.per_room.len().max(1) as u64;
    (0..readers)
        .map(|i| p.per_room.get((i % rooms) as usize).copied().unwrap_or(0))
        .sum()
}

/// Waits for in-flight deliveries: until `expected` arrived, none arrived for `DRAIN_QUIET`,
/// or `limit` passed.
pub(crate) async fn drain_phase(ctx: &Ctx, expected: u64, limit: Duration) {
    ctx.progress.phase("drain", Some(expected));
    let live = &ctx.live;
    let quiet = super::DRAIN_QUIET.min(limit);
    let mut last = (Live::get(&live.frames), Instant::now());
    let done = || {
        let now = Live::get(&live.frames);
        if now != last.0 {
            last = (now, Instant::now());
        }
        now >= expected || last.1.elapsed() >= quiet
    };
    wait_until(ctx, limit, done, || {
        (Live::get(&live.frames), String::new())
    })
    .await;
}

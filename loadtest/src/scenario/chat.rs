//! `chat`: clients send custom events (`--event`, default `chat`) at `--rate` messages/s
//! in total, each client at `rate / clients` with staggered start times, for
//! `--duration-s`. Achieved send rate and server CPU are always measured; with `--redis`
//! an observer subscribed to the server's inbound channel (`ws:inbound`) also measures
//! forwarding latency (client send → Redis subscriber) and loss.

use super::driver::{Driver, take};
use super::fleet::{Behavior, Merged};
use super::{
    Ctx, End, Endings, HEARTBEAT, Outcome, Phase, count_endings, fmt_bytes, fmt_endings,
    heartbeat_phase, secs, wait_until,
};
use crate::cli::ChatArgs;
use crate::error::{Error, Result};
use crate::meter::{ClientUsage, Meter};
use crate::payload::PayloadShape;
use crate::proc::{ServerDelta, ServerProbe, delta};
use crate::publisher::RedisEndpoint;
use crate::publisher::inbound::{Inbound, InboundReport};
use crate::report::Summary;
use crate::runtime::Ticker;
use crate::session::Established;
use crate::stats::{Failures, LatencySummary, Live};
use crate::ws::conn::now_us;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

struct Chatter {
    phase: watch::Receiver<Phase>,
    interval: Duration,
    clients: u64,
    event: String,
    shape: PayloadShape,
    heartbeat: Option<Duration>,
    live: Arc<Live>,
}

struct ChatClient {
    sent: u64,
    errors_received: u64,
    end: End,
}

impl Chatter {
    fn new(phase: watch::Receiver<Phase>, args: &ChatArgs, ctx: &Ctx) -> Self {
        Chatter {
            phase,
            interval: Duration::from_secs_f64(args.clients as f64 / args.rate),
            clients: args.clients,
            event: args.event.clone(),
            shape: PayloadShape::new(
                args.payload,
                &args.event,
                args.frame_bytes.saturating_sub(4),
            ),
            heartbeat: secs(args.heartbeat_s),
            live: ctx.live.clone(),
        }
    }

    fn message(&self, seq: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(br#"{"event":"#);
        out.extend_from_slice(
            serde_json::Value::from(self.event.as_str())
                .to_string()
                .as_bytes(),
        );
        out.extend_from_slice(br#","data":"#);
        self.shape.write_data(now_us(), seq, out);
        out.push(b'}');
    }
}

impl Behavior for Chatter {
    type Client = ChatClient;
    type Worker = ();

    async fn run(self: Arc<Self>, est: Established, i: u64) -> ChatClient {
        let mut conn = est.conn;
        let mut out = ChatClient {
            sent: 0,
            errors_received: 0,
            end: End::Stopped,
        };
        let stagger = self
            .interval
            .mul_f64((i % self.clients) as f64 / self.clients as f64);
        let mut send = Ticker::new(Some(self.interval), stagger);
        let mut hb = Ticker::new(self.heartbeat, heartbeat_phase(self.heartbeat, i));
        let now_phase = self.phase.clone();
        let mut phase = self.phase.clone();
        let mut stop = std::pin::pin!(phase.wait_for(|p| *p >= Phase::Stop));
        let mut msg = Vec::with_capacity(256);
        let error_key = memchr::memmem::Finder::new(br#""event":"error""#);
        out.end = loop {
            tokio::select! {
                biased;
                _ = &mut stop => break End::Stopped,
                _ = send.tick() => {
                    if *now_phase.borrow() != Phase::Measure { continue }
                    self.message(out.sent, &mut msg);
                    if let Err(e) = conn.send_text(&msg).await { break End::Error(e.to_string()) }
                    out.sent += 1;
                    Live::add(&self.live.sent, 1);
                    continue;
                }
                _ = hb.tick() => {
                    if let Err(e) = conn.send_text(HEARTBEAT).await { break End::Error(e.to_string()) }
                    continue;
                }
                r = conn.readable() => if let Err(e) = r { break End::Error(e.to_string()) },
            }
            let d = match conn
                .drain(&mut |m, _| out.errors_received += u64::from(error_key.find(m).is_some()))
            {
                Ok(d) => d,
                Err(e) => break End::Error(e.to_string()),
            };
            let _ = conn.flush_control().await;
            if let Some(end) = End::from_status(d.status) {
                Live::add(&self.live.server_closed, 1);
                break end;
            }
        };
        if out.end == End::Stopped {
            conn.close(1000, Duration::from_secs(2)).await;
        }
        out
    }

    fn finish_worker(&self) {}
}

/// Forwarding figures (with `--redis`).
#[derive(Debug, Serialize)]
pub struct Forwarding {
    /// What the observer saw.
    pub observed: InboundReport,
    /// sent − stamped messages observed (never negative).
    pub lost: u64,
}

/// Server figures of a `chat` run (measured window: first send → drain end).
#[derive(Debug, Serialize)]
pub struct ChatServer {
    /// CPU and RSS over the window.
    pub measured: ServerDelta,
    /// Server CPU seconds per million client messages.
    pub cpu_s_per_million_messages: f64,
}

/// Results of a `chat` run.
#[derive(Debug, Serialize)]
pub struct ChatResults {
    /// Clients requested.
    pub clients: u64,
    /// Authenticated.
    pub established: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Failures by kind.
    pub failures: Failures,
    /// authenticate → connected.
    pub auth_latency: LatencySummary,
    /// Messages sent.
    pub sent: u64,
    /// Target rate.
    pub target_rate: f64,
    /// sent / duration.
    pub achieved_rate: f64,
    /// `error` events the server sent back.
    pub errors_received: u64,
    /// How connections ended.
    pub endings: Endings,
    /// Forwarding through Redis (with --redis).
    pub forwarding: Option<Forwarding>,
    /// Server figures (with --server-pid).
    pub server: Option<ChatServer>,
}

fn validate(a: &ChatArgs) -> Result<()> {
    if a.clients == 0
        || a.rate.is_nan()
        || a.rate <= 0.0
        || a.duration_s.is_nan()
        || a.duration_s <= 0.0
    {
        return Err(Error::Config(
            "chat needs --clients, --rate and --duration-s above 0".into(),
        ));
    }
    Ok(())
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, args: &ChatArgs) -> Result<Outcome> {
    validate(args)?;
    let observer = start_observer(ctx, args).await?;
    let fleet = Driver::spawn(ctx, args.clients, |phase| Chatter::new(phase, args, ctx))?;
    super::wait_connected(ctx, args.clients).await;
    let probe = ctx.server.as_ref();
    let s_start = ServerProbe::sample(probe);
    let meter = Meter::start(&ctx.registry, ctx.server.map(|s| s.pid));
    let send_s = send(ctx, &fleet, args.duration_s).await;
    if observer.is_some() {
        drain(ctx, Duration::from_millis(args.drain_ms)).await;
    }
    let s_end = ServerProbe::sample(probe);
    let mut client = meter.finish(&ctx.registry);
    let m = fleet.stop(ctx, &mut client).await?;
    let observed = finish_observer(observer, &mut client).await?;
    let m = m.require_clients()?;
    let results = tally(args, &m, send_s, observed, delta(s_start, s_end));
    let summary = summarize(&results);
    Ok(Outcome {
        server_header: m.server_header,
        ..Outcome::new(&results, summary, client)
    })
}

/// With `--redis`: the observer, subscribed before any client connects.
async fn start_observer(ctx: &Ctx, args: &ChatArgs) -> Result<Option<Inbound>> {
    let Some(url) = &args.redis else {
        return Ok(None);
    };
    let ep = RedisEndpoint::from_url(url, args.common.allow_non_loopback)?;
    let channel = args.inbound_channel.clone();
    let mut o = Inbound::start(ep, channel, ctx.live.clone(), &ctx.registry)?;
    o.ready().await?;
    Ok(Some(o))
}

/// Stops the observer, if any, and returns what it saw.
async fn finish_observer(
    observer: Option<Inbound>,
    client: &mut ClientUsage,
) -> Result<Option<InboundReport>> {
    match observer {
        Some(o) => Ok(Some(take(o.finish().await?, client))),
        None => Ok(None),
    }
}

/// The measured window: clients send for `duration_s`, then stop sending; returns how
/// long they sent, seconds.
async fn send(ctx: &Ctx, fleet: &Driver<Chatter>, duration_s: f64) -> f64 {
    fleet.enter(Phase::Measure);
    let live = &ctx.live;
    ctx.progress.phase("send", None);
    let t0 = Instant::now();
    let status = || {
        let (sent, forwarded) = (Live::get(&live.sent), Live::get(&live.frames));
        (0, format!("{sent} sent, {forwarded} forwarded"))
    };
    wait_until(ctx, Duration::from_secs_f64(duration_s), || false, status).await;
    fleet.enter(Phase::Drain);
    t0.elapsed().as_secs_f64()
}

fn tally(
    args: &ChatArgs,
    m: &Merged<Chatter>,
    send_s: f64,
    observed: Option<InboundReport>,
    measured: Option<ServerDelta>,
) -> ChatResults {
    let sent: u64 = m.clients.iter().map(|(_, c)| c.sent).sum();
    ChatResults {
        clients: args.clients,
        established: m.clients.len() as u64,
        failed: m.failures.total(),
        failures: m.failures.clone(),
        auth_latency: m.auth.summary(),
        sent,
        target_rate: args.rate,
        achieved_rate: sent as f64 / send_s.max(1e-9),
        errors_received: m.clients.iter().map(|(_, c)| c.errors_received).sum(),
        endings: count_endings(m.clients.iter().map(|(_, c)| &c.end)),
        forwarding: observed.map(|o| Forwarding {
            lost: sent.saturating_sub(o.stamped),
            observed: o,
        }),
        server: measured.map(|d| ChatServer {
            cpu_s_per_million_messages: if sent > 0 {
                d.cpu_s / sent as f64 * 1e6
            } else {
                0.0
            },
            measured: d,
        }),
    }
}

/// Waits until the observer saw every sent message, saw none for `DRAIN_QUIET`, or `limit`.
async fn drain(ctx: &Ctx, limit: Duration) {
    let live = &ctx.live;
    ctx.progress.phase("drain", Some(Live::get(&live.sent)));
    let quiet = super::DRAIN_QUIET.min(limit);
    let mut last = (Live::get(&live.frames), Instant::now());
    let done = || {
        let now = Live::get(&live.frames);
        if now != last.0 {
            last = (now, Instant::now());
        }
        now >= Live::get(&live.sent) || last.1.elapsed() >= quiet
    };
    wait_until(ctx, limit, done, || {
        (Live::get(&live.frames), String::new())
    })
    .await;
}

fn summarize(r: &ChatResults) -> Summary {
    let mut s = Summary::default();
    s.section("clients")
        .line(
            "established",
            format!("{} of {} ({} failed)", r.established, r.clients, r.failed),
        )
        .line("auth", r.auth_latency.line())
        .line(
            "sent",
            format!(
                "{} ({:.0}/s; target {:.0}/s)",
                r.sent, r.achieved_rate, r.target_rate
            ),
        )
        .line("errors received", r.errors_received)
        .line("endings", fmt_endings(&r.endings));
    if let Some(f) = &r.forwarding {
        s.section("forwarded to Redis")
            .line(
                "observed",
                format!("{} ({} stamped)", f.observed.received, f.observed.stamped),
            )
            .line("lost", f.lost)
            .line("latency", f.observed.latency.line());
    }
    if let Some(v) = &r.server {
        let m = &v.measured;
        s.section("server")
            .line(
                "CPU",
                format!(
                    "{:.2} s over {:.2} s ({:.0}% of a core)",
                    m.cpu_s,
                    m.wall_s,
                    m.cores * 100.0
                ),
            )
            .line(
                "CPU per 1M messages",
                format!("{:.3} s", v.cpu_s_per_million_messages),
            )
            .line(
                "RSS",
                format!(
                    "{} → {}",
                    fmt_bytes(m.rss_before_bytes as f64),
                    fmt_bytes(m.rss_after_bytes as f64)
                ),
            );
    }
    s
}

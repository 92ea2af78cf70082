//! Turning what the fan-out readers and the publisher saw into results, warnings and
//! summary lines.

use super::nodes::{self, NodeResult};
use super::{Fanout, FanoutClient, Window};
use crate::ci::CiFacts;
use crate::cli::FanoutArgs;
use crate::proc::{ServerDelta, Stamped, delta};
use crate::publisher::PublishReport;
use crate::report::Summary;
use crate::scenario::fleet::Merged;
use crate::scenario::{Endings, count_endings, fmt_bytes, fmt_endings};
use crate::stats::{Failures, Latency, LatencySummary, SeqSummary};
use crate::timeline::{self, Recorder};
use serde::Serialize;

/// Server-side figures of a `fanout` run (measured window: publish start → drain end).
#[derive(Debug, Serialize)]
pub struct FanoutServer {
    /// CPU and RSS over the measured window.
    pub measured: ServerDelta,
    /// Server CPU seconds per million deliveries.
    pub cpu_s_per_million_deliveries: f64,
    /// RSS before any client connected.
    pub rss_idle_bytes: u64,
    /// (RSS after warm-up − idle) / established.
    pub rss_per_conn_bytes: f64,
}

/// Results of a `fanout` run.
#[derive(Debug, Serialize)]
pub struct FanoutResults {
    /// Clients requested.
    pub clients: u64,
    /// Of those, stalled (never read).
    pub stalled: u64,
    /// Rooms.
    pub rooms: u64,
    /// Authenticated clients.
    pub established: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Failures by kind.
    pub failures: Failures,
    /// TCP connect + upgrade.
    pub connect_latency: LatencySummary,
    /// authenticate → connected.
    pub auth_latency: LatencySummary,
    /// Readers that never got a warm-up message (their room membership is unproven).
    pub not_warmed: u64,
    /// Publisher outcome.
    pub publisher: PublishReport,
    /// Deliveries expected by established readers.
    pub expected: u64,
    /// Distinct measured messages received.
    pub received: u64,
    /// expected − received (never negative).
    pub lost: u64,
    /// lost / expected.
    pub loss_ratio: f64,
    /// Repeated deliveries to the same reader.
    pub duplicates: u64,
    /// Deliveries that arrived after a later one.
    pub reordered: u64,
    /// Other messages readers got (neither measured nor warm-up).
    pub other_messages: u64,
    /// received / (last arrival − publish start).
    pub deliveries_per_s: f64,
    /// Measured messages per `read(2)` in the window (1 = one system call per delivery).
    pub frames_per_read: f64,
    /// Publish → receive latency of the readers (the stalled clients' neighbours).
    pub latency: LatencySummary,
    /// How reader connections ended.
    pub reader_endings: Endings,
    /// How stalled connections ended (`server_close_*` = the server cut the slow reader).
    pub stalled_endings: Endings,
    /// Server figures (with --server-pid).
    pub server: Option<FanoutServer>,
    /// Per node: clients placed and held, deliveries, and (with --node-pid,
    /// --node-metric) CPU and metrics over the measured window. One entry without --node.
    pub nodes: Vec<NodeResult>,
}

/// The results of a run: the clients' and the publisher's tallies, the workers' merged
/// latency, and the server figures from the idle, publish-start and drain-end samples.
pub(super) fn collect(
    args: &FanoutArgs,
    m: &Merged<Fanout>,
    published: PublishReport,
    w: Window,
    samples: [Option<Stamped>; 3],
) -> FanoutResults {
    let mut r = tally(args, m.clients.iter().map(|(_, c)| c), published);
    r.established = m.clients.len() as u64;
    r.failed = m.failures.total();
    r.connect_latency = m.connect.summary();
    r.auth_latency = m.auth.summary();
    r.failures = m.failures.clone();
    let (latency, last_arrival) = merge_latency(&m.workers);
    r.latency = latency.summary();
    r.frames_per_read = w.frames_per_read;
    r.deliveries_per_s =
        r.received as f64 / (last_arrival.saturating_sub(w.go_us).max(1) as f64 / 1e6);
    let [idle, start, end] = samples;
    r.server = server_figures(idle, start, end, &r);
    r
}

/// The workers' latency histograms merged, and the latest arrival on any of them.
fn merge_latency(workers: &[(Recorder, u64)]) -> (Latency, u64) {
    let mut latency = Latency::new();
    let mut last_arrival = 0;
    for (r, last) in workers {
        latency.merge(&r.latency);
        last_arrival = last_arrival.max(*last);
    }
    (latency, last_arrival)
}

/// What the plot, the exports and the thresholds take: the readers' latency (time 0 =
/// publish start), expected and lost deliveries, failed clients.
pub(super) fn ci_facts(m: &Merged<Fanout>, r: &FanoutResults, go_us: u64) -> CiFacts {
    CiFacts {
        latency: merge_latency(&m.workers).0,
        timeline: timeline::merge(
            m.workers
                .iter()
                .filter_map(|(rec, _)| rec.timeline.as_ref()),
        ),
        origin_us: go_us,
        expected: r.expected,
        lost: r.lost,
        failed: r.failed,
    }
}

/// Warnings: readers never warmed (joins refused?), publisher errors, nodes whose
/// metrics could not be read.
pub(super) fn warnings(r: &FanoutResults, warmed_all: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if !warmed_all {
        warnings.push(format!("{} readers never received a warm-up message: joins may have been refused (room policy?)", r.not_warmed));
    }
    if r.publisher.errors > 0 {
        warnings.push(format!(
            "publisher errors: {} ({:?})",
            r.publisher.errors, r.publisher.first_error
        ));
    }
    warnings.extend(nodes::warnings(&r.nodes));
    warnings
}

fn tally<'a>(
    args: &FanoutArgs,
    clients: impl Iterator<Item = &'a FanoutClient>,
    publisher: PublishReport,
) -> FanoutResults {
    let mut seq = SeqSummary::default();
    let (mut expected, mut lost, mut not_warmed, mut other) = (0, 0, 0, 0);
    let (mut reader_ends, mut stalled_ends) = (Vec::new(), Vec::new());
    for c in clients {
        if c.stalled {
            stalled_ends.push(c.end.clone());
            continue;
        }
        let e = publisher.per_room.get(c.room).copied().unwrap_or(0);
        expected += e;
        lost += e.saturating_sub(c.seq.unique);
        seq.add(&c.seq);
        not_warmed += u64::from(!c.warmed);
        other += c.other;
        reader_ends.push(c.end.clone());
    }
    FanoutResults {
        clients: args.clients,
        stalled: args.stalled,
        rooms: args.rooms,
        established: 0,
        failed: 0,
        failures: Failures::default(),
        connect_latency: LatencySummary::default(),
        auth_latency: LatencySummary::default(),
        not_warmed,
        publisher,
        expected,
        received: seq.unique,
        lost,
        loss_ratio: if expected > 0 {
            lost as f64 / expected as f64
        } else {
            0.0
        },
        duplicates: seq.duplicates,
        reordered: seq.reordered,
        other_messages: other,
        deliveries_per_s: 0.0,
        frames_per_read: 0.0,
        latency: LatencySummary::default(),
        reader_endings: count_endings(reader_ends.iter()),
        stalled_endings: count_endings(stalled_ends.iter()),
        server: None,
        nodes: Vec::new(),
    }
}

fn server_figures(
    idle: Option<Stamped>,
    start: Option<Stamped>,
    end: Option<Stamped>,
    r: &FanoutResults,
) -> Option<FanoutServer> {
    let measured = delta(start, end)?;
    let idle_rss = idle?.sample.rss_bytes;
    Some(FanoutServer {
        cpu_s_per_million_deliveries: if r.received > 0 {
            measured.cpu_s / r.received as f64 * 1e6
        } else {
            0.0
        },
        rss_idle_bytes: idle_rss,
        rss_per_conn_bytes: (measured.rss_before_bytes as f64 - idle_rss as f64)
            / r.established.max(1) as f64,
        measured,
    })
}

pub(super) fn summarize(r: &FanoutResults, a: &FanoutArgs) -> Summary {
    let mut s = Summary::default();
    let p = &r.publisher;
    s.section("setup")
        .line(
            "clients",
            format!(
                "{} ({} readers, {} stalled) in {} room(s)",
                r.clients,
                r.clients - r.stalled,
                r.stalled,
                r.rooms
            ),
        )
        .line(
            "established",
            format!(
                "{} ({} failed{})",
                r.established,
                r.failed,
                sample_text(&r.failures)
            ),
        )
        .line("connect", r.connect_latency.line())
        .line("auth", r.auth_latency.line())
        .line(
            "warm-up",
            format!(
                "{} rounds, {} readers not warmed",
                p.warmup_rounds, r.not_warmed
            ),
        );
    s.section("publisher")
        .line("via", p.via)
        .line(
            "sent",
            format!(
                "{} of {} in {:.2} s ({:.0}/s; target {:.0}/s)",
                p.sent, p.planned, p.elapsed_s, p.achieved_rate, a.rate
            ),
        )
        .line("acknowledged", format!("{} ({} errors)", p.acked, p.errors))
        .line("ack rtt", p.ack_rtt.line());
    s.section("deliveries")
        .line(
            "received",
            format!("{} of {} expected", r.received, r.expected),
        )
        .line("lost", format!("{} ({:.4}%)", r.lost, r.loss_ratio * 100.0))
        .line(
            "duplicates",
            format!("{} (reordered {})", r.duplicates, r.reordered),
        )
        .line(
            "throughput",
            format!(
                "{:.0} deliveries/s ({:.1} per read)",
                r.deliveries_per_s, r.frames_per_read
            ),
        )
        .line(
            if r.stalled > 0 {
                "latency (readers)"
            } else {
                "latency"
            },
            r.latency.line(),
        )
        .line("reader endings", fmt_endings(&r.reader_endings));
    if r.stalled > 0 {
        s.line("stalled endings", fmt_endings(&r.stalled_endings));
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
                "CPU per 1M deliveries",
                format!("{:.3} s", v.cpu_s_per_million_deliveries),
            )
            .line(
                "RSS",
                format!(
                    "{} idle, {} connected, {} at end",
                    fmt_bytes(v.rss_idle_bytes as f64),
                    fmt_bytes(m.rss_before_bytes as f64),
                    fmt_bytes(m.rss_after_bytes as f64)
                ),
            )
            .line("RSS per connection", fmt_bytes(v.rss_per_conn_bytes));
    }
    nodes::summarize(&mut s, &r.nodes);
    s
}

fn sample_text(f: &Failures) -> String {
    if f.samples.is_empty() {
        String::new()
    } else {
        format!(": {}", f.samples.join("; "))
    }
}

//! Turning what the members, the churn population, the publisher and the sampler saw
//! into results (with the verdict), warnings and summary lines.

use super::churn::{ChurnPlan, ChurnTally};
use super::series::Point;
use super::verdict::{self, Accounting, ErrorVerdict, FdCheck, Verdict, Window};
use crate::ci::CiFacts;
use crate::cli::SoakArgs;
use crate::publisher::PublishReport;
use crate::report::Summary;
use crate::scenario::fanout::{Fanout, FanoutClient};
use crate::scenario::fleet::Merged;
use crate::scenario::{Endings, count_endings, fmt_bytes, fmt_endings};
use crate::stats::{Failures, Latency, LatencySummary};
use crate::timeline;
use serde::Serialize;

/// The steady members.
#[derive(Debug, Serialize)]
pub struct Members {
    /// Members asked for.
    pub clients: u64,
    /// Authenticated.
    pub established: u64,
    /// Failed to connect or authenticate.
    pub failed: u64,
    /// Failures by kind.
    pub failures: Failures,
    /// TCP connect + upgrade.
    pub connect_latency: LatencySummary,
    /// authenticate → connected.
    pub auth_latency: LatencySummary,
    /// Members no warm-up message reached (join unproven).
    pub not_warmed: u64,
    /// Publish → receive latency over the whole soak.
    pub latency: LatencySummary,
    /// Messages neither measured nor warm-up.
    pub other_messages: u64,
    /// Of those, the server's `error` events.
    pub error_events: u64,
    /// How member connections ended (`stopped` = closed by us at the end).
    pub endings: Endings,
}

/// The churn population.
#[derive(Debug, Serialize)]
pub struct Churn {
    /// Cycles planned (rate × duration).
    pub planned: u64,
    /// Cycles started.
    pub attempted: u64,
    /// Cycles that authenticated.
    pub succeeded: u64,
    /// Cycles that failed to connect or authenticate.
    pub failed: u64,
    /// Failures by kind.
    pub failures: Failures,
    /// attempted / --duration-s (cycles start only within it).
    pub achieved_rate: f64,
    /// TCP connect + upgrade.
    pub connect_latency: LatencySummary,
    /// authenticate → connected.
    pub auth_latency: LatencySummary,
    /// connect → closed.
    pub cycle_latency: LatencySummary,
    /// Closes answered with a close frame and a TCP close.
    pub closes_clean: u64,
    /// Closes without the server's close frame.
    pub closes_without_frame: u64,
    /// Closes that timed out.
    pub closes_timed_out: u64,
    /// Connections that ended before our close, by kind.
    pub unexpected_ends: Endings,
    /// The first of those.
    pub first_unexpected: Option<String>,
    /// Measured messages churn clients received while in their room.
    pub deliveries: u64,
    /// The server's `error` events churn clients received.
    pub error_events: u64,
}

/// Results of a `soak` run.
#[derive(Debug, Serialize)]
pub struct SoakResults {
    /// Rooms.
    pub rooms: u64,
    /// Publish rate asked, messages/s.
    pub rate: f64,
    /// Churn rate asked, cycles/s.
    pub churn_rate: f64,
    /// Seconds of soak asked.
    pub duration_s: f64,
    /// Sampling period, s.
    pub sample_s: f64,
    /// When the soak ran, on the series' clock.
    pub window: Window,
    /// Steady members.
    pub members: Members,
    /// Churn population.
    pub churn: Churn,
    /// Publisher outcome.
    pub publisher: PublishReport,
    /// The verdict.
    pub verdict: Verdict,
    /// Server samples over the whole run.
    pub series: Vec<Point>,
}

/// Descriptor readings of a run, in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct FdChecks {
    /// Before any member connected.
    pub idle: FdCheck,
    /// Members warmed up, soak not started.
    pub steady_start: FdCheck,
    /// Soak over, deliveries drained.
    pub steady_end: FdCheck,
    /// Every client closed.
    pub after_close: FdCheck,
}

/// Everything a run collected, for [`collect`].
pub struct Collected<'a> {
    /// The members' merged results.
    pub members: &'a Merged<Fanout>,
    /// The churn tally.
    pub churn: ChurnTally,
    /// What the churn was asked to do.
    pub churn_plan: &'a ChurnPlan,
    /// The publisher's report.
    pub published: PublishReport,
    /// Descriptor readings.
    pub fds: FdChecks,
    /// Server samples.
    pub series: Vec<Point>,
    /// When the soak ran.
    pub window: Window,
}

/// Builds the results and judges them.
pub fn collect(args: &SoakArgs, rss_warmup_s: f64, c: Collected<'_>) -> SoakResults {
    let members = members(args, c.members);
    let churn = churn(c.churn, c.churn_plan);
    let errors = errors(&members, &churn, &c.published);
    let accounting = account(c.members, &c.published);
    let rss = verdict::rss_verdict(
        &c.series,
        c.window,
        rss_warmup_s,
        args.rss_tolerance_mib_per_min * 1024.0 * 1024.0,
        args.churn_rate,
    );
    let f = c.fds;
    let fds = verdict::fd_verdict(
        f.idle,
        f.steady_start,
        f.steady_end,
        f.after_close,
        args.fd_tolerance,
    );
    SoakResults {
        rooms: args.rooms,
        rate: args.rate,
        churn_rate: args.churn_rate,
        duration_s: args.duration_s,
        sample_s: args.sample_s,
        window: c.window,
        members,
        churn,
        publisher: c.published,
        verdict: Verdict::new(rss, fds, errors, accounting),
        series: c.series,
    }
}

fn members(args: &SoakArgs, m: &Merged<Fanout>) -> Members {
    let clients = || m.clients.iter().map(|(_, c)| c);
    let mut latency = Latency::new();
    m.workers
        .iter()
        .for_each(|(r, _)| latency.merge(&r.latency));
    Members {
        clients: args.clients,
        established: m.clients.len() as u64,
        failed: m.failures.total(),
        failures: m.failures.clone(),
        connect_latency: m.connect.summary(),
        auth_latency: m.auth.summary(),
        not_warmed: clients().filter(|c| !c.warmed).count() as u64,
        latency: latency.summary(),
        other_messages: clients().map(|c| c.other).sum(),
        error_events: clients().map(|c| c.error_events).sum(),
        endings: count_endings(clients().map(|c| &c.end)),
    }
}

fn churn(t: ChurnTally, plan: &ChurnPlan) -> Churn {
    Churn {
        planned: plan.planned(),
        attempted: t.attempted,
        succeeded: t.succeeded,
        failed: t.failures.total(),
        failures: t.failures,
        achieved_rate: t.attempted as f64 / plan.duration.as_secs_f64().max(1e-9),
        connect_latency: t.connect.summary(),
        auth_latency: t.auth.summary(),
        cycle_latency: t.cycle.summary(),
        closes_clean: t.closes_clean,
        closes_without_frame: t.closes_without_frame,
        closes_timed_out: t.closes_timed_out,
        unexpected_ends: t.unexpected_ends,
        first_unexpected: t.first_unexpected,
        deliveries: t.deliveries,
        error_events: t.error_events,
    }
}

/// Every error kind the verdict counts.
fn errors(m: &Members, c: &Churn, p: &PublishReport) -> ErrorVerdict {
    let ended_early: u64 = m
        .endings
        .iter()
        .filter(|(k, _)| k.as_str() != "stopped")
        .map(|(_, v)| v)
        .sum();
    verdict::error_verdict([
        ("members_failed", m.failed),
        ("members_not_warmed", m.not_warmed),
        ("members_ended_early", ended_early),
        ("members_error_events", m.error_events),
        ("churn_failed", c.failed),
        ("churn_ended_early", c.unexpected_ends.values().sum()),
        (
            "churn_unclean_closes",
            c.closes_without_frame + c.closes_timed_out,
        ),
        ("churn_error_events", c.error_events),
        ("publisher_errors", p.errors),
    ])
}

/// Each member against the acknowledged messages of its room.
fn account(m: &Merged<Fanout>, p: &PublishReport) -> Accounting {
    let expected = |c: &FanoutClient| p.per_room.get(c.room).copied().unwrap_or(0);
    verdict::accounting(
        m.clients.iter().map(|(_, c)| (expected(c), c.seq)),
        p.sent,
        p.acked,
    )
}

/// What the plot, the exports and the thresholds take: the members' latency (time 0 =
/// the first interval a message was sent in), the accounting, every failed client.
pub fn ci_facts(m: &Merged<Fanout>, r: &SoakResults) -> CiFacts {
    let mut latency = Latency::new();
    m.workers
        .iter()
        .for_each(|(rec, _)| latency.merge(&rec.latency));
    let timeline = timeline::merge(
        m.workers
            .iter()
            .filter_map(|(rec, _)| rec.timeline.as_ref()),
    );
    let a = &r.verdict.accounting;
    CiFacts {
        latency,
        origin_us: timeline.first().map_or(0, |p| p.start_us),
        timeline,
        expected: a.expected,
        lost: a.lost,
        failed: r.members.failed + r.churn.failed,
    }
}

/// Warnings: the verdict's failures, a churn that fell behind, joins never proven.
pub fn warnings(r: &SoakResults, warmed_all: bool) -> Vec<String> {
    let mut w: Vec<String> = r
        .verdict
        .failed
        .iter()
        .map(|f| format!("SOAK FAILED: {f}"))
        .collect();
    if r.churn.attempted < r.churn.planned * 95 / 100 {
        w.push(format!(
            "churn fell behind: {} of {} cycles started (--max-inflight or the server limited it)",
            r.churn.attempted, r.churn.planned
        ));
    }
    if !warmed_all {
        w.push(format!(
            "{} members never received a warm-up message: joins may have been refused (room policy?)",
            r.members.not_warmed
        ));
    }
    w
}

/// The human summary.
pub fn summarize(r: &SoakResults) -> Summary {
    let mut s = Summary::default();
    members_section(&mut s, r);
    churn_section(&mut s, &r.churn, r);
    deliveries_section(&mut s, r);
    server_section(&mut s, r);
    verdict_section(&mut s, &r.verdict);
    s
}

fn members_section(s: &mut Summary, r: &SoakResults) {
    let m = &r.members;
    s.section("members")
        .line(
            "established",
            format!(
                "{} of {} in {} room(s) ({} failed{})",
                m.established,
                m.clients,
                r.rooms,
                m.failed,
                samples(&m.failures)
            ),
        )
        .line("connect", m.connect_latency.line())
        .line("auth", m.auth_latency.line())
        .line("endings", fmt_endings(&m.endings));
}

fn churn_section(s: &mut Summary, c: &Churn, r: &SoakResults) {
    s.section("churn")
        .line(
            "cycles",
            format!(
                "{} of {} started ({:.1}/s; asked {:.1}/s), {} authenticated, {} failed{}",
                c.attempted,
                c.planned,
                c.achieved_rate,
                r.churn_rate,
                c.succeeded,
                c.failed,
                samples(&c.failures)
            ),
        )
        .line("cycle", c.cycle_latency.line())
        .line(
            "closes",
            format!(
                "{} clean, {} without close frame, {} timed out; ended early: {}",
                c.closes_clean,
                c.closes_without_frame,
                c.closes_timed_out,
                fmt_endings(&c.unexpected_ends)
            ),
        )
        .line("in-room deliveries", c.deliveries);
}

fn deliveries_section(s: &mut Summary, r: &SoakResults) {
    let (p, a) = (&r.publisher, &r.verdict.accounting);
    s.section("deliveries")
        .line(
            "published",
            format!(
                "{} of {} via {} ({:.0}/s), {} acknowledged, {} errors",
                p.sent, p.planned, p.via, p.achieved_rate, p.acked, p.errors
            ),
        )
        .line(
            "members",
            format!(
                "{} of {} expected; {} lost, {} duplicates, {} unexpected, {} reordered",
                a.received, a.expected, a.lost, a.duplicates, a.unexpected, a.reordered
            ),
        )
        .line("latency", r.members.latency.line());
}

fn server_section(s: &mut Summary, r: &SoakResults) {
    let (v, f) = (&r.verdict.rss, &r.verdict.fds);
    let rss_at = |t: f64| {
        r.series
            .iter()
            .find(|p| p.t_s >= t)
            .map(|p| fmt_bytes(p.rss_bytes as f64))
            .unwrap_or_else(|| "?".into())
    };
    s.section("server")
        .line(
            "series",
            format!("{} samples every {} s", r.series.len(), r.sample_s),
        )
        .line(
            "RSS",
            format!(
                "{} idle, {} at soak start, {} after warm-up, {} at soak end",
                rss_at(0.0),
                rss_at(r.window.start_s),
                rss_at(r.window.start_s + v.warmup_s),
                rss_at(r.window.end_s)
            ),
        )
        .line(
            "descriptors",
            format!(
                "{} idle, {} at soak start ({:.2} per member), {} at soak end, {} after close",
                f.idle.fds,
                f.steady_start.fds,
                f.fds_per_held_connection,
                f.steady_end.fds,
                f.after_close.fds
            ),
        );
}

fn verdict_section(s: &mut Summary, v: &Verdict) {
    let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
    let r = &v.rss;
    let slope = r
        .slope_bytes_per_min
        .map(|m| {
            format!(
                "{:+.1} KiB/min (r² {:.2})",
                m / 1024.0,
                r.r_squared.unwrap_or(0.0)
            )
        })
        .unwrap_or_else(|| "no fit".into());
    s.section(if v.passed {
        "verdict: PASS"
    } else {
        "verdict: FAIL"
    })
    .line(
        "RSS flat",
        format!(
            "{} {slope} over {} samples after {:.0} s warm-up; tolerance ±{:.0} KiB/min",
            mark(r.flat),
            r.points,
            r.warmup_s,
            r.tolerance_bytes_per_min / 1024.0
        ),
    )
    .line(
        "descriptors",
        format!(
            "{} {:+} after churn, {:+} after close (tolerance {})",
            mark(v.fds.no_leak),
            v.fds.excess_after_churn,
            v.fds.excess_after_close,
            v.fds.tolerance
        ),
    )
    .line(
        "errors",
        format!("{} {}", mark(v.errors.none), error_text(&v.errors)),
    )
    .line(
        "accounting",
        format!(
            "{} {} lost, {} duplicates, {} unexpected of {} expected",
            mark(v.accounting.complete),
            v.accounting.lost,
            v.accounting.duplicates,
            v.accounting.unexpected,
            v.accounting.expected
        ),
    );
}

fn error_text(e: &ErrorVerdict) -> String {
    let nonzero: Vec<String> = e
        .by_kind
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if nonzero.is_empty() {
        "none".into()
    } else {
        nonzero.join(", ")
    }
}

fn samples(f: &Failures) -> String {
    if f.samples.is_empty() {
        String::new()
    } else {
        format!(": {}", f.samples.join("; "))
    }
}

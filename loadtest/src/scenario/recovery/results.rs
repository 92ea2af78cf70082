//! Turning what the `recovery` clients and the publisher saw into results, the verdict
//! (its checks set the exit code), warnings and summary lines.

use super::checker::StreamTally;
use super::client::Recovery;
use super::state::{Histograms, RecoveryClient};
use crate::ci::thresholds::Check;
use crate::cli::RecoveryArgs;
use crate::proc::ServerDelta;
use crate::publisher::PublishReport;
use crate::report::Summary;
use crate::scenario::fleet::Merged;
use crate::scenario::{End, Endings, count_endings, fmt_endings};
use crate::stats::{Failures, LatencySummary};
use serde::Serialize;
use std::collections::HashMap;

/// Server figures of a `recovery` run (publish start → drain end).
#[derive(Debug, Serialize)]
pub struct RecoveryServer {
    /// CPU and RSS over the window.
    pub measured: ServerDelta,
    /// Deliveries (live and replayed) the clients received in the window.
    pub deliveries: u64,
    /// Server CPU per delivery, µs (reconnects, authentications and joins included).
    pub cpu_us_per_delivery: f64,
    /// The same per million deliveries, s.
    pub cpu_s_per_million_deliveries: f64,
}

/// Pass/fail: no gap, no duplicate, nothing out of order, and something was tested.
#[derive(Debug, Serialize)]
pub struct Verdict {
    /// Whether every check held.
    pub passed: bool,
    /// One line per failed check.
    pub failed: Vec<String>,
}

/// Results of a `recovery` run.
#[derive(Debug, Serialize)]
pub struct RecoveryResults {
    /// Clients asked for.
    pub clients: u64,
    /// History rooms.
    pub rooms: u64,
    /// Publish rate asked, messages/s.
    pub rate: f64,
    /// Seconds of publishing and dropping.
    pub duration_s: f64,
    /// Mean time connected before a drop, ms.
    pub drop_every_ms: u64,
    /// Wait before reconnecting, ms.
    pub reconnect_delay_ms: u64,
    /// Clients whose first connection authenticated.
    pub established: u64,
    /// Clients whose first connection failed.
    pub failed: u64,
    /// Those failures by kind.
    pub failures: Failures,
    /// First connections: TCP connect + upgrade.
    pub connect_latency: LatencySummary,
    /// First connections: authenticate → connected.
    pub auth_latency: LatencySummary,
    /// Established clients none of whose joins was confirmed.
    pub not_joined: u64,
    /// Clients that gave up after failures in a row.
    pub gave_up: u64,
    /// Publisher outcome.
    pub publisher: PublishReport,
    /// Abrupt drops made.
    pub drops: u64,
    /// Reconnect attempts.
    pub reconnects: u64,
    /// Of those, failed.
    pub reconnects_failed: u64,
    /// Their failures by kind.
    pub reconnect_failures: Failures,
    /// Joins with `since` answered by `ws:joined`.
    pub rejoins: u64,
    /// Of those, `recovered:true`.
    pub recovered: u64,
    /// recovered / rejoins (0 without rejoins).
    pub recovered_ratio: f64,
    /// Of those, `recovered:false` (or no flag).
    pub recovered_false: u64,
    /// Epoch changes seen.
    pub epoch_changes: u64,
    /// Messages replayed (between a join with `since` and its `ws:joined`).
    pub messages_replayed: u64,
    /// Live messages (after `ws:joined`).
    pub live_messages: u64,
    /// Offsets skipped and never delivered.
    pub gaps: u64,
    /// Places where a stream jumped.
    pub gap_events: u64,
    /// Offsets delivered twice.
    pub duplicates: u64,
    /// Offsets delivered after a later one.
    pub out_of_order: u64,
    /// Messages not judged (before a fresh join's `ws:joined`, or stray `ws:joined`).
    pub unsolicited: u64,
    /// Deliveries or `ws:joined` of another room than the client's.
    pub foreign: u64,
    /// Messages that could not be read.
    pub malformed: u64,
    /// Joins refused or unanswered within --join-timeout-ms.
    pub join_failures: u64,
    /// The first of those.
    pub first_join_failure: Option<String>,
    /// `error` events after a confirmed join.
    pub error_events: u64,
    /// Connections ended by the server or the network (not by our drop), by kind.
    pub lost_connections: Endings,
    /// How clients ended (`stopped` = at the end of the run).
    pub endings: Endings,
    /// Clients that ended below the highest offset another client of their room (same
    /// epoch) reached: messages at the tail never came.
    pub behind_at_end: u64,
    /// Reconnect start (after the delay) → `ws:joined`, rejoins that recovered.
    pub time_to_recover: LatencySummary,
    /// Publish → receive latency of live messages.
    pub latency: LatencySummary,
    /// Server figures (with --server-pid).
    pub server: Option<RecoveryServer>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Everything a run collected, for [`collect`].
pub struct Collected<'a> {
    /// The clients' merged results.
    pub clients: &'a Merged<Recovery>,
    /// The publisher's report.
    pub published: PublishReport,
    /// Deliveries between publish start and drain end.
    pub deliveries: u64,
    /// Server CPU and RSS over the same window.
    pub server: Option<ServerDelta>,
}

/// What the clients did, summed.
#[derive(Default)]
struct Sums {
    stream: StreamTally,
    not_joined: u64,
    drops: u64,
    reconnects: u64,
    reconnect_failures: Failures,
    join_failures: u64,
    first_join_failure: Option<String>,
    error_events: u64,
    foreign: u64,
    malformed: u64,
    lost: Endings,
}

impl Sums {
    fn add(&mut self, c: &RecoveryClient) {
        self.stream.add(&c.stream);
        self.not_joined += u64::from(!c.joined);
        self.drops += c.drops;
        self.reconnects += c.reconnects;
        self.reconnect_failures.merge(&c.reconnect_failures);
        self.join_failures += c.join_failures;
        if self.first_join_failure.is_none() {
            self.first_join_failure.clone_from(&c.first_join_failure);
        }
        self.error_events += c.error_events;
        self.foreign += c.foreign;
        self.malformed += c.malformed;
        for (k, v) in &c.lost {
            *self.lost.entry(k.clone()).or_default() += v;
        }
    }
}

/// Builds the results and judges them.
pub fn collect(args: &RecoveryArgs, c: Collected<'_>) -> RecoveryResults {
    let m = c.clients;
    let clients: Vec<&RecoveryClient> = m.clients.iter().map(|(_, c)| c).collect();
    let mut s = Sums::default();
    clients.iter().for_each(|c| s.add(c));
    let mut h = Histograms::default();
    m.workers.iter().for_each(|w| h.merge(w));
    let t = s.stream;
    let mut r = RecoveryResults {
        clients: args.clients,
        rooms: args.rooms,
        rate: args.rate,
        duration_s: args.duration_s,
        drop_every_ms: args.drop_every_ms,
        reconnect_delay_ms: args.reconnect_delay_ms,
        established: clients.len() as u64,
        failed: m.failures.total(),
        failures: m.failures.clone(),
        connect_latency: m.connect.summary(),
        auth_latency: m.auth.summary(),
        not_joined: s.not_joined,
        gave_up: clients.iter().filter(|c| c.end != End::Stopped).count() as u64,
        publisher: c.published,
        drops: s.drops,
        reconnects: s.reconnects,
        reconnects_failed: s.reconnect_failures.total(),
        reconnect_failures: s.reconnect_failures,
        rejoins: t.rejoins,
        recovered: t.recovered,
        recovered_ratio: ratio(t.recovered, t.rejoins),
        recovered_false: t.not_recovered,
        epoch_changes: t.epoch_changes,
        messages_replayed: t.replayed,
        live_messages: t.live,
        gaps: t.gaps,
        gap_events: t.gap_events,
        duplicates: t.duplicates,
        out_of_order: t.out_of_order,
        unsolicited: t.unsolicited,
        foreign: s.foreign,
        malformed: s.malformed,
        join_failures: s.join_failures,
        first_join_failure: s.first_join_failure,
        error_events: s.error_events,
        lost_connections: s.lost,
        endings: count_endings(clients.iter().map(|c| &c.end)),
        behind_at_end: behind_at_end(&clients),
        time_to_recover: h.recover.summary(),
        latency: h.latency.summary(),
        server: c.server.map(|d| server_figures(d, c.deliveries)),
        verdict: Verdict {
            passed: true,
            failed: Vec::new(),
        },
    };
    let failed: Vec<String> = checks(&r)
        .iter()
        .filter(|c| !c.passed)
        .map(Check::line)
        .collect();
    r.verdict = Verdict {
        passed: failed.is_empty(),
        failed,
    };
    r
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Clients (that ran to the end) whose position is below the highest one of their room
/// in the same epoch.
fn behind_at_end(clients: &[&RecoveryClient]) -> u64 {
    let finished = || {
        clients
            .iter()
            .filter(|c| c.end == End::Stopped)
            .filter_map(|c| c.position.as_ref().map(|p| ((c.room, &p.epoch), p.offset)))
    };
    let mut head: HashMap<(usize, &String), u64> = HashMap::new();
    for (key, offset) in finished() {
        let top = head.entry(key).or_default();
        *top = (*top).max(offset);
    }
    finished()
        .filter(|(key, offset)| head.get(key).is_some_and(|top| offset < top))
        .count() as u64
}

fn server_figures(measured: ServerDelta, deliveries: u64) -> RecoveryServer {
    let per = if deliveries == 0 {
        0.0
    } else {
        measured.cpu_s / deliveries as f64
    };
    RecoveryServer {
        measured,
        deliveries,
        cpu_us_per_delivery: per * 1e6,
        cpu_s_per_million_deliveries: per * 1e6,
    }
}

/// The verdict's checks: gaps, duplicates and out-of-order offsets must be 0, and at
/// least one rejoin must have been confirmed (a run that recovered nothing tested
/// nothing: a server without history must not pass). They join the run's thresholds, so a
/// failed one is a line on stderr and exit code 1.
pub fn checks(r: &RecoveryResults) -> Vec<Check> {
    let check = |option: &'static str, value: u64, shown: String| Check {
        option,
        limit: 0.0,
        value: Some(value as f64),
        shown,
        passed: value == 0,
    };
    let tested = Check {
        option: "recovery-min-rejoins",
        limit: 1.0,
        value: Some(r.rejoins as f64),
        shown: format!("{} rejoins confirmed by ws:joined", r.rejoins),
        passed: r.rejoins >= 1,
    };
    vec![
        check(
            "recovery-gaps",
            r.gaps,
            format!(
                "{} offsets skipped and never delivered ({} jumps)",
                r.gaps, r.gap_events
            ),
        ),
        check(
            "recovery-duplicates",
            r.duplicates,
            format!("{} offsets delivered twice", r.duplicates),
        ),
        check(
            "recovery-out-of-order",
            r.out_of_order,
            format!("{} offsets delivered after a later one", r.out_of_order),
        ),
        tested,
    ]
}

/// Warnings: nothing tested, clients that never joined or gave up, publisher errors.
pub fn warnings(r: &RecoveryResults) -> Vec<String> {
    let mut w: Vec<String> = r
        .verdict
        .failed
        .iter()
        .map(|f| format!("RECOVERY FAILED: {f}"))
        .collect();
    if r.rejoins == 0 {
        w.push("no rejoin was confirmed: nothing about recovery was tested (--drop-every-ms longer than --duration-s? joins refused?)".into());
    }
    if r.rejoins > 0 && r.recovered == 0 {
        w.push(format!(
            "none of {} rejoins recovered: is the room a history room (--history-rooms matching --room-prefix)?",
            r.rejoins
        ));
    }
    if r.not_joined > 0 {
        w.push(format!(
            "{} clients never had a join confirmed by ws:joined ({}): is the server started with --history-rooms matching --room-prefix, and does its room policy allow it?",
            r.not_joined,
            r.first_join_failure.as_deref().unwrap_or("no failure recorded")
        ));
    }
    if r.gave_up > 0 {
        w.push(format!(
            "{} clients gave up after failures in a row",
            r.gave_up
        ));
    }
    if r.behind_at_end > 0 {
        w.push(format!(
            "{} clients ended behind their room's head: the last messages never reached them",
            r.behind_at_end
        ));
    }
    if r.publisher.errors > 0 {
        w.push(format!(
            "publisher errors: {} ({:?})",
            r.publisher.errors, r.publisher.first_error
        ));
    }
    w
}

/// The human summary.
pub fn summarize(r: &RecoveryResults) -> Summary {
    let mut s = Summary::default();
    setup_section(&mut s, r);
    recovery_section(&mut s, r);
    stream_section(&mut s, r);
    if let Some(v) = &r.server {
        s.section("server")
            .line(
                "CPU",
                format!(
                    "{:.2} s over {:.2} s ({:.0}% of a core)",
                    v.measured.cpu_s,
                    v.measured.wall_s,
                    v.measured.cores * 100.0
                ),
            )
            .line(
                "CPU per delivery",
                format!(
                    "{:.2} µs ({} deliveries; reconnects and joins included)",
                    v.cpu_us_per_delivery, v.deliveries
                ),
            );
    }
    let title = if r.verdict.passed {
        "verdict: PASS"
    } else {
        "verdict: FAIL"
    };
    s.section(title)
        .line(
            "stream",
            format!(
                "{} gaps, {} duplicates, {} out of order",
                r.gaps, r.duplicates, r.out_of_order
            ),
        )
        .line("tested", format!("{} rejoins confirmed", r.rejoins));
    s
}

fn setup_section(s: &mut Summary, r: &RecoveryResults) {
    let p = &r.publisher;
    s.section("setup")
        .line(
            "clients",
            format!(
                "{} of {} established in {} room(s) ({} failed{}), {} never joined",
                r.established,
                r.clients,
                r.rooms,
                r.failed,
                samples(&r.failures),
                r.not_joined
            ),
        )
        .line("connect", r.connect_latency.line())
        .line("auth", r.auth_latency.line())
        .line(
            "published",
            format!(
                "{} of {} via {} ({:.0}/s), {} acknowledged, {} errors",
                p.sent, p.planned, p.via, p.achieved_rate, p.acked, p.errors
            ),
        );
}

fn recovery_section(s: &mut Summary, r: &RecoveryResults) {
    s.section("recovery")
        .line(
            "drops",
            format!(
                "{} abrupt drops, {} reconnects ({} failed{})",
                r.drops,
                r.reconnects,
                r.reconnects_failed,
                samples(&r.reconnect_failures)
            ),
        )
        .line(
            "rejoins",
            format!(
                "{} confirmed: {} recovered ({:.1}%), {} recovered:false, {} epoch changes",
                r.rejoins,
                r.recovered,
                r.recovered_ratio * 100.0,
                r.recovered_false,
                r.epoch_changes
            ),
        )
        .line("time to recover", r.time_to_recover.line())
        .line(
            "join failures",
            format!(
                "{}{}",
                r.join_failures,
                r.first_join_failure
                    .as_ref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default()
            ),
        )
        .line("lost connections", fmt_endings(&r.lost_connections))
        .line("endings", fmt_endings(&r.endings));
}

fn stream_section(s: &mut Summary, r: &RecoveryResults) {
    s.section("stream")
        .line(
            "messages",
            format!(
                "{} replayed, {} live, {} unsolicited, {} foreign, {} malformed",
                r.messages_replayed, r.live_messages, r.unsolicited, r.foreign, r.malformed
            ),
        )
        .line(
            "checker",
            format!(
                "{} gaps ({} jumps), {} duplicates, {} out of order, {} behind at end",
                r.gaps, r.gap_events, r.duplicates, r.out_of_order, r.behind_at_end
            ),
        )
        .line("latency (live)", r.latency.line());
}

fn samples(f: &Failures) -> String {
    if f.samples.is_empty() {
        String::new()
    } else {
        format!(": {}", f.samples.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::recovery::checker::Position;

    fn client(room: usize, epoch: &str, offset: u64, end: End) -> RecoveryClient {
        RecoveryClient {
            room,
            position: Some(Position {
                epoch: epoch.into(),
                offset,
            }),
            end,
            ..RecoveryClient::default()
        }
    }

    #[test]
    fn behind_at_end_compares_within_room_and_epoch_and_skips_quitters() {
        let cs = [
            client(0, "a", 10, End::Stopped),
            client(0, "a", 9, End::Stopped),
            client(0, "b", 3, End::Stopped),
            client(1, "a", 4, End::Stopped),
            client(0, "a", 2, End::Error("gave up".into())),
        ];
        let refs: Vec<&RecoveryClient> = cs.iter().collect();
        assert_eq!(behind_at_end(&refs), 1);
    }

    #[test]
    fn checks_fail_on_any_stream_fault_and_on_an_untested_run() {
        let m = crate::scenario::fleet::merge::<Recovery>(Vec::new());
        let published = PublishReport {
            via: "http",
            planned: 0,
            sent: 0,
            acked: 0,
            errors: 0,
            elapsed_s: 0.0,
            achieved_rate: 0.0,
            warmup_rounds: 0,
            ack_rtt: LatencySummary::default(),
            first_error: None,
            per_room: Vec::new(),
        };
        let c = Collected {
            clients: &m,
            published,
            deliveries: 0,
            server: None,
        };
        let args = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "shardcast-load",
            "recovery",
            "--url",
            "ws://127.0.0.1:1/ws",
            "--duration",
            "5",
        ])
        .expect("args");
        let crate::cli::Command::Recovery(args) = args.command else {
            panic!("not recovery");
        };
        assert_eq!(
            args.duration_s, 5.0,
            "--duration is an alias of --duration-s"
        );
        let mut r = collect(&args, c);
        let failed = |r: &RecoveryResults| -> Vec<&str> {
            checks(r)
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.option)
                .collect()
        };
        assert_eq!(failed(&r), ["recovery-min-rejoins"]);
        assert!(!r.verdict.passed);
        r.rejoins = 3;
        assert!(failed(&r).is_empty());
        (r.gaps, r.duplicates, r.out_of_order) = (1, 1, 1);
        assert_eq!(
            failed(&r),
            [
                "recovery-gaps",
                "recovery-duplicates",
                "recovery-out-of-order"
            ]
        );
    }

    #[test]
    fn server_cost_per_delivery() {
        let d = ServerDelta {
            cpu_s: 0.5,
            ..ServerDelta::default()
        };
        let v = server_figures(d, 250_000);
        assert!((v.cpu_us_per_delivery - 2.0).abs() < 1e-9);
        assert!((v.cpu_s_per_million_deliveries - 2.0).abs() < 1e-9);
        assert_eq!(server_figures(d, 0).cpu_us_per_delivery, 0.0);
    }
}

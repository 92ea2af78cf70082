//! The soak verdict: pure arithmetic over what the run recorded, no I/O.
//!
//! Four checks, each with its rule stated where it is computed:
//!
//! - **RSS flat** ([`rss_verdict`]): least-squares line through the server's RSS samples
//!   of the soak after its warm-up window; flat when the slope, either sign, is at most
//!   the tolerance in bytes per minute. Fewer than [`MIN_FIT_POINTS`] samples is a fail
//!   (nothing was shown).
//! - **No descriptor leak** ([`fd_verdict`]): after the churn stopped, the server holds no
//!   more descriptors than at the start of the soak, allowing for the change in held
//!   member connections; after every client closed, no more than before any connected.
//! - **No error** ([`error_verdict`]): every failure kind counts, the total must be 0.
//! - **Every message accounted for** ([`accounting`]): per member, the measured messages
//!   the publisher got acknowledged for its room against the distinct ones it received;
//!   nothing lost, nothing duplicated, nothing unexpected.

use super::series::Point;
use crate::stats::SeqSummary;
use serde::Serialize;
use std::collections::BTreeMap;

/// Samples a fit needs to say anything.
pub const MIN_FIT_POINTS: usize = 3;

/// A least-squares line `y = intercept + slope · x`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fit {
    /// dy/dx.
    pub slope: f64,
    /// y at x = 0.
    pub intercept: f64,
    /// Share of y's variance the line explains (1 when y is constant).
    pub r_squared: f64,
    /// Points fitted.
    pub n: usize,
}

/// Fits a line through `(x, y)` points; `None` with fewer than two distinct x.
pub fn linear_fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let mean = |f: fn(&(f64, f64)) -> f64| points.iter().map(f).sum::<f64>() / n as f64;
    let (mx, my) = (mean(|p| p.0), mean(|p| p.1));
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in points {
        let (dx, dy) = (x - mx, y - my);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some(Fit {
        slope,
        intercept: my - slope * mx,
        r_squared: if syy > 0.0 {
            sxy * sxy / (sxx * syy)
        } else {
            1.0
        },
        n,
    })
}

/// When the soak ran, in seconds since the run started (the series' clock).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    /// Publishing and churn started.
    pub start_s: f64,
    /// Publishing and churn ended.
    pub end_s: f64,
}

/// The RSS check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RssVerdict {
    /// Seconds after the soak start left out of the fit.
    pub warmup_s: f64,
    /// First and last time fitted (run clock), when any.
    pub fit_from_s: Option<f64>,
    /// Last time fitted.
    pub fit_to_s: Option<f64>,
    /// Samples fitted.
    pub points: usize,
    /// Fitted slope, bytes per minute (positive = growing).
    pub slope_bytes_per_min: Option<f64>,
    /// The fit's r².
    pub r_squared: Option<f64>,
    /// Slope × fitted span: what the line says the RSS grew by.
    pub growth_bytes: Option<f64>,
    /// Slope per churn cycle (bytes per minute / cycles per minute).
    pub bytes_per_churn_cycle: Option<f64>,
    /// Smallest and largest RSS fitted.
    pub rss_min_bytes: Option<u64>,
    /// Largest RSS fitted.
    pub rss_max_bytes: Option<u64>,
    /// Largest |slope| called flat, bytes per minute.
    pub tolerance_bytes_per_min: f64,
    /// |slope| ≤ tolerance over at least [`MIN_FIT_POINTS`] samples.
    pub flat: bool,
}

/// The samples inside the soak window after its warm-up, as `(t_s, rss_bytes)`.
pub fn fit_samples(series: &[Point], w: Window, warmup_s: f64) -> Vec<(f64, f64)> {
    series
        .iter()
        .filter(|p| p.t_s >= w.start_s + warmup_s && p.t_s <= w.end_s)
        .map(|p| (p.t_s, p.rss_bytes as f64))
        .collect()
}

/// Judges the RSS series (rule in the module docs); `churn_rate` in cycles per second.
pub fn rss_verdict(
    series: &[Point],
    w: Window,
    warmup_s: f64,
    tolerance_bytes_per_min: f64,
    churn_rate: f64,
) -> RssVerdict {
    let samples = fit_samples(series, w, warmup_s);
    let fit = (samples.len() >= MIN_FIT_POINTS)
        .then(|| linear_fit(&samples))
        .flatten();
    let per_min = fit.map(|f| f.slope * 60.0);
    let span = |s: &[(f64, f64)]| Some(s.last()?.0 - s.first()?.0);
    let rss = samples.iter().map(|s| s.1 as u64);
    RssVerdict {
        warmup_s,
        fit_from_s: samples.first().map(|s| s.0),
        fit_to_s: samples.last().map(|s| s.0),
        points: samples.len(),
        slope_bytes_per_min: per_min,
        r_squared: fit.map(|f| f.r_squared),
        growth_bytes: fit.zip(span(&samples)).map(|(f, s)| f.slope * s),
        bytes_per_churn_cycle: per_min
            .filter(|_| churn_rate > 0.0)
            .map(|m| m / (churn_rate * 60.0)),
        rss_min_bytes: rss.clone().min(),
        rss_max_bytes: rss.max(),
        tolerance_bytes_per_min,
        flat: per_min.is_some_and(|m| m.abs() <= tolerance_bytes_per_min),
    }
}

/// The server's descriptors at one moment, and the member connections held then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FdCheck {
    /// Entries of `/proc/<pid>/fd`.
    pub fds: u64,
    /// Steady members open (client side).
    pub held: u64,
    /// Seconds waited for the count to settle before this reading.
    pub settle_s: f64,
}

/// The descriptor check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FdVerdict {
    /// Before any member connected.
    pub idle: FdCheck,
    /// Members connected and warmed up, churn not started.
    pub steady_start: FdCheck,
    /// Churn and publishing ended, deliveries drained.
    pub steady_end: FdCheck,
    /// Every client closed.
    pub after_close: FdCheck,
    /// (steady_start − idle) / held at the start: descriptors per member connection.
    pub fds_per_held_connection: f64,
    /// (steady_end − steady_start) − (held_end − held_start).
    pub excess_after_churn: i64,
    /// after_close − idle.
    pub excess_after_close: i64,
    /// Largest excess still called no leak.
    pub tolerance: u64,
    /// Both excesses ≤ tolerance.
    pub no_leak: bool,
}

/// Descriptors `end` holds beyond `start` once the change in held connections is allowed
/// for (negative: fewer).
pub fn excess(start: FdCheck, end: FdCheck) -> i64 {
    (end.fds as i64 - start.fds as i64) - (end.held as i64 - start.held as i64)
}

/// Judges the four descriptor readings (rule in the module docs).
pub fn fd_verdict(
    idle: FdCheck,
    steady_start: FdCheck,
    steady_end: FdCheck,
    after_close: FdCheck,
    tolerance: u64,
) -> FdVerdict {
    let after_churn = excess(steady_start, steady_end);
    let after_close_excess = excess(idle, after_close);
    FdVerdict {
        idle,
        steady_start,
        steady_end,
        after_close,
        fds_per_held_connection: (steady_start.fds as f64 - idle.fds as f64)
            / steady_start.held.max(1) as f64,
        excess_after_churn: after_churn,
        excess_after_close: after_close_excess,
        tolerance,
        no_leak: after_churn <= tolerance as i64 && after_close_excess <= tolerance as i64,
    }
}

/// The error check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorVerdict {
    /// Every kind counted (zeros included, so the JSON shows what was checked).
    pub by_kind: BTreeMap<String, u64>,
    /// Their sum.
    pub total: u64,
    /// total = 0.
    pub none: bool,
}

/// Sums the error kinds.
pub fn error_verdict<'a>(kinds: impl IntoIterator<Item = (&'a str, u64)>) -> ErrorVerdict {
    let by_kind: BTreeMap<String, u64> = kinds.into_iter().map(|(k, v)| (k.into(), v)).collect();
    let total = by_kind.values().sum();
    ErrorVerdict {
        by_kind,
        total,
        none: total == 0,
    }
}

/// The delivery check over the steady members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Accounting {
    /// Measured messages written by the publisher.
    pub published: u64,
    /// Of those, acknowledged (Redis reply / HTTP 202).
    pub acknowledged: u64,
    /// Σ over members of the acknowledged messages of their room.
    pub expected: u64,
    /// Distinct messages members received.
    pub received: u64,
    /// Σ max(0, expected − received) per member.
    pub lost: u64,
    /// Σ max(0, received − expected) per member (never acknowledged, yet delivered).
    pub unexpected: u64,
    /// Repeated deliveries.
    pub duplicates: u64,
    /// Deliveries after a later one (reported, not judged: several HTTP connections may
    /// reorder).
    pub reordered: u64,
    /// lost = unexpected = duplicates = 0.
    pub complete: bool,
}

/// Accounts every member's `(expected, seen)` (rule in the module docs).
pub fn accounting(
    members: impl IntoIterator<Item = (u64, SeqSummary)>,
    published: u64,
    acknowledged: u64,
) -> Accounting {
    let mut a = Accounting {
        published,
        acknowledged,
        ..Accounting::default()
    };
    for (expected, seen) in members {
        a.expected += expected;
        a.received += seen.unique;
        a.lost += expected.saturating_sub(seen.unique);
        a.unexpected += seen.unique.saturating_sub(expected);
        a.duplicates += seen.duplicates;
        a.reordered += seen.reordered;
    }
    a.complete = a.lost == 0 && a.unexpected == 0 && a.duplicates == 0;
    a
}

/// The whole verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Every check passed.
    pub passed: bool,
    /// The checks that failed, in words.
    pub failed: Vec<String>,
    /// RSS flatness.
    pub rss: RssVerdict,
    /// Descriptor leak.
    pub fds: FdVerdict,
    /// Errors.
    pub errors: ErrorVerdict,
    /// Message accounting.
    pub accounting: Accounting,
}

impl Verdict {
    /// Combines the four checks.
    pub fn new(
        rss: RssVerdict,
        fds: FdVerdict,
        errors: ErrorVerdict,
        accounting: Accounting,
    ) -> Verdict {
        let failed: Vec<String> = [
            (!rss.flat).then(|| rss_failure(&rss)),
            (!fds.no_leak).then(|| {
                format!(
                    "descriptors: {:+} after churn, {:+} after close (tolerance {})",
                    fds.excess_after_churn, fds.excess_after_close, fds.tolerance
                )
            }),
            (!errors.none).then(|| format!("{} errors", errors.total)),
            (!accounting.complete).then(|| {
                format!(
                    "deliveries: {} lost, {} duplicated, {} unexpected",
                    accounting.lost, accounting.duplicates, accounting.unexpected
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        Verdict {
            passed: failed.is_empty(),
            failed,
            rss,
            fds,
            errors,
            accounting,
        }
    }
}

fn rss_failure(r: &RssVerdict) -> String {
    match r.slope_bytes_per_min {
        Some(m) => format!(
            "RSS not flat: {:+.0} KiB/min (tolerance {:.0} KiB/min)",
            m / 1024.0,
            r.tolerance_bytes_per_min / 1024.0
        ),
        None => format!(
            "RSS: {} samples after the warm-up, {MIN_FIT_POINTS} needed",
            r.points
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    fn series(samples: &[(f64, u64)]) -> Vec<Point> {
        samples
            .iter()
            .map(|&(t_s, rss_bytes)| Point {
                t_s,
                rss_bytes,
                ..Point::default()
            })
            .collect()
    }

    #[test]
    fn fit_recovers_a_line_and_refuses_degenerate_input() {
        let pts: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 + 2.0 * x as f64)).collect();
        let f = linear_fit(&pts).unwrap();
        assert!(close(f.slope, 2.0) && close(f.intercept, 3.0) && close(f.r_squared, 1.0));
        assert_eq!(f.n, 10);
        assert!(linear_fit(&[(1.0, 1.0)]).is_none());
        assert!(
            linear_fit(&[(1.0, 1.0), (1.0, 5.0)]).is_none(),
            "one x only"
        );
        let flat = linear_fit(&[(0.0, 7.0), (1.0, 7.0), (2.0, 7.0)]).unwrap();
        assert_eq!((flat.slope, flat.r_squared), (0.0, 1.0));
    }

    #[test]
    fn fit_of_noise_around_a_level_has_a_small_slope_and_r2() {
        let pts = [
            (0.0, 10.0),
            (1.0, 12.0),
            (2.0, 10.0),
            (3.0, 12.0),
            (4.0, 10.0),
        ];
        let f = linear_fit(&pts).unwrap();
        assert!(f.slope.abs() < 0.1 && f.r_squared < 0.1, "{f:?}");
    }

    #[test]
    fn rss_fit_skips_the_warmup_and_what_follows_the_soak() {
        // Ramp (t < 10) and warm-up growth (10..30) are left out; after 70 the soak ended.
        let mut s = vec![(0.0, 10), (5.0, 50), (10.0, 100), (20.0, 300), (25.0, 400)];
        s.extend((0..=8).map(|k| (30.0 + 5.0 * k as f64, 500)));
        s.push((75.0, 1));
        let w = Window {
            start_s: 10.0,
            end_s: 70.0,
        };
        let v = rss_verdict(&series(&s), w, 20.0, MIB, 100.0);
        assert_eq!(
            (v.points, v.fit_from_s, v.fit_to_s),
            (9, Some(30.0), Some(70.0))
        );
        assert_eq!(v.slope_bytes_per_min, Some(0.0));
        assert_eq!((v.rss_min_bytes, v.rss_max_bytes), (Some(500), Some(500)));
        assert!(v.flat);
    }

    #[test]
    fn rss_growth_is_judged_per_minute_against_the_tolerance() {
        // 1 KiB per second = 60 KiB/min, over 40 s.
        let s: Vec<(f64, u64)> = (0..=8)
            .map(|k| (5.0 * k as f64, 50 * 1024 * 1024 + 5 * 1024 * k as u64))
            .collect();
        let w = Window {
            start_s: 0.0,
            end_s: 40.0,
        };
        let v = rss_verdict(&series(&s), w, 0.0, 64.0 * 1024.0, 10.0);
        assert!(close(v.slope_bytes_per_min.unwrap(), 60.0 * 1024.0));
        assert!(close(v.growth_bytes.unwrap(), 40.0 * 1024.0));
        assert!(close(v.bytes_per_churn_cycle.unwrap(), 1024.0 / 10.0));
        assert!(v.flat, "60 KiB/min within 64");
        let v = rss_verdict(&series(&s), w, 0.0, 32.0 * 1024.0, 10.0);
        assert!(!v.flat, "60 KiB/min over 32");
        let shrinking: Vec<(f64, u64)> = s.iter().map(|&(t, r)| (-t, r)).collect();
        let w = Window {
            start_s: -40.0,
            end_s: 0.0,
        };
        let v = rss_verdict(&series(&shrinking), w, 0.0, 32.0 * 1024.0, 10.0);
        assert!(
            v.slope_bytes_per_min.unwrap() < 0.0 && !v.flat,
            "either sign"
        );
    }

    #[test]
    fn too_few_samples_is_not_flat() {
        let w = Window {
            start_s: 0.0,
            end_s: 10.0,
        };
        let v = rss_verdict(&series(&[(6.0, 1), (9.0, 1)]), w, 5.0, MIB, 1.0);
        assert_eq!((v.points, v.slope_bytes_per_min, v.flat), (2, None, false));
        let verdict = Verdict::new(
            v,
            fd_verdict(fd(0, 0), fd(0, 0), fd(0, 0), fd(0, 0), 0),
            error_verdict([]),
            accounting([], 0, 0),
        );
        assert_eq!(
            verdict.failed,
            ["RSS: 2 samples after the warm-up, 3 needed"]
        );
    }

    fn fd(fds: u64, held: u64) -> FdCheck {
        FdCheck {
            fds,
            held,
            settle_s: 0.0,
        }
    }

    #[test]
    fn descriptors_back_to_baseline_allowing_held_connections_is_no_leak() {
        let v = fd_verdict(fd(20, 0), fd(1020, 1000), fd(1020, 1000), fd(20, 0), 0);
        assert_eq!((v.excess_after_churn, v.excess_after_close), (0, 0));
        assert!(close(v.fds_per_held_connection, 1.0));
        assert!(v.no_leak);
        // Two members were dropped during the soak: two fewer descriptors is no leak.
        let v = fd_verdict(fd(20, 0), fd(1020, 1000), fd(1018, 998), fd(19, 0), 0);
        assert_eq!((v.excess_after_churn, v.excess_after_close), (0, -1));
        assert!(v.no_leak);
    }

    #[test]
    fn descriptors_left_by_churn_are_a_leak_beyond_the_tolerance() {
        let v = fd_verdict(fd(20, 0), fd(1020, 1000), fd(1023, 1000), fd(22, 0), 2);
        assert_eq!((v.excess_after_churn, v.excess_after_close), (3, 2));
        assert!(!v.no_leak, "3 over a tolerance of 2");
        let v = fd_verdict(fd(20, 0), fd(1020, 1000), fd(1022, 1000), fd(23, 0), 2);
        assert!(!v.no_leak, "3 left after close");
        let v = fd_verdict(fd(20, 0), fd(1020, 1000), fd(1022, 1000), fd(22, 0), 2);
        assert!(v.no_leak);
    }

    #[test]
    fn errors_sum_every_kind() {
        let v = error_verdict([("churn_connect", 0), ("steady_unexpected_end", 0)]);
        assert!(v.none && v.total == 0 && v.by_kind.len() == 2);
        let v = error_verdict([("churn_connect", 2), ("error_events", 1)]);
        assert_eq!((v.total, v.none), (3, false));
    }

    fn seen(unique: u64, duplicates: u64) -> SeqSummary {
        SeqSummary {
            unique,
            duplicates,
            ..SeqSummary::default()
        }
    }

    #[test]
    fn accounting_matches_each_member_against_its_room() {
        let a = accounting([(10, seen(10, 0)), (7, seen(7, 0))], 17, 17);
        assert_eq!((a.expected, a.received, a.lost), (17, 17, 0));
        assert!(a.complete);
        // One lost on one member is not hidden by one extra on another.
        let a = accounting([(10, seen(9, 0)), (7, seen(8, 0))], 17, 17);
        assert_eq!((a.lost, a.unexpected, a.received), (1, 1, 17));
        assert!(!a.complete);
        let a = accounting([(10, seen(10, 2))], 10, 10);
        assert_eq!(a.duplicates, 2);
        assert!(!a.complete);
    }

    #[test]
    fn the_verdict_passes_only_when_every_check_does() {
        let w = Window {
            start_s: 0.0,
            end_s: 20.0,
        };
        let flat = rss_verdict(&series(&[(0.0, 5), (10.0, 5), (20.0, 5)]), w, 0.0, MIB, 1.0);
        let fds = fd_verdict(fd(20, 0), fd(30, 10), fd(30, 10), fd(20, 0), 0);
        let ok = Verdict::new(
            flat.clone(),
            fds.clone(),
            error_verdict([("x", 0)]),
            accounting([(5, seen(5, 0))], 5, 5),
        );
        assert!(ok.passed && ok.failed.is_empty());
        let bad = Verdict::new(
            flat,
            fds,
            error_verdict([("x", 1)]),
            accounting([(5, seen(4, 0))], 5, 5),
        );
        assert_eq!(
            bad.failed,
            ["1 errors", "deliveries: 1 lost, 0 duplicated, 0 unexpected"]
        );
    }
}

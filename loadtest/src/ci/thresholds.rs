//! Pass/fail thresholds: each given `--max-…` option becomes one [`Check`] of a measured
//! value against its limit. A latency threshold fails when there is no sample at all (a
//! run that delivered nothing must not pass).

use super::CiFacts;
use crate::cli::CiArgs;
use crate::stats::fmt_us;
use serde::Serialize;

/// One threshold and how the run compares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The option, e.g. `--max-p99-ms`.
    pub option: &'static str,
    /// Its value.
    pub limit: f64,
    /// What was measured, in the option's unit (`None`: nothing to measure).
    pub value: Option<f64>,
    /// The measured value for people (`1.23 ms`, `0.0100%`, `3`).
    pub shown: String,
    /// Whether the value is within the limit.
    pub passed: bool,
}

impl Check {
    fn new(option: &'static str, limit: f64, value: Option<f64>, shown: String) -> Check {
        let passed = value.is_some_and(|v| v <= limit);
        Check {
            option,
            limit,
            value,
            shown,
            passed,
        }
    }

    /// `--max-p99-ms 10: p99 latency was 12.40 ms`.
    pub fn line(&self) -> String {
        format!("{} {}: {}", self.option, self.limit, self.shown)
    }
}

/// The checks the options ask for, in a fixed order.
pub fn evaluate(a: &CiArgs, f: &CiFacts) -> Vec<Check> {
    let mut checks = latency_checks(a, f);
    if let Some(limit) = a.max_loss {
        let shown = format!(
            "lost {} of {} expected deliveries ({:.4}%)",
            f.lost,
            f.expected,
            f.loss_ratio() * 100.0
        );
        checks.push(Check::new("--max-loss", limit, Some(f.loss_ratio()), shown));
    }
    if let Some(limit) = a.max_failed {
        let shown = format!("{} clients failed to connect or authenticate", f.failed);
        let value = Some(f.failed as f64);
        checks.push(Check::new("--max-failed", limit as f64, value, shown));
    }
    checks
}

/// `--max-p50-ms`, `--max-p99-ms`, `--max-p999-ms`, in ms.
fn latency_checks(a: &CiArgs, f: &CiFacts) -> Vec<Check> {
    let s = f.latency.summary();
    let quantiles = [
        ("--max-p50-ms", a.max_p50_ms, "p50", s.p50_us),
        ("--max-p99-ms", a.max_p99_ms, "p99", s.p99_us),
        ("--max-p999-ms", a.max_p999_ms, "p99.9", s.p999_us),
    ];
    let check = |(option, limit, name, us): (&'static str, Option<f64>, &str, u64)| {
        let limit = limit?;
        if s.count == 0 {
            let shown = "no latency sample (nothing was delivered)".to_string();
            return Some(Check::new(option, limit, None, shown));
        }
        let shown = format!("{name} latency was {} (n={})", fmt_us(us), s.count);
        Some(Check::new(option, limit, Some(us as f64 / 1e3), shown))
    };
    quantiles.into_iter().filter_map(check).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(latencies: impl IntoIterator<Item = u64>) -> CiFacts {
        let mut f = CiFacts {
            expected: 1000,
            lost: 2,
            failed: 1,
            ..CiFacts::default()
        };
        latencies.into_iter().for_each(|us| f.latency.record(us));
        f
    }

    #[test]
    fn each_option_is_one_check_against_its_measure() {
        let a = CiArgs {
            max_p50_ms: Some(1.0),
            max_p99_ms: Some(5.0),
            max_loss: Some(0.001),
            max_failed: Some(1),
            ..CiArgs::default()
        };
        // 1..=10,000 µs: p50 5 ms (over 1), p99 9.9 ms (over 5).
        let checks = evaluate(&a, &facts(1..=10_000));
        let got: Vec<(&str, bool)> = checks.iter().map(|c| (c.option, c.passed)).collect();
        assert_eq!(
            got,
            [
                ("--max-p50-ms", false),
                ("--max-p99-ms", false),
                ("--max-loss", false),
                ("--max-failed", true)
            ]
        );
        assert_eq!(
            checks[1].line(),
            "--max-p99-ms 5: p99 latency was 9.90 ms (n=10000)"
        );
        assert_eq!(
            checks[2].line(),
            "--max-loss 0.001: lost 2 of 1000 expected deliveries (0.2000%)"
        );
    }

    #[test]
    fn limits_are_inclusive_and_no_sample_fails() {
        let a = CiArgs {
            max_p99_ms: Some(2.0),
            max_loss: Some(0.002),
            ..CiArgs::default()
        };
        let checks = evaluate(&a, &facts([2_000]));
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        let checks = evaluate(&a, &facts([]));
        assert!(!checks[0].passed);
        assert_eq!(checks[0].value, None);
    }

    #[test]
    fn no_option_no_check() {
        assert!(evaluate(&CiArgs::default(), &facts([5])).is_empty());
    }
}

//! A run in CI: what `fanout` and `soak` measured ([`CiFacts`]), the exports of their
//! delivery latency (`--plot`, `--hdr`, `--percentiles`) and the thresholds that decide
//! the exit code (`--max-p99-ms`, `--max-loss`, …).
//!
//! Everything here runs once, after the run, on the main thread; nothing touches the
//! measurement. The exit code: 0 when every threshold held, 1 when one was breached (one
//! line on stderr per breach), 2 when the run itself failed.

pub mod hdr;
pub mod plot;
pub mod thresholds;

use crate::cli::CiArgs;
use crate::error::{Error, Result};
use crate::stats::Latency;
use crate::timeline::TimePoint;

/// What a scenario measured, for the exports and the thresholds.
#[derive(Debug, Clone, Default)]
pub struct CiFacts {
    /// Every delivery's publish → receive latency, µs.
    pub latency: Latency,
    /// The same by interval of send time (merged over worker threads).
    pub timeline: Vec<TimePoint>,
    /// Publish start, µs since the epoch: time 0 of the plot.
    pub origin_us: u64,
    /// Deliveries the readers should have received.
    pub expected: u64,
    /// Of those, never received.
    pub lost: u64,
    /// Clients that failed to connect or authenticate.
    pub failed: u64,
}

impl CiFacts {
    /// lost / expected (0 when nothing was expected).
    pub fn loss_ratio(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64
        }
    }
}

/// Refuses thresholds that cannot mean anything, before the run starts.
pub fn validate(a: &CiArgs) -> Result<()> {
    let ms = [
        ("--max-p50-ms", a.max_p50_ms),
        ("--max-p99-ms", a.max_p99_ms),
        ("--max-p999-ms", a.max_p999_ms),
    ];
    for (flag, v) in ms {
        if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(Error::Config(format!(
                "{flag} must be a number of ms, 0 or more"
            )));
        }
    }
    if a.max_loss.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
        return Err(Error::Config(
            "--max-loss is a ratio from 0 to 1 (0.001 = 0.1%)".into(),
        ));
    }
    if a.plot
        .as_ref()
        .is_some_and(|p| p.extension().is_none_or(|e| e != "png"))
    {
        return Err(Error::Config("--plot writes a PNG: give a FILE.png".into()));
    }
    Ok(())
}

/// Writes the files the options ask for.
pub fn export(a: &CiArgs, facts: &CiFacts) -> Result<()> {
    if let Some(path) = &a.hdr {
        hdr::write_v2(path, &facts.latency)?;
    }
    if let Some(path) = &a.percentiles {
        let table = hdr::percentile_table(&facts.latency);
        std::fs::write(path, table).map_err(Error::io(format!("writing {}", path.display())))?;
    }
    if let Some(path) = &a.plot {
        plot::draw(path, facts)?;
    }
    Ok(())
}

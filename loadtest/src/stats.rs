//! Measurement primitives: latency histograms, per-connection sequence tracking, failure
//! counters and the live counters shown in the progress line.
//!
//! Histograms and trackers are owned by one task or one worker thread and merged at the
//! end ([`Latency::merge`], [`SeqSummary::add`]); only [`Live`] is shared across threads,
//! and it is written once per read batch, not per frame.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Highest latency a histogram tracks: one hour, in µs (larger values are clamped).
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram in µs (3 significant digits).
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"))
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value in µs (clamped into range).
    #[inline]
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.min(MAX_US));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The underlying histogram (µs), for exports.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.0
    }

    /// Percentile summary.
    pub fn summary(&self) -> LatencySummary {
        let h = &self.0;
        let empty = h.is_empty();
        let q = |p: f64| if empty { 0 } else { h.value_at_quantile(p) };
        LatencySummary {
            count: h.len(),
            min_us: if empty { 0 } else { h.min() },
            mean_us: if empty {
                0.0
            } else {
                (h.mean() * 10.0).round() / 10.0
            },
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if empty { 0 } else { h.max() },
        }
    }
}

/// Percentiles of a [`Latency`], in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Smallest sample.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

impl LatencySummary {
    /// One line: `p50 1.20 ms  p90 …  p99 …  p99.9 …  max …  (n=…)`.
    pub fn line(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})",
            fmt_us(self.p50_us),
            fmt_us(self.p90_us),
            fmt_us(self.p99_us),
            fmt_us(self.p999_us),
            fmt_us(self.max_us),
            self.count
        )
    }
}

/// Human duration from µs: `850 µs`, `1.23 ms`, `2.50 s`.
pub fn fmt_us(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// Most missing sequence numbers remembered per connection; older ones are forgotten
/// (a later arrival of a forgotten one then counts as a duplicate).
const MAX_MISSING: usize = 65_536;

/// Tracks the sequence numbers one connection received from one ordered source.
///
/// Cheap for the expected case (in order: one compare, one add). A gap remembers the
/// skipped numbers, so a late arrival counts as *reordered* and a repeat as *duplicate*.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    next: u64,
    unique: u64,
    duplicates: u64,
    reordered: u64,
    missing: BTreeSet<u64>,
}

impl SeqTracker {
    /// A tracker expecting sequence 0 first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the arrival of `seq`.
    #[inline]
    pub fn observe(&mut self, seq: u64) {
        if seq == self.next {
            self.next += 1;
            self.unique += 1;
        } else if seq > self.next {
            self.skip_to(seq);
        } else if self.missing.remove(&seq) {
            self.unique += 1;
            self.reordered += 1;
        } else {
            self.duplicates += 1;
        }
    }

    #[cold]
    fn skip_to(&mut self, seq: u64) {
        // Remember at most MAX_MISSING of the newest skipped numbers.
        let from = self.next.max(seq.saturating_sub(MAX_MISSING as u64));
        self.missing.extend(from..seq);
        while self.missing.len() > MAX_MISSING {
            self.missing.pop_first();
        }
        self.next = seq + 1;
        self.unique += 1;
    }

    /// Counts so far.
    pub fn summary(&self) -> SeqSummary {
        SeqSummary {
            unique: self.unique,
            duplicates: self.duplicates,
            reordered: self.reordered,
            highest_seen: self.next,
        }
    }
}

/// What a [`SeqTracker`] saw; sums over connections with [`SeqSummary::add`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeqSummary {
    /// Distinct sequence numbers received.
    pub unique: u64,
    /// Arrivals of an already received number.
    pub duplicates: u64,
    /// Numbers that arrived after a higher one.
    pub reordered: u64,
    /// One past the highest number seen (summed: only meaningful per connection).
    pub highest_seen: u64,
}

impl SeqSummary {
    /// Adds another connection's counts.
    pub fn add(&mut self, o: &SeqSummary) {
        self.unique += o.unique;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.highest_seen += o.highest_seen;
    }
}

/// Why connection attempts failed, by phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Failures {
    /// TCP connect or source bind failed.
    pub connect: u64,
    /// HTTP upgrade refused or malformed.
    pub upgrade: u64,
    /// Connect + upgrade exceeded the connect timeout.
    pub connect_timeout: u64,
    /// The server answered `authenticate` with an error.
    pub auth_rejected: u64,
    /// No `connected` within the auth timeout.
    pub auth_timeout: u64,
    /// The server closed the connection during authentication.
    pub closed_during_auth: u64,
    /// I/O or protocol error during authentication.
    pub io: u64,
    /// The first few error messages, for diagnosis.
    pub samples: Vec<String>,
}

/// Error messages kept in [`Failures::samples`].
const FAILURE_SAMPLES: usize = 5;

impl Failures {
    /// All failures.
    pub fn total(&self) -> u64 {
        self.connect
            + self.upgrade
            + self.connect_timeout
            + self.auth_rejected
            + self.auth_timeout
            + self.closed_during_auth
            + self.io
    }

    /// Keeps `msg` if fewer than a handful are kept.
    pub fn sample(&mut self, msg: String) {
        if self.samples.len() < FAILURE_SAMPLES && !self.samples.contains(&msg) {
            self.samples.push(msg);
        }
    }

    /// Adds another worker's counts.
    pub fn merge(&mut self, o: &Failures) {
        self.connect += o.connect;
        self.upgrade += o.upgrade;
        self.connect_timeout += o.connect_timeout;
        self.auth_rejected += o.auth_rejected;
        self.auth_timeout += o.auth_timeout;
        self.closed_during_auth += o.closed_during_auth;
        self.io += o.io;
        for s in &o.samples {
            self.sample(s.clone());
        }
    }
}

/// Counters shared by every thread for the live progress line. Relaxed atomics, written
/// once per connection event or read batch.
#[derive(Debug, Default)]
pub struct Live {
    /// Connection attempts started.
    pub attempts: AtomicU64,
    /// Connections authenticated.
    pub established: AtomicU64,
    /// Attempts that failed.
    pub failed: AtomicU64,
    /// Connections currently open (authenticated, not yet ended).
    pub open: AtomicU64,
    /// Readers that joined and are reading.
    pub ready: AtomicU64,
    /// Readers that received a warm-up message.
    pub warmed: AtomicU64,
    /// Measured messages received.
    pub frames: AtomicU64,
    /// Bytes read by clients.
    pub bytes: AtomicU64,
    /// `read(2)` calls that returned data (measured readers).
    pub reads: AtomicU64,
    /// Messages published or sent.
    pub sent: AtomicU64,
    /// Connections the server closed.
    pub server_closed: AtomicU64,
    /// Closes completed (churn).
    pub closed: AtomicU64,
}

impl Live {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        if n != 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Subtracts one from a gauge.
    pub fn dec(c: &AtomicU64) {
        c.fetch_sub(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_samples_from_every_histogram() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        (1..=500).for_each(|v| a.record(v));
        (501..=1000).for_each(|v| b.record(v));
        a.merge(&b);
        let s = a.summary();
        assert_eq!((s.count, s.min_us, s.max_us), (1000, 1, 1000));
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p99_us, 990);
        assert!((s.mean_us - 500.5).abs() < 0.5);
    }

    #[test]
    fn empty_and_extreme_values() {
        let mut h = Latency::new();
        assert_eq!(h.summary(), LatencySummary::default());
        h.record(0);
        h.record(u64::MAX);
        let s = h.summary();
        assert_eq!(s.count, 2);
        assert!(s.max_us >= MAX_US && s.max_us <= MAX_US + MAX_US / 500);
    }

    #[test]
    fn in_order_sequences_are_unique() {
        let mut t = SeqTracker::new();
        (0..100).for_each(|s| t.observe(s));
        assert_eq!(
            t.summary(),
            SeqSummary {
                unique: 100,
                duplicates: 0,
                reordered: 0,
                highest_seen: 100
            }
        );
    }

    #[test]
    fn gaps_duplicates_and_late_arrivals() {
        let mut t = SeqTracker::new();
        for s in [0, 1, 4, 5, 2, 5, 0, 7] {
            t.observe(s);
        }
        // 0 1 4 5 2 7 unique; 5 and 0 repeated; 2 late; 3 and 6 missing.
        assert_eq!(
            t.summary(),
            SeqSummary {
                unique: 6,
                duplicates: 2,
                reordered: 1,
                highest_seen: 8
            }
        );
    }

    #[test]
    fn huge_gap_stays_bounded() {
        let mut t = SeqTracker::new();
        t.observe(10_000_000);
        assert!(t.missing.len() <= MAX_MISSING);
        t.observe(9_999_999);
        assert_eq!(t.summary().reordered, 1);
    }

    #[test]
    fn seq_summaries_and_failures_add_up() {
        let mut a = SeqSummary {
            unique: 3,
            duplicates: 1,
            reordered: 0,
            highest_seen: 3,
        };
        a.add(&SeqSummary {
            unique: 2,
            duplicates: 0,
            reordered: 1,
            highest_seen: 2,
        });
        assert_eq!((a.unique, a.duplicates, a.reordered), (5, 1, 1));
        let mut f = Failures {
            connect: 1,
            ..Default::default()
        };
        f.sample("x".into());
        let mut g = Failures {
            auth_timeout: 2,
            ..Default::default()
        };
        g.sample("x".into());
        g.sample("y".into());
        f.merge(&g);
        assert_eq!((f.total(), f.samples.len()), (3, 2));
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_us(850), "850 µs");
        assert_eq!(fmt_us(1234), "1.23 ms");
        assert_eq!(fmt_us(2_500_000), "2.50 s");
    }
}

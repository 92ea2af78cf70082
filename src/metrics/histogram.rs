//! A latency histogram with one writing thread and fixed buckets, read by any thread.
//!
//! Contract: [`Histogram::record`] is called only by the owning thread (its shard), like
//! [`super::OwnedCounter`]: a binary search over [`BOUNDS_US`] and three load/store
//! pairs, no lock, no allocation. Readers take a [`HistogramSnapshot`] (relaxed loads:
//! each bucket exact, the set not one instant) that sums across shards, renders as a
//! Prometheus histogram and estimates quantiles.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the buckets, in microseconds (the last bucket, `+Inf`, is implicit).
/// From 50 µs, where a loopback delivery sits, to 10 s, where a stalled link does.
pub const BOUNDS_US: [u64; 18] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 7_500_000, 10_000_000,
];

/// Buckets: one per bound plus `+Inf`.
const BUCKETS: usize = BOUNDS_US.len() + 1;

/// Durations in microseconds, counted into [`BOUNDS_US`] buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative: `buckets[i]` counts values in `(BOUNDS_US[i-1], BOUNDS_US[i]]`.
    buckets: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one duration of `micros`; owning thread only.
    pub fn record(&self, micros: u64) {
        let i = BOUNDS_US.partition_point(|&bound| bound < micros);
        bump(&self.buckets[i], 1);
        bump(&self.sum_us, micros);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut snapshot = HistogramSnapshot::default();
        snapshot.add(self);
        snapshot
    }
}

/// A single-writer add: a load and a store (see the module contract).
fn bump(cell: &AtomicU64, n: u64) {
    cell.store(cell.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// The counts of one or more [`Histogram`]s at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HistogramSnapshot {
    /// Non-cumulative counts, one per [`BOUNDS_US`] entry then `+Inf`.
    pub buckets: [u64; BUCKETS],
    /// Sum of every recorded value, in microseconds.
    pub sum_us: u64,
}

impl HistogramSnapshot {
    /// Adds `histogram`'s counts (to sum shards).
    pub fn add(&mut self, histogram: &Histogram) {
        for (total, bucket) in self.buckets.iter_mut().zip(&histogram.buckets) {
            *total += bucket.load(Ordering::Relaxed);
        }
        self.sum_us += histogram.sum_us.load(Ordering::Relaxed);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The `q` quantile (0..=1) in microseconds, interpolated linearly inside its bucket;
    /// `None` when empty. A value in the `+Inf` bucket reports the last bound.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * count as f64).max(1.0);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 || ((seen + n) as f64) < rank {
                seen += n;
                continue;
            }
            let Some(&upper) = BOUNDS_US.get(i) else {
                return Some(BOUNDS_US[BOUNDS_US.len() - 1] as f64);
            };
            let lower = if i == 0 { 0 } else { BOUNDS_US[i - 1] };
            let within = (rank - seen as f64) / n as f64;
            return Some(lower as f64 + within * (upper - lower) as f64);
        }
        None
    }

    /// Appends the Prometheus text lines of this histogram (in seconds), `labels` being
    /// `""` or `shard="0"`-style pairs without braces. The `# HELP`/`# TYPE` header is the
    /// caller's (once per family).
    pub fn render_prometheus(&self, out: &mut String, name: &str, labels: &str) {
        use std::fmt::Write as _;
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            cumulative += n;
            let le = match BOUNDS_US.get(i) {
                Some(&bound) => format_seconds(bound),
                None => "+Inf".to_owned(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        let braces = |s: &str| if s.is_empty() { String::new() } else { format!("{{{s}}}") };
        let sum = self.sum_us as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// Microseconds as a Prometheus `le` value in seconds (`0.00005`, `1`, `2.5`).
fn format_seconds(micros: u64) -> String {
    let text = format!("{:.6}", micros as f64 / 1e6);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_bucket_whose_bound_covers_them() {
        let h = Histogram::default();
        for v in [0, 50, 51, 10_000_000, 10_000_001] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 2, "0 and 50 are ≤ 50 µs");
        assert_eq!(s.buckets[1], 1, "51 µs is in (50, 100]");
        assert_eq!(s.buckets[BOUNDS_US.len() - 1], 1, "10 s is the last bound");
        assert_eq!(s.buckets[BOUNDS_US.len()], 1, "above every bound: +Inf");
        assert_eq!(s.count(), 5);
        assert_eq!(s.sum_us, 20_000_102);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile_us(0.5), None);
        for _ in 0..100 {
            h.record(700); // (500, 1000]
        }
        let s = h.snapshot();
        assert_eq!(s.quantile_us(0.5), Some(750.0));
        assert_eq!(s.quantile_us(1.0), Some(1000.0));
        h.record(20_000_000);
        assert_eq!(h.snapshot().quantile_us(1.0), Some(10_000_000.0));
    }

    #[test]
    fn snapshots_of_several_histograms_add_up() {
        let (a, b) = (Histogram::default(), Histogram::default());
        a.record(10);
        b.record(3_000);
        let mut s = a.snapshot();
        s.add(&b);
        assert_eq!(s.count(), 2);
        assert_eq!(s.sum_us, 3_010);
    }

    #[test]
    fn prometheus_buckets_are_cumulative_seconds() {
        let h = Histogram::default();
        h.record(70);
        h.record(2_000_000);
        let mut out = String::new();
        h.snapshot().render_prometheus(&mut out, "x_seconds", "shard=\"0\"");
        assert!(out.contains("x_seconds_bucket{shard=\"0\",le=\"0.00005\"} 0\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{shard=\"0\",le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{shard=\"0\",le=\"2.5\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{shard=\"0\",le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_sum{shard=\"0\"} 2.00007\n"), "{out}");
        assert!(out.contains("x_seconds_count{shard=\"0\"} 2\n"), "{out}");
        let mut bare = String::new();
        h.snapshot().render_prometheus(&mut bare, "y", "");
        assert!(bare.contains("y_bucket{le=\"+Inf\"} 2\n") && bare.contains("y_count 2\n"));
    }
}

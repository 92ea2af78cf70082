//! Latency over time: one small histogram per interval of *send* time, for the
//! latency-over-time plot (`--plot`).
//!
//! A [`Timeline`] is owned by one worker thread (inside its [`Recorder`], next to the
//! whole-run [`Latency`]) and merged with the others at the end ([`merge`]). Intervals are
//! keyed by their absolute index (`stamp / interval`), so timelines of different threads
//! line up without a shared clock origin. A histogram is allocated only for an interval
//! that received a sample; each keeps 2 significant digits (about 13 KiB), and at most
//! [`MAX_SLOTS`] intervals are kept per thread (a sample stamped past them is counted in
//! the whole-run histogram only). Stamps earlier than the first interval seen (minus a
//! little slack for reordering) are counted in the first one.

use crate::stats::Latency;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest latency a timeline histogram tracks, µs (larger values are clamped).
const MAX_US: u64 = 3_600_000_000;

/// Intervals a timeline keeps before the first one seen, for samples that arrive late.
const SLACK: u64 = 2;

/// Most intervals one thread's timeline holds.
pub const MAX_SLOTS: usize = 100_000;

/// Intervals a run is cut into for the plot, at most (so a long soak stays small).
const TARGET_POINTS: f64 = 300.0;

type Slot = Option<Box<Histogram<u32>>>;

/// Per-interval latency histograms of one thread.
#[derive(Debug, Clone)]
pub struct Timeline {
    interval_us: u64,
    first: u64,
    slots: Vec<Slot>,
    /// The interval samples went to last: its start (µs since the epoch) and slot, so
    /// that consecutive samples of one interval skip the division.
    current: Option<(u64, usize)>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new(Duration::from_secs(1))
    }
}

impl Timeline {
    /// An empty timeline cutting time into `interval`s (at least 1 ms).
    pub fn new(interval: Duration) -> Self {
        Timeline {
            interval_us: (interval.as_micros() as u64).max(1_000),
            first: 0,
            slots: Vec::new(),
            current: None,
        }
    }

    /// The interval for a run of `duration`: one second, or longer so that the run has
    /// at most about 300 points.
    pub fn interval_for(duration: Duration) -> Duration {
        let secs = (duration.as_secs_f64() / TARGET_POINTS).ceil().max(1.0);
        Duration::from_secs_f64(secs)
    }

    /// Records `latency_us` for a message stamped `stamp_us` (µs since the epoch).
    #[inline]
    pub fn record(&mut self, stamp_us: u64, latency_us: u64) {
        let i = match self.current {
            Some((start, i)) if stamp_us.wrapping_sub(start) < self.interval_us => i,
            _ => match self.seek(stamp_us) {
                Some(i) => i,
                None => return,
            },
        };
        if let Some(slot) = self.slots.get_mut(i) {
            slot.get_or_insert_with(new_slot)
                .saturating_record(latency_us.clamp(1, MAX_US));
        }
    }

    /// The slot of `stamp_us`'s interval (allocating its place), made current; `None`
    /// past [`MAX_SLOTS`].
    #[cold]
    fn seek(&mut self, stamp_us: u64) -> Option<usize> {
        let bucket = stamp_us / self.interval_us;
        if self.slots.is_empty() {
            self.first = bucket.saturating_sub(SLACK);
        }
        let i = bucket.saturating_sub(self.first) as usize;
        if i >= MAX_SLOTS {
            return None;
        }
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        // A stamp clamped into the first interval does not make it current.
        self.current = (bucket >= self.first).then(|| (bucket * self.interval_us, i));
        Some(i)
    }

    fn filled(&self) -> impl Iterator<Item = (u64, &Histogram<u32>)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_deref().map(|h| (self.first + i as u64, h)))
    }
}

fn new_slot() -> Box<Histogram<u32>> {
    Box::new(Histogram::new_with_bounds(1, MAX_US, 2).expect("valid histogram bounds"))
}

/// One interval of a merged timeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimePoint {
    /// Start of the interval, µs since the epoch (send time).
    pub start_us: u64,
    /// End of the interval (exclusive), µs since the epoch.
    pub end_us: u64,
    /// Samples stamped in the interval.
    pub count: u64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Largest latency, µs.
    pub max_us: u64,
}

/// The timelines of every thread as one series of points, oldest first (they must share
/// one interval; others are left out).
pub fn merge<'a>(timelines: impl IntoIterator<Item = &'a Timeline>) -> Vec<TimePoint> {
    let mut interval = None;
    let mut merged: BTreeMap<u64, Histogram<u32>> = BTreeMap::new();
    for t in timelines {
        if *interval.get_or_insert(t.interval_us) != t.interval_us {
            continue;
        }
        for (bucket, h) in t.filled() {
            if let Some(m) = merged.get_mut(&bucket) {
                // Same bounds on both sides, so `add` cannot fail.
                let _ = m.add(h);
            } else {
                merged.insert(bucket, h.clone());
            }
        }
    }
    let interval = interval.unwrap_or(1);
    merged
        .iter()
        .map(|(bucket, h)| TimePoint {
            start_us: bucket * interval,
            end_us: (bucket + 1) * interval,
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        })
        .collect()
}

/// What a reader thread records for each measured message: the whole-run histogram and,
/// when a plot was asked for, the timeline (about 8 ns more a message, measured).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Every sample of the run (3 significant digits).
    pub latency: Latency,
    /// Samples by send-time interval (2 significant digits), with `--plot`.
    pub timeline: Option<Timeline>,
}

impl Recorder {
    /// Keeps a timeline of `interval`s from now on (no-op once one is kept).
    pub fn keep_timeline(&mut self, interval: Duration) {
        self.timeline.get_or_insert_with(|| Timeline::new(interval));
    }

    /// Records a message stamped `stamp_us` that arrived `latency_us` later.
    #[inline]
    pub fn record(&mut self, stamp_us: u64, latency_us: u64) {
        self.latency.record(latency_us);
        if let Some(t) = &mut self.timeline {
            t.record(stamp_us, latency_us);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_line_up_by_absolute_interval() {
        let mut a = Timeline::new(Duration::from_secs(1));
        let mut b = Timeline::new(Duration::from_secs(1));
        let t0 = 1_700_000_000_000_000;
        (0..100).for_each(|i| a.record(t0 + 10_000 * i, 1_000 + i));
        b.record(t0 + 2_500_000, 50_000);
        b.record(t0 + 100, 9_000);
        let points = merge([&a, &b]);
        assert_eq!(points.len(), 2, "{points:?}");
        assert_eq!((points[0].start_us, points[0].count), (t0, 101));
        assert_eq!((points[1].start_us, points[1].count), (t0 + 2_000_000, 1));
        assert!((8_900..=9_100).contains(&points[0].max_us), "{points:?}");
        assert!((49_000..=51_000).contains(&points[1].p50_us), "{points:?}");
    }

    #[test]
    fn late_and_far_stamps_stay_bounded() {
        let mut t = Timeline::new(Duration::from_secs(1));
        t.record(10_000_000, 5);
        t.record(0, 7); // earlier than the slack: counted in the first interval
        t.record(u64::MAX, 9); // past MAX_SLOTS: left out
        assert!(t.slots.len() <= SLACK as usize + 1);
        t.record(10_000_001, 6); // the same interval as the first, found again
        let points = merge([&t]);
        assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), 3);
        assert_eq!(points.last().map(|p| p.count), Some(2));
    }

    #[test]
    fn a_long_run_is_cut_into_at_most_about_300_points() {
        assert_eq!(
            Timeline::interval_for(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
        assert_eq!(
            Timeline::interval_for(Duration::from_secs(600)),
            Duration::from_secs(2)
        );
        assert_eq!(
            Timeline::interval_for(Duration::from_secs(3600)),
            Duration::from_secs(12)
        );
    }
}

//! Write pacing: how often a busy socket is written.
//!
//! A write costs the kernel about the same whatever it carries (on loopback several µs:
//! the transmit, the receiver's softirq on the sender's core, the reader's wake-up), so
//! under a heavy fan-out the way to spend less per delivery is to put more frames in each
//! write. Every connection carries the earliest time its socket may be written again
//! (`Conn::write_after`); a socket written now may be written again one *write interval*
//! later. The interval adapts to the load ([`Pacer`]):
//!
//! - `(1 + factor) × t`, where `t` is the time one pass over every busy socket takes
//!   (measured), capped at `t + max_write_delay`, while writes carry two or more frames
//!   each on average — a heavy fan-out;
//! - zero (write at once) otherwise — light traffic and many small rooms, where each
//!   socket gets about one frame per write and waiting would add latency and save nothing.
//!
//! Each socket keeps its own write time, so a message waits at most about one interval
//! for its socket's next write; with a shard-wide pause after each flush (an earlier
//! design) it waited the pause plus a whole pass. A flush also writes for a bounded slice
//! at a time (`FLUSH_SLICE` in `state`), so a message arriving mid-pass is queued within
//! half a millisecond and goes out with the rest of that pass. Spreading the writes evenly
//! over the interval (a token bucket) was measured too and cost more CPU for no better
//! tail: on loopback the writer pays for waking the reader, and a reader kept busy by a
//! run of writes needs fewer wake-ups (PERF.md).

use std::time::{Duration, Instant};

use super::index::Slot;

/// Microseconds on the shard's clock (since the process' metrics epoch).
pub(crate) type Micros = u64;

/// The shard's clock for write pacing: microseconds since the metrics epoch (shared by
/// every shard), in a `u64`, so a connection stores its next write time in 8 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    /// The clock of a new shard, on the epoch of the metrics' stamps
    /// ([`crate::metrics::clock_epoch`]): `now() + 1` is a delivery-latency stamp.
    pub fn new() -> Self {
        Clock {
            epoch: crate::metrics::clock_epoch(),
        }
    }

    /// Now, in microseconds since the shard started.
    pub fn now(&self) -> Micros {
        self.micros(Instant::now())
    }

    /// `at`, in microseconds since the shard started (0 for earlier instants).
    pub fn micros(&self, at: Instant) -> Micros {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant of `micros` on this clock.
    pub fn instant(&self, micros: Micros) -> Instant {
        self.epoch + Duration::from_micros(micros)
    }
}

/// Connections with frames queued and not yet written, with the earliest time any of
/// them may be written (so a flush with nothing due costs one comparison).
#[derive(Debug)]
pub(crate) struct DirtyList {
    slots: Vec<Slot>,
    earliest: Micros,
}

impl Default for DirtyList {
    fn default() -> Self {
        DirtyList {
            slots: Vec::new(),
            earliest: Micros::MAX,
        }
    }
}

impl DirtyList {
    /// Adds a connection that may be written from `write_after` on. The caller keeps a
    /// connection in the list at most once (`Conn::dirty`).
    pub fn push(&mut self, slot: Slot, write_after: Micros) {
        self.slots.push(slot);
        self.earliest = self.earliest.min(write_after);
    }

    /// Lowers the earliest write time (a connection already in the list became urgent).
    pub fn expedite(&mut self, write_after: Micros) {
        self.earliest = self.earliest.min(write_after);
    }

    /// Connections in the list.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// When the first connection in the list may be written, if any is listed.
    pub fn earliest(&self) -> Option<Micros> {
        (!self.slots.is_empty()).then_some(self.earliest)
    }

    /// Keeps the connections for which `keep` returns `Some(write_after)`, drops the
    /// others, and recomputes the earliest write time.
    pub fn retain(&mut self, mut keep: impl FnMut(Slot) -> Option<Micros>) {
        let mut earliest = Micros::MAX;
        self.slots.retain(|&slot| match keep(slot) {
            Some(after) => {
                earliest = earliest.min(after);
                true
            }
            None => false,
        });
        self.earliest = earliest;
    }
}

/// Writes that close a measurement window of the [`Pacer`].
const WINDOW_SOCKETS: usize = 256;
/// The longest measurement window.
const WINDOW_MAX: Duration = Duration::from_millis(20);

/// Chooses the write interval from what recent flushes cost and carried.
#[derive(Debug)]
pub(crate) struct Pacer {
    factor: u32,
    max_delay: Duration,
    interval: Duration,
    window: Window,
}

/// What the flushes since the window opened wrote.
#[derive(Debug, Default)]
struct Window {
    opened: Option<Instant>,
    sockets: usize,
    frames: usize,
    cost: Duration,
    /// The most connections seen waiting at once: the size of a pass.
    busy: usize,
}

impl Pacer {
    /// `factor` 0 turns pacing off (every flush writes every dirty socket).
    pub fn new(factor: u32, max_delay: Duration) -> Self {
        Pacer {
            factor,
            max_delay,
            interval: Duration::ZERO,
            window: Window::default(),
        }
    }

    /// The current write interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Records a flush that found `busy` connections waiting and wrote `sockets` of them,
    /// `frames` frames in all, in `cost`; may change the interval.
    pub fn record(
        &mut self,
        now: Instant,
        busy: usize,
        sockets: usize,
        frames: usize,
        cost: Duration,
    ) {
        if self.factor == 0 || sockets == 0 {
            return;
        }
        let w = &mut self.window;
        let opened = *w.opened.get_or_insert(now);
        w.sockets += sockets;
        w.frames += frames;
        w.cost += cost;
        w.busy = w.busy.max(busy);
        if w.sockets < WINDOW_SOCKETS && now.saturating_duration_since(opened) < WINDOW_MAX {
            return;
        }
        let w = std::mem::take(&mut self.window);
        self.interval = if w.frames >= 2 * w.sockets {
            let per_write = w.cost / u32::try_from(w.sockets).unwrap_or(u32::MAX);
            let pass = per_write.saturating_mul(u32::try_from(w.busy).unwrap_or(u32::MAX));
            (pass * (1 + self.factor)).min(pass + self.max_delay)
        } else {
            Duration::ZERO
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dirty_list_knows_its_earliest_write() {
        let mut list = DirtyList::default();
        assert_eq!(list.earliest(), None);
        list.push(1, 500);
        list.push(2, 200);
        assert_eq!(list.earliest(), Some(200));
        list.retain(|s| (s == 1).then_some(500));
        assert_eq!((list.len(), list.earliest()), (1, Some(500)));
        list.expedite(0);
        assert_eq!(list.earliest(), Some(0));
        list.retain(|_| None);
        assert!(list.is_empty());
        assert_eq!(list.earliest(), None);
    }

    #[test]
    fn heavy_fan_out_gets_an_interval_of_factor_plus_one_passes_capped() {
        let t0 = Instant::now();
        // 1,000 busy sockets, 4 µs a write, 10 frames a write: a pass takes 4 ms.
        let mut pacer = Pacer::new(3, Duration::from_millis(50));
        pacer.record(t0, 1000, 300, 3000, Duration::from_micros(1200));
        assert_eq!(pacer.interval(), Duration::from_millis(16));
        // The cap: a pass plus the longest delay.
        let mut pacer = Pacer::new(3, Duration::from_millis(5));
        pacer.record(t0, 1000, 300, 3000, Duration::from_micros(1200));
        assert_eq!(pacer.interval(), Duration::from_millis(9));
    }

    #[test]
    fn one_frame_per_write_means_no_waiting() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(3, Duration::from_millis(5));
        pacer.record(t0, 1000, 300, 3000, Duration::from_micros(1200));
        assert!(pacer.interval() > Duration::ZERO);
        pacer.record(t0, 5000, 300, 320, Duration::from_micros(1200));
        assert_eq!(pacer.interval(), Duration::ZERO);
    }

    #[test]
    fn small_windows_wait_for_enough_writes_or_time() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(3, Duration::from_millis(5));
        pacer.record(t0, 1000, 100, 1000, Duration::from_micros(400));
        assert_eq!(pacer.interval(), Duration::ZERO, "window still open");
        pacer.record(t0 + WINDOW_MAX, 1000, 10, 100, Duration::from_micros(40));
        assert!(pacer.interval() > Duration::ZERO, "closed by time");
    }

    #[test]
    fn factor_zero_never_paces() {
        let mut pacer = Pacer::new(0, Duration::from_millis(5));
        pacer.record(Instant::now(), 1000, 1000, 20_000, Duration::from_millis(4));
        assert_eq!(pacer.interval(), Duration::ZERO);
    }

    #[test]
    fn the_clock_round_trips() {
        let clock = Clock::new();
        let later = clock.now() + 1500;
        assert_eq!(clock.micros(clock.instant(later)), later);
    }
}

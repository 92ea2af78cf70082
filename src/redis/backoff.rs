//! Pacing helpers: reconnect backoff and rate-limited logging.
//!
//! [`Backoff`] is owned by one task (no sharing). [`LogLimiter`] is lock-free and may be hit
//! from any thread (the publish path uses it from callers' threads).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Capped exponential backoff with "equal jitter": attempt `n` waits a random duration in
/// `[d/2, d]` where `d = min(max, min · 2ⁿ)`, so a fleet of nodes does not reconnect in
/// lockstep after a Redis restart.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        // RandomState is seeded per process from the OS; good enough for jitter.
        let seed = RandomState::new().build_hasher().finish() | 1;
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
            rng: seed,
        }
    }

    /// The delay before the next attempt; grows until `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self.min.saturating_mul(factor).min(self.max);
        let half = ceiling / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            self.next_random() % spread
        };
        half.saturating_add(Duration::from_nanos(jitter))
    }

    /// Forget past failures (after a successful connection).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last reset.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

/// Lets one log line through per `every`, counting the ones it holds back.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    epoch: Instant,
    every_ms: u64,
    /// Milliseconds since `epoch` of the last line let through; `u64::MAX` = never.
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub(crate) fn new(every: Duration) -> Self {
        LogLimiter {
            epoch: Instant::now(),
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            last_ms: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed_since_last_line)` when this event may be logged, `None` otherwise.
    pub(crate) fn check(&self) -> Option<u64> {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= self.every_ms;
        if due
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_jittered_and_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut ceiling = Duration::from_millis(100);
        for _ in 0..12 {
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(Duration::from_secs(2));
        }
        assert_eq!(b.attempts(), 12);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn backoff_survives_extremes() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::ZERO);
        let mut b = Backoff::new(Duration::from_secs(u64::MAX / 4), Duration::MAX);
        for _ in 0..40 {
            b.next_delay();
        }
    }

    #[test]
    fn limiter_lets_one_through_per_window() {
        let l = LogLimiter::new(Duration::from_millis(50));
        assert_eq!(l.check(), Some(0));
        assert_eq!(l.check(), None);
        assert_eq!(l.check(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(l.check(), Some(2));
    }
}

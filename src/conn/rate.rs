//! A connection's inbound rate limit: a token bucket refilled continuously at `rate`
//! messages per second, holding at most `burst`. Allocated only when a limit is set, on
//! the connection's first message.

use std::time::Instant;

/// Tokens and the time they were last counted.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` at `now`.
    pub fn full(now: Instant, burst: u32) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes one token at `now` (after refilling at `rate` per second up to `burst`);
    /// false when none is left.
    pub fn take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.last = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(t0, 5);
        assert!((0..5).all(|_| bucket.take(t0, 10, 5)));
        assert!(!bucket.take(t0, 10, 5), "burst spent");
        assert!(
            bucket.take(t0 + Duration::from_millis(100), 10, 5),
            "one refilled"
        );
        assert!(!bucket.take(t0 + Duration::from_millis(100), 10, 5));
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            (0..10).filter(|_| bucket.take(later, 10, 5)).count(),
            5,
            "capped"
        );
    }
}

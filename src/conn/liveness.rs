//! Transport liveness: when a connection last sent any bytes, and whether a ping is
//! waiting for its pong. Data frames count for the heartbeat in [`super::machine`]; here
//! every byte counts (pongs included).

use std::time::{Duration, Instant};

/// What the idle sweep must do with one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// It spoke recently enough.
    Fine,
    /// Quiet for half the idle timeout: send a transport ping (once).
    Ping,
    /// Silent for the whole idle timeout: drop it without a close handshake (as
    /// uWebSockets does).
    Drop,
}

/// Last bytes received and the ping in flight.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    last_rx: Instant,
    ping_sent: bool,
}

impl Liveness {
    /// A connection that spoke at `now`.
    pub fn new(now: Instant) -> Self {
        Liveness {
            last_rx: now,
            ping_sent: false,
        }
    }

    /// Bytes arrived at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_rx = now;
        self.ping_sent = false;
    }

    /// The decision at `now` for an idle timeout of `idle` (pings only if `send_pings`).
    pub fn check(&mut self, now: Instant, idle: Duration, send_pings: bool) -> Idle {
        let quiet = now.saturating_duration_since(self.last_rx);
        if quiet >= idle {
            return Idle::Drop;
        }
        if send_pings && !self.ping_sent && quiet >= idle / 2 {
            self.ping_sent = true;
            return Idle::Ping;
        }
        Idle::Fine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    #[test]
    fn pings_once_at_half_then_drops_at_the_timeout() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.check(t0 + IDLE / 4, IDLE, true), Idle::Fine);
        assert_eq!(l.check(t0 + IDLE / 2, IDLE, true), Idle::Ping);
        assert_eq!(l.check(t0 + IDLE / 2, IDLE, true), Idle::Fine, "one ping");
        assert_eq!(l.check(t0 + IDLE, IDLE, true), Idle::Drop);
    }

    #[test]
    fn any_bytes_reset_the_clock_and_the_ping() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.check(t0 + IDLE / 2, IDLE, true), Idle::Ping);
        l.heard(t0 + IDLE / 2);
        assert_eq!(l.check(t0 + IDLE, IDLE, true), Idle::Ping);
        assert_eq!(l.check(t0 + IDLE / 2 + IDLE, IDLE, false), Idle::Drop);
    }

    #[test]
    fn without_pings_only_the_timeout_acts() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.check(t0 + IDLE * 9 / 10, IDLE, false), Idle::Fine);
    }
}

//! Periodic sweeps over a shard's connections: the Ignis heartbeat timeout (4002) and the
//! transport idle timeout (ping at half, drop at the end), plus the shutdown close.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::state::{Shard, ShardState};
use crate::conn::liveness::Idle;
use crate::protocol::CloseReason;

impl Shard {
    /// Closes authenticated clients silent longer than the heartbeat timeout (4002).
    pub fn sweep_heartbeats(&self, now: Instant) {
        let timeout = self.config().heartbeat_timeout;
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        for (slot, entry) in conns.iter_mut() {
            if entry.conn.check_heartbeat(now, timeout) {
                entry.closed(slot, dirty);
                self.metrics.timeouts.inc();
            }
        }
    }

    /// Transport liveness: pings quiet connections, drops those silent past the idle
    /// timeout (like uWebSockets, without a close handshake).
    pub fn sweep_idle(&self, now: Instant) {
        let (idle, pings) = (self.config().idle_timeout, self.config().send_pings);
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        for (slot, entry) in conns.iter_mut() {
            match entry.conn.check_idle(now, idle, pings) {
                Idle::Fine => {}
                Idle::Ping => entry.mark_dirty(slot, dirty),
                Idle::Drop => entry.wake(),
            }
        }
    }

    /// Closes every connection with 1001 "Server shutting down".
    pub fn close_all(&self) {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        for (slot, entry) in conns.iter_mut() {
            if entry.conn.close(CloseReason::ShuttingDown) {
                entry.closed(slot, dirty);
            }
        }
    }
}

/// Runs the heartbeat sweep every `heartbeat_interval`.
pub(super) async fn heartbeat_sweeps(shard: Rc<Shard>) {
    let period = shard.config().heartbeat_interval;
    every(period, || shard.sweep_heartbeats(Instant::now()), &shard).await;
}

/// Runs the idle sweep four times per idle timeout (never when it is zero).
pub(super) async fn idle_sweeps(shard: Rc<Shard>) {
    let idle = shard.config().idle_timeout;
    if idle.is_zero() {
        return;
    }
    let period = (idle / 4).max(Duration::from_millis(50));
    every(period, || shard.sweep_idle(Instant::now()), &shard).await;
}

/// Calls `sweep` every `period` (first after one period), flushing after each.
async fn every(period: Duration, sweep: impl Fn(), shard: &Shard) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        sweep();
        shard.flush_dirty();
    }
}

//! The `recovery` client: one task per client on a fleet worker, living through many
//! connections. Each connection ("leg") joins the client's room — with `since` once its
//! stream has a position — reads the replay and `ws:joined`, then live messages, and ends
//! one of four ways (`LegEnd`). During [`Phase::Measure`] a joined leg is dropped
//! abruptly ([`WsConn::abort`]: no close frame, TCP reset) after a jittered interval;
//! the client then waits the reconnect delay and connects, authenticates and joins again.
//!
//! # Contract
//!
//! - **Ownership**: the task owns its connection and its [`ClientState`]; the worker's
//!   [`Histograms`] are a thread-local borrowed only inside one synchronous drain; the
//!   only shared state is [`RecoveryLive`] (relaxed atomics, for the progress line and the
//!   phase waits).
//! - **Drops** happen only after this leg's `ws:joined` and only in `Measure`; the interval
//!   is uniform in [0.5, 1.5) × `--drop-every-ms`, drawn anew per leg.
//! - **Failures**: a failed reconnect, a refused or unanswered join, or a connection lost
//!   before its `ws:joined` is a failure in a row; after [`MAX_FAILURES_IN_ROW`] the client
//!   gives up (its end says why). A confirmed join resets the count.
//! - **Stop**: [`Phase::Stop`] ends the client wherever it is — reading (graceful close),
//!   waiting to reconnect, or connecting — so a run is bounded by its phases and the
//!   connect/auth/join timeouts.

use super::state::{ClientState, Histograms, RecoveryClient};
use crate::runtime::Ticker;
use crate::scenario::fleet::Behavior;
use crate::scenario::recovery::checker::JoinOutcome;
use crate::scenario::{End, HEARTBEAT, Phase, heartbeat_phase};
use crate::session::{self, Established, SessionConfig};
use crate::stats::Live;
use crate::ws::WsConn;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Failed attempts in a row (reconnect, join, or a connection lost before its join was
/// confirmed) after which a client gives up.
pub const MAX_FAILURES_IN_ROW: u32 = 3;
/// How long the final graceful close may take.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

thread_local! {
    /// This worker's live-latency and time-to-recover histograms.
    static HISTS: RefCell<Histograms> = RefCell::new(Histograms::default());
}

/// Counters shared with the main thread (progress line, phase waits).
#[derive(Debug, Default)]
pub struct RecoveryLive {
    /// Clients whose first join was confirmed.
    pub joined: AtomicU64,
    /// Clients that gave up.
    pub gave_up: AtomicU64,
    /// Abrupt drops made.
    pub drops: AtomicU64,
    /// Rejoins confirmed (`ws:joined` to a join with `since`).
    pub rejoins: AtomicU64,
    /// Of those, `recovered:true`.
    pub recovered: AtomicU64,
    /// Clients between a drop (or loss) and their next confirmed join.
    pub away: AtomicU64,
}

/// The timing of every client.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Mean interval between a confirmed join and the abrupt drop.
    pub drop_every: Duration,
    /// Wait between a drop and the reconnect.
    pub reconnect_delay: Duration,
    /// Limit for join sent → `ws:joined` (replay included).
    pub join_timeout: Duration,
    /// Heartbeat period (`None`: none).
    pub heartbeat: Option<Duration>,
}

/// The `recovery` behavior shared by every client.
pub struct Recovery {
    /// The run's phase.
    pub phase: watch::Receiver<Phase>,
    /// How to reconnect.
    pub session: Arc<SessionConfig>,
    /// Room names; client `i` is in room `i % rooms.len()`.
    pub rooms: Vec<String>,
    /// Timing.
    pub timing: Timing,
    /// The run's live counters (`frames` counts deliveries, for the drain).
    pub live: Arc<Live>,
    /// The scenario's own counters.
    pub counters: Arc<RecoveryLive>,
}

/// How one connection ended.
#[derive(Debug)]
enum LegEnd {
    /// The scenario stopped.
    Stopped,
    /// We dropped it on purpose.
    Dropped,
    /// The server or the network ended it.
    Lost {
        /// How.
        end: End,
        /// Whether its join had been confirmed.
        confirmed: bool,
    },
    /// The join was refused or not answered in time.
    JoinFailed(String),
}

impl Behavior for Recovery {
    type Client = RecoveryClient;
    type Worker = Histograms;

    async fn run(self: Arc<Self>, est: Established, i: u64) -> RecoveryClient {
        let room = (i % self.rooms.len().max(1) as u64) as usize;
        let mut st = ClientState::new(room, &self.rooms[room]);
        let mut conn = est.conn;
        let mut rejoin_started = None;
        let mut failures = 0u32;
        let end = loop {
            let leg = self.leg(&mut conn, &mut st, rejoin_started, i).await;
            st.disconnected();
            if st.confirmed() {
                failures = 0;
            }
            if !matches!(leg, LegEnd::Stopped) && st.leave() {
                Live::add(&self.counters.away, 1);
            }
            if let Some(end) = self.after_leg(leg, conn, &mut st, &mut failures).await {
                break end;
            }
            match self.reconnect(i, &mut st, &mut failures).await {
                Ok((c, t0)) => (conn, rejoin_started) = (c, Some(t0)),
                Err(end) => break end,
            }
        };
        if !matches!(end, End::Stopped) {
            Live::add(&self.counters.gave_up, 1);
        }
        if st.come_back() {
            Live::dec(&self.counters.away);
        }
        st.finish(end)
    }

    fn finish_worker(&self) -> Histograms {
        HISTS.take()
    }
}

impl Recovery {
    /// Counts how a leg ended and disposes of its connection; `Some` ends the client.
    async fn after_leg(
        &self,
        leg: LegEnd,
        conn: WsConn,
        st: &mut ClientState,
        failures: &mut u32,
    ) -> Option<End> {
        match leg {
            LegEnd::Stopped => {
                conn.close(1000, CLOSE_WAIT).await;
                return Some(End::Stopped);
            }
            LegEnd::Dropped => {
                conn.abort();
                st.out().drops += 1;
                Live::add(&self.counters.drops, 1);
            }
            LegEnd::Lost { end, confirmed } => {
                conn.abort();
                *st.out().lost.entry(end.key()).or_default() += 1;
                *failures += u32::from(!confirmed);
                if *failures >= MAX_FAILURES_IN_ROW {
                    return Some(end);
                }
            }
            LegEnd::JoinFailed(why) => {
                conn.abort();
                let out = st.out();
                out.join_failures += 1;
                out.first_join_failure.get_or_insert_with(|| why.clone());
                *failures += 1;
                if *failures >= MAX_FAILURES_IN_ROW {
                    return Some(End::Error(format!("join failed: {why}")));
                }
            }
        }
        None
    }

    /// Waits the reconnect delay, then connects and authenticates again (retrying after
    /// the delay); returns the connection and when the attempt that made it started.
    async fn reconnect(
        &self,
        i: u64,
        st: &mut ClientState,
        failures: &mut u32,
    ) -> Result<(WsConn, Instant), End> {
        let mut phase = self.phase.clone();
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut phase) => return Err(End::Stopped),
                _ = tokio::time::sleep(self.timing.reconnect_delay) => {}
            }
            let t0 = Instant::now();
            st.out().reconnects += 1;
            let attempt = tokio::select! {
                biased;
                _ = stopped(&mut phase) => return Err(End::Stopped),
                r = session::establish(&self.session, i) => r,
            };
            match attempt {
                Ok(est) => return Ok((est.conn, t0)),
                Err(e) => {
                    e.record(&mut st.out().reconnect_failures);
                    *failures += 1;
                    if *failures >= MAX_FAILURES_IN_ROW {
                        return Err(End::Error(format!("reconnect failed: {e}")));
                    }
                }
            }
        }
    }

    /// One connection: join, replay, `ws:joined`, live messages, until it ends.
    async fn leg(
        &self,
        conn: &mut WsConn,
        st: &mut ClientState,
        rejoin_started: Option<Instant>,
        i: u64,
    ) -> LegEnd {
        let join = st.join_message();
        if let Err(e) = conn.send_text(join.as_bytes()).await {
            return lost(End::Error(e.to_string()), false);
        }
        let join_deadline = Instant::now() + self.timing.join_timeout;
        let hb_every = self.timing.heartbeat;
        let mut hb = Ticker::new(hb_every, heartbeat_phase(hb_every, i));
        let mut phase = self.phase.clone();
        let mut drop_at: Option<Instant> = None;
        loop {
            drop_at = self.schedule_drop(drop_at, st.confirmed(), *phase.borrow());
            let confirmed = st.confirmed();
            tokio::select! {
                biased;
                r = phase.changed() => {
                    if r.is_err() || *phase.borrow() >= Phase::Stop {
                        return LegEnd::Stopped;
                    }
                    continue;
                }
                _ = sleep_until(drop_at), if drop_at.is_some() => return LegEnd::Dropped,
                _ = tokio::time::sleep_until(join_deadline), if !confirmed => {
                    return LegEnd::JoinFailed("no ws:joined within --join-timeout-ms".into());
                }
                _ = hb.tick() => {
                    if let Err(e) = conn.send_text(HEARTBEAT).await {
                        return lost(End::Error(e.to_string()), confirmed);
                    }
                    continue;
                }
                r = conn.readable() => if let Err(e) = r {
                    return lost(End::Error(e.to_string()), confirmed);
                },
            }
            if let Some(end) = self.read(conn, st, rejoin_started).await {
                return end;
            }
        }
    }

    /// Drains what arrived and acts on it; `Some` ends the leg.
    async fn read(
        &self,
        conn: &mut WsConn,
        st: &mut ClientState,
        rejoin_started: Option<Instant>,
    ) -> Option<LegEnd> {
        let before = st.deliveries();
        let drained = HISTS.with_borrow_mut(|h| conn.drain(&mut |m, now| st.on_message(m, now, h)));
        Live::add(&self.live.frames, st.deliveries() - before);
        let d = match drained {
            Ok(d) => d,
            Err(e) => return Some(lost(End::Error(e.to_string()), st.confirmed())),
        };
        Live::add(&self.live.bytes, d.bytes);
        Live::add(&self.live.reads, d.reads);
        if let Some(why) = st.take_join_error() {
            return Some(LegEnd::JoinFailed(why));
        }
        if let Some(outcome) = st.take_joined() {
            self.on_joined(outcome, rejoin_started, st);
        }
        if let Err(e) = conn.flush_control().await {
            return Some(lost(End::Error(e.to_string()), st.confirmed()));
        }
        End::from_status(d.status).map(|end| lost(end, st.confirmed()))
    }

    /// Counts a confirmed join; a recovered rejoin records its time to recover.
    fn on_joined(
        &self,
        outcome: JoinOutcome,
        rejoin_started: Option<Instant>,
        st: &mut ClientState,
    ) {
        let c = &self.counters;
        match (outcome, rejoin_started) {
            // Fresh only before any position: the client's first confirmed join, perhaps after
            // failed attempts.
            (JoinOutcome::Fresh, _) => Live::add(&c.joined, 1),
            (JoinOutcome::Recovered, Some(t0)) => {
                let us = t0.elapsed().as_micros() as u64;
                HISTS.with_borrow_mut(|h| h.recover.record(us));
                Live::add(&c.recovered, 1);
            }
            _ => {}
        }
        if matches!(outcome, JoinOutcome::Recovered | JoinOutcome::Reset) {
            Live::add(&c.rejoins, 1);
        }
        if st.come_back() {
            Live::dec(&c.away);
        }
    }

    /// When this leg drops: drawn once the join is confirmed in `Measure`, forgotten
    /// after it.
    fn schedule_drop(&self, at: Option<Instant>, confirmed: bool, phase: Phase) -> Option<Instant> {
        match phase {
            Phase::Measure if confirmed => at.or_else(|| {
                let jitter = 0.5 + fastrand::f64();
                Some(Instant::now() + self.timing.drop_every.mul_f64(jitter))
            }),
            _ => None,
        }
    }
}

fn lost(end: End, confirmed: bool) -> LegEnd {
    LegEnd::Lost { end, confirmed }
}

/// Completes when the run reaches [`Phase::Stop`] (or its sender is gone).
async fn stopped(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p >= Phase::Stop).await;
}

/// `sleep_until(at)`, or never.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

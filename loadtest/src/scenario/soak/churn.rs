//! The soak's churn population, on a thread of its own (`load-churn`, a worker for the
//! saturation check): for the soak's duration it starts `--churn-rate` cycles per second,
//! each one connect → authenticate → join room `i % K` → read there for
//! `--churn-hold-ms` → leave → graceful close. Client indices start after the steady
//! members', so every token subject is distinct.
//!
//! At most `--max-inflight` cycles are open at once (the load generator's descriptor
//! budget counts them); when that many are, the next one waits, and once the soak's
//! duration has passed no new cycle starts, so the population ends on time however slow
//! the server is. The tally lives on the thread (`Rc<RefCell>`); only [`ChurnLive`] is
//! shared, for the progress line and the series.

use super::super::{End, Endings};
use crate::payload;
use crate::runtime::Pacer;
use crate::scenario::fanout::room_message;
use crate::session::{self, SessionConfig};
use crate::stats::{Failures, Latency, Live};
use crate::ws::{CloseOutcome, WsConn};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The churn counters shared with the main thread.
#[derive(Debug, Default)]
pub struct ChurnLive {
    /// Cycles started.
    pub attempts: AtomicU64,
    /// Cycles that failed to connect or authenticate.
    pub failed: AtomicU64,
    /// Churn connections open now.
    pub open: AtomicU64,
    /// Cycles finished (any outcome).
    pub done: AtomicU64,
}

/// What the population does.
#[derive(Debug, Clone)]
pub struct ChurnPlan {
    /// Cycles started per second.
    pub rate: f64,
    /// No cycle starts after this long.
    pub duration: Duration,
    /// Cycles open at once at most.
    pub inflight: usize,
    /// Time in the room between join and leave.
    pub hold: Duration,
    /// Limit of the graceful close.
    pub close_timeout: Duration,
    /// Client index of the first cycle.
    pub first_index: u64,
    /// `(join, leave)` messages per room.
    pub rooms: Arc<[(String, String)]>,
}

impl ChurnPlan {
    /// Cycles planned: rate × duration.
    pub fn planned(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round() as u64
    }

    /// `(join, leave)` message pairs for `rooms`.
    pub fn room_messages(rooms: &[String]) -> Arc<[(String, String)]> {
        rooms
            .iter()
            .map(|r| (room_message("join", r), room_message("leave", r)))
            .collect()
    }
}

/// The population's tally.
#[derive(Debug, Default)]
pub struct ChurnTally {
    /// Cycles started.
    pub attempted: u64,
    /// Cycles that authenticated.
    pub succeeded: u64,
    /// Connect and authentication failures.
    pub failures: Failures,
    /// TCP connect + upgrade.
    pub connect: Latency,
    /// authenticate → connected.
    pub auth: Latency,
    /// Whole cycle, connect → closed.
    pub cycle: Latency,
    /// Connections that ended before our close, by [`End::key`] (`server_close_<code>`,
    /// `server_eof`, `error`).
    pub unexpected_ends: Endings,
    /// The first unexpected end's text.
    pub first_unexpected: Option<String>,
    /// Closes answered with a close frame and a TCP close.
    pub closes_clean: u64,
    /// Closes where the server dropped TCP without a close frame.
    pub closes_without_frame: u64,
    /// Closes that timed out.
    pub closes_timed_out: u64,
    /// Measured messages received while in the room (proof the joins took effect).
    pub deliveries: u64,
    /// The server's `error` events.
    pub error_events: u64,
}

/// What one hold saw.
#[derive(Default)]
struct Seen {
    deliveries: u64,
    errors: u64,
}

/// Runs the population until its duration passed and every cycle ended.
pub async fn population(
    plan: ChurnPlan,
    session: Arc<SessionConfig>,
    live: Arc<ChurnLive>,
) -> ChurnTally {
    let plan = Rc::new(plan);
    let tally = Rc::new(RefCell::new(ChurnTally::default()));
    let slots = Arc::new(Semaphore::new(plan.inflight.max(1)));
    let deadline = Instant::now() + plan.duration;
    let mut pacer = Pacer::new(plan.rate, plan.planned());
    let mut tasks = Vec::new();
    let mut k = 0u64;
    'pace: loop {
        let due = pacer.next().await;
        if due == 0 {
            break;
        }
        for _ in 0..due {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            if Instant::now() >= deadline {
                break 'pace;
            }
            let i = plan.first_index + k;
            k += 1;
            let (plan, session, live, tally) =
                (plan.clone(), session.clone(), live.clone(), tally.clone());
            tasks.push(tokio::task::spawn_local(async move {
                cycle(i, &plan, &session, &live, &tally).await;
                drop(permit);
            }));
        }
        tasks.retain(|t| !t.is_finished());
    }
    for t in tasks {
        let _ = t.await;
    }
    tally.take()
}

/// One cycle; everything it sees goes into `tally`.
async fn cycle(
    i: u64,
    plan: &ChurnPlan,
    session: &SessionConfig,
    live: &ChurnLive,
    tally: &RefCell<ChurnTally>,
) {
    Live::add(&live.attempts, 1);
    tally.borrow_mut().attempted += 1;
    let t0 = Instant::now();
    let est = match session::establish(session, i).await {
        Ok(est) => est,
        Err(e) => {
            e.record(&mut tally.borrow_mut().failures);
            Live::add(&live.failed, 1);
            Live::add(&live.done, 1);
            return;
        }
    };
    {
        let mut t = tally.borrow_mut();
        t.succeeded += 1;
        t.connect.record(est.connect_us);
        t.auth.record(est.auth_us);
    }
    Live::add(&live.open, 1);
    let (join, leave) = &plan.rooms[(i % plan.rooms.len() as u64) as usize];
    let mut conn = est.conn;
    let held = in_room(&mut conn, join, leave, plan.hold).await;
    let close = match &held {
        Ok(_) => Some(conn.close(1000, plan.close_timeout).await),
        Err(_) => None,
    };
    Live::dec(&live.open);
    Live::add(&live.done, 1);
    record(&mut tally.borrow_mut(), held, close, t0);
}

fn record(t: &mut ChurnTally, held: Result<Seen, End>, close: Option<CloseOutcome>, t0: Instant) {
    t.cycle.record(t0.elapsed().as_micros() as u64);
    match held {
        Ok(seen) => {
            t.deliveries += seen.deliveries;
            t.error_events += seen.errors;
        }
        Err(end) => {
            t.first_unexpected.get_or_insert_with(|| format!("{end:?}"));
            *t.unexpected_ends.entry(end.key()).or_default() += 1;
        }
    }
    match close.map(|c| (c.timed_out, c.server_frame.is_some() && c.eof)) {
        None => {}
        Some((true, _)) => t.closes_timed_out += 1,
        Some((false, true)) => t.closes_clean += 1,
        Some((false, false)) => t.closes_without_frame += 1,
    }
}

/// Joins, reads for `hold` (answering pings), leaves. `Err` is how the connection ended
/// when it ended early.
async fn in_room(conn: &mut WsConn, join: &str, leave: &str, hold: Duration) -> Result<Seen, End> {
    let send_err = |e: std::io::Error| End::Error(e.to_string());
    conn.send_text(join.as_bytes()).await.map_err(send_err)?;
    let mut seen = Seen::default();
    let until = tokio::time::Instant::now() + hold;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            r = conn.readable() => r.map_err(send_err)?,
        }
        let drained = conn
            .drain(&mut |m, _| {
                seen.deliveries += u64::from(payload::scan(m).is_some());
                seen.errors += u64::from(payload::is_error_event(m));
            })
            .map_err(|e| End::Error(e.to_string()))?;
        conn.flush_control().await.map_err(send_err)?;
        if let Some(end) = End::from_status(drained.status) {
            return Err(end);
        }
    }
    conn.send_text(leave.as_bytes()).await.map_err(send_err)?;
    Ok(seen)
}

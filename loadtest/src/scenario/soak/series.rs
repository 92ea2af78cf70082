//! The soak's time series: a task on the main thread's runtime reads the server's RSS
//! (`VmRSS`), open descriptors and CPU time every `--sample-s`, together with the
//! client-side counters (members held, churn cycles, messages published and delivered).
//!
//! The task owns the points; the scenario only moves it through [`Stage`]s (each point
//! records the stage it was taken in) and takes the points back with
//! [`Sampler::finish`], which adds one last point. A server that vanished leaves a gap:
//! its readings are skipped, the run goes on and the verdict sees fewer points.

use super::churn::ChurnLive;
use crate::proc;
use crate::stats::Live;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// Where the run is when a point is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Members connecting, joining, warming up.
    #[default]
    Setup,
    /// Publishing and churn.
    Soak,
    /// Publishing and churn ended; deliveries drain, descriptors settle.
    Drain,
    /// Members closing, and after.
    Close,
}

/// One sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Point {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Stage of the run.
    pub stage: Stage,
    /// Server `VmRSS`, bytes.
    pub rss_bytes: u64,
    /// Server open descriptors.
    pub fds: u64,
    /// Server CPU seconds since it started.
    pub cpu_s: f64,
    /// Steady members open.
    pub held: u64,
    /// Churn connections open.
    pub churn_open: u64,
    /// Churn cycles finished so far (any outcome).
    pub churn_cycles: u64,
    /// Measured messages published so far.
    pub published: u64,
    /// Measured messages delivered to members so far.
    pub deliveries: u64,
    /// The load generator's own open descriptors.
    pub client_fds: u64,
}

/// Client-side counters a point reads.
#[derive(Clone)]
pub struct Counters {
    /// Members and publisher.
    pub live: Arc<Live>,
    /// Churn population.
    pub churn: Arc<ChurnLive>,
}

/// The sampling task.
pub struct Sampler {
    stage: watch::Sender<Stage>,
    latest: watch::Receiver<Option<Point>>,
    task: JoinHandle<Vec<Point>>,
    t0: Instant,
}

impl Sampler {
    /// Takes the first point now (before the caller goes on) and samples `pid` every
    /// `period` from then on; the run's clock starts now.
    pub fn start(pid: u32, period: Duration, counters: Counters) -> Sampler {
        let t0 = Instant::now();
        let first = read(pid, &counters, t0, Stage::Setup);
        let (stage, stage_rx) = watch::channel(Stage::Setup);
        let (latest_tx, latest) = watch::channel(first);
        let task = tokio::spawn(run(pid, period, counters, t0, stage_rx, latest_tx));
        Sampler {
            stage,
            latest,
            task,
            t0,
        }
    }

    /// Seconds since the run started (the points' clock).
    pub fn now_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Moves to `stage`.
    pub fn enter(&self, stage: Stage) {
        let _ = self.stage.send(stage);
    }

    /// The most recent point, if any.
    pub fn latest(&self) -> Option<Point> {
        *self.latest.borrow()
    }

    /// Takes a last point and returns them all.
    pub async fn finish(self) -> Vec<Point> {
        drop(self.stage);
        self.task.await.unwrap_or_default()
    }
}

async fn run(
    pid: u32,
    period: Duration,
    counters: Counters,
    t0: Instant,
    mut stage: watch::Receiver<Stage>,
    latest: watch::Sender<Option<Point>>,
) -> Vec<Point> {
    let mut points: Vec<Point> = latest.borrow().iter().copied().collect();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let done = tokio::select! {
            _ = tick.tick() => false,
            changed = stage.changed() => changed.is_err(),
        };
        if let Some(p) = read(pid, &counters, t0, *stage.borrow()) {
            let _ = latest.send(Some(p));
            points.push(p);
        }
        if done {
            return points;
        }
    }
}

/// One point now (`None` if the server cannot be read).
fn read(pid: u32, c: &Counters, t0: Instant, stage: Stage) -> Option<Point> {
    let g = proc::gauge(pid).ok()?;
    Some(Point {
        t_s: t0.elapsed().as_secs_f64(),
        stage,
        rss_bytes: g.rss_bytes,
        fds: g.fds,
        cpu_s: g.cpu_s,
        held: Live::get(&c.live.open),
        churn_open: Live::get(&c.churn.open),
        churn_cycles: Live::get(&c.churn.done),
        published: Live::get(&c.live.sent),
        deliveries: Live::get(&c.live.frames),
        client_fds: proc::fd_count("self").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn samples_this_process_with_stages_and_a_last_point() {
        let counters = Counters {
            live: Arc::new(Live::default()),
            churn: Arc::new(ChurnLive::default()),
        };
        let live = counters.live.clone();
        let s = Sampler::start(std::process::id(), Duration::from_millis(20), counters);
        Live::add(&live.open, 3);
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.enter(Stage::Soak);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(s.latest().is_some());
        let points = s.finish().await;
        assert!(points.len() >= 4, "{}", points.len());
        assert_eq!(
            (points[0].stage, points[0].held),
            (Stage::Setup, 0),
            "the first point is taken in start()"
        );
        assert_eq!(points.last().map(|p| p.stage), Some(Stage::Soak));
        assert!(points.iter().all(|p| p.rss_bytes > 0 && p.fds > 0));
        assert!(points[1..].iter().all(|p| p.held == 3));
        assert!(points.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    }
}

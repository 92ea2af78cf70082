//! The load generator's threads and clocks.
//!
//! Workers: `--threads N` OS threads, each running its own current-thread tokio runtime
//! with a `LocalSet`. A connection lives on one worker for its whole life, so per-thread
//! state (histograms, the read buffer) needs no lock, and workers never steal each other's
//! tasks. Sidecars (publisher, subscriber) are built the same way. Every thread registers
//! its kernel tid in the [`ThreadRegistry`] so the meter can read its CPU time, and runs a
//! probe measuring how late its timers fire (event-loop lag).

use crate::error::{Error, Result};
use crate::proc;
use crate::stats::Latency;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// What a thread does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Drives client connections.
    Worker,
    /// Publisher or subscriber.
    Sidecar,
}

/// A registered thread.
#[derive(Debug, Clone)]
pub struct ThreadEntry {
    /// Thread name.
    pub name: String,
    /// Kernel thread id.
    pub tid: i32,
    /// Its role.
    pub role: Role,
    /// CPU seconds at exit, once the thread has ended (its `/proc` entry is gone then).
    pub final_cpu_s: Option<f64>,
}

/// Threads of this process that the meter accounts for.
#[derive(Debug, Clone, Default)]
pub struct ThreadRegistry(Arc<Mutex<Vec<ThreadEntry>>>);

impl ThreadRegistry {
    fn register(&self, e: ThreadEntry) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    }

    fn finish(&self, tid: i32) {
        let cpu = proc::thread_cpu_s(tid);
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = v.iter_mut().find(|e| e.tid == tid) {
            e.final_cpu_s = cpu;
        }
    }

    /// Registered threads so far.
    pub fn entries(&self) -> Vec<ThreadEntry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a thread hands back when its future completes.
pub struct ThreadOutput<R> {
    /// The future's output.
    pub result: R,
    /// Thread name.
    pub name: String,
    /// Lateness of a 10 ms timer on this thread, µs.
    pub lag: Latency,
}

/// Threads started by [`spawn_thread`] / [`spawn_workers`], joined asynchronously.
pub struct Spawned<R> {
    rxs: Vec<(String, oneshot::Receiver<ThreadOutput<R>>)>,
}

impl<R> Spawned<R> {
    /// Waits for every thread's output (in spawn order).
    pub async fn join(self) -> Result<Vec<ThreadOutput<R>>> {
        let mut out = Vec::with_capacity(self.rxs.len());
        for (name, rx) in self.rxs {
            out.push(rx.await.map_err(|_| Error::Worker(name))?);
        }
        Ok(out)
    }
}

/// Starts a named thread running `make()` on its own current-thread runtime.
pub fn spawn_thread<R, F, Fut>(
    name: String,
    role: Role,
    registry: &ThreadRegistry,
    make: F,
) -> Result<Spawned<R>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
    R: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let registry = registry.clone();
    let thread_name = name.clone();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let tid = proc::current_tid();
            registry.register(ThreadEntry {
                name: thread_name.clone(),
                tid,
                role,
                final_cpu_s: None,
            });
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return; // the receiver reports the thread as dead
            };
            let local = tokio::task::LocalSet::new();
            let (result, lag) = local.block_on(&rt, with_lag_probe(make()));
            registry.finish(tid);
            let _ = tx.send(ThreadOutput {
                result,
                name: thread_name,
                lag,
            });
        })
        .map_err(Error::io(format!("spawning thread {name}")))?;
    Ok(Spawned {
        rxs: vec![(name, rx)],
    })
}

/// Starts `n` worker threads `load-worker-{i}`, each running `make(i)`.
pub fn spawn_workers<R, F, Fut>(n: usize, registry: &ThreadRegistry, make: F) -> Result<Spawned<R>>
where
    F: Fn(usize) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = R> + 'static,
    R: Send + 'static,
{
    let mut all = Spawned {
        rxs: Vec::with_capacity(n),
    };
    for i in 0..n {
        let make = make.clone();
        let s = spawn_thread(
            format!("load-worker-{i}"),
            Role::Worker,
            registry,
            move || make(i),
        )?;
        all.rxs.extend(s.rxs);
    }
    Ok(all)
}

/// Period of the event-loop lag probe.
const LAG_PERIOD: Duration = Duration::from_millis(10);

async fn with_lag_probe<R>(fut: impl Future<Output = R>) -> (R, Latency) {
    let lag = Rc::new(RefCell::new(Latency::new()));
    let probe = tokio::task::spawn_local(lag_probe(lag.clone()));
    let result = fut.await;
    probe.abort();
    let lag = lag.borrow().clone();
    (result, lag)
}

async fn lag_probe(lag: Rc<RefCell<Latency>>) {
    loop {
        let due = Instant::now() + LAG_PERIOD;
        tokio::time::sleep_until(due).await;
        lag.borrow_mut().record(due.elapsed().as_micros() as u64);
    }
}

/// Issues items at a steady rate: item `k` is due at `k / rate` seconds after creation.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    per_sec: f64,
    issued: u64,
    limit: u64,
}

impl Pacer {
    /// `per_sec` items per second, `limit` items in total.
    pub fn new(per_sec: f64, limit: u64) -> Self {
        Pacer {
            start: Instant::now(),
            per_sec: per_sec.max(1e-9),
            issued: 0,
            limit,
        }
    }

    /// Waits until at least one item is due and returns how many are due now (more than
    /// one when the caller fell behind or the rate exceeds the timer resolution); `0` once
    /// `limit` items were issued.
    pub async fn next(&mut self) -> u64 {
        loop {
            if self.issued >= self.limit {
                return 0;
            }
            let due =
                ((self.start.elapsed().as_secs_f64() * self.per_sec) as u64 + 1).min(self.limit);
            if due > self.issued {
                let n = due - self.issued;
                self.issued = due;
                return n;
            }
            let at = self.start + Duration::from_secs_f64(self.issued as f64 / self.per_sec);
            tokio::time::sleep_until(at).await;
        }
    }

    /// Items issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }
}

/// An optional periodic timer: `tick` never completes when disabled.
pub struct Ticker(Option<Interval>);

impl Ticker {
    /// Ticks every `period` (first tick after `first`); `None` disables it.
    pub fn new(period: Option<Duration>, first: Duration) -> Self {
        Ticker(period.filter(|p| !p.is_zero()).map(|p| {
            let mut i = tokio::time::interval_at(Instant::now() + first, p);
            i.set_missed_tick_behavior(MissedTickBehavior::Skip);
            i
        }))
    }

    /// Waits for the next tick.
    pub async fn tick(&mut self) {
        match &mut self.0 {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacer_issues_at_the_rate() {
        let mut p = Pacer::new(1000.0, 100);
        assert_eq!(p.next().await, 1, "first item is due at once");
        let mut total = 1;
        while total < 100 {
            total += p.next().await;
        }
        assert_eq!(p.next().await, 0);
        assert_eq!(p.issued(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_batches_when_behind() {
        let mut p = Pacer::new(1000.0, 1000);
        p.next().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = p.next().await;
        assert!((49..=51).contains(&n), "{n}");
    }

    #[test]
    fn threads_register_and_return() {
        let reg = ThreadRegistry::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let spawned = spawn_workers(2, &reg, |i| async move { i * 10 }).unwrap();
        let out = rt.block_on(spawned.join()).unwrap();
        assert_eq!(out.iter().map(|o| o.result).collect::<Vec<_>>(), [0, 10]);
        assert_eq!(reg.entries().len(), 2);
    }
}

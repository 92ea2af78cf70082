//! A fleet of long-lived clients: worker `w` of `W` owns clients `w, w+W, w+2W, …`,
//! opens them at `connect_rate / W` per second with at most `max_inflight / W` attempts in
//! flight, and hands each established connection to the scenario's [`Behavior`]. When
//! every client task has ended, the worker returns their outputs plus connect/auth
//! latencies and failures, and [`Behavior::finish_worker`] collects the thread-local
//! state (e.g. the worker's latency histogram).

use super::Ctx;
use crate::cli::CommonArgs;
use crate::error::{Error, Result};
use crate::runtime::{Pacer, Spawned, spawn_workers};
use crate::session::{self, Established, SessionConfig};
use crate::stats::{Failures, Latency, Live};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What a scenario does with each established connection.
pub trait Behavior: Send + Sync + 'static {
    /// Per-client output.
    type Client: Send + 'static;
    /// Per-worker output, collected on the worker thread after its clients ended.
    type Worker: Send + 'static;
    /// Drives one connection until the scenario ends.
    fn run(self: Arc<Self>, est: Established, i: u64) -> impl Future<Output = Self::Client>;
    /// Collects per-thread state.
    fn finish_worker(&self) -> Self::Worker;
}

/// How many clients and how fast.
#[derive(Debug, Clone, Copy)]
pub struct FleetPlan {
    /// Clients in total.
    pub clients: u64,
    /// New connections per second (all workers).
    pub rate: f64,
    /// Attempts in flight at most (all workers).
    pub max_inflight: usize,
    /// Worker threads.
    pub workers: usize,
}

impl FleetPlan {
    /// `clients` clients at `--connect-rate`, `--max-inflight` and `--threads`.
    pub fn new(clients: u64, c: &CommonArgs) -> Self {
        FleetPlan {
            clients,
            rate: c.connect_rate,
            max_inflight: c.max_inflight,
            workers: c.threads,
        }
    }
}

/// One worker's results.
pub struct WorkerOut<B: Behavior> {
    /// Client index and output, for clients that were established.
    pub clients: Vec<(u64, B::Client)>,
    /// Per-worker output.
    pub worker: B::Worker,
    /// TCP connect + upgrade times.
    pub connect: Latency,
    /// authenticate → connected times.
    pub auth: Latency,
    /// Failed attempts.
    pub failures: Failures,
    /// Server header seen.
    pub server_header: Option<String>,
}

#[derive(Default)]
struct Setup {
    connect: Latency,
    auth: Latency,
    failures: Failures,
    server_header: Option<String>,
}

/// Starts the workers.
pub fn spawn<B: Behavior>(
    ctx: &Ctx,
    plan: FleetPlan,
    behavior: Arc<B>,
) -> Result<Spawned<WorkerOut<B>>> {
    let session = ctx.session.clone();
    let live = ctx.live.clone();
    spawn_workers(plan.workers, &ctx.registry, move |w| {
        worker(w, plan, session.clone(), live.clone(), behavior.clone())
    })
}

async fn worker<B: Behavior>(
    w: usize,
    plan: FleetPlan,
    session: Arc<SessionConfig>,
    live: Arc<Live>,
    behavior: Arc<B>,
) -> WorkerOut<B> {
    let n = plan.workers.max(1);
    let mine: Vec<u64> = (w as u64..plan.clients).step_by(n).collect();
    let slots = Arc::new(Semaphore::new((plan.max_inflight / n).max(1)));
    let setup = Rc::new(RefCell::new(Setup::default()));
    let mut pacer = Pacer::new(plan.rate / n as f64, mine.len() as u64);
    let mut tasks = Vec::with_capacity(mine.len());
    let mut next = mine.into_iter();
    loop {
        let due = pacer.next().await;
        if due == 0 {
            break;
        }
        for i in next.by_ref().take(due as usize) {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let fut = client(
                i,
                session.clone(),
                live.clone(),
                setup.clone(),
                behavior.clone(),
                permit,
            );
            tasks.push(tokio::task::spawn_local(fut));
        }
    }
    let mut clients = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(Some(c)) = t.await {
            clients.push(c);
        }
    }
    let s = setup.take();
    WorkerOut {
        clients,
        worker: behavior.finish_worker(),
        connect: s.connect,
        auth: s.auth,
        failures: s.failures,
        server_header: s.server_header,
    }
}

async fn client<B: Behavior>(
    i: u64,
    session: Arc<SessionConfig>,
    live: Arc<Live>,
    setup: Rc<RefCell<Setup>>,
    behavior: Arc<B>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Option<(u64, B::Client)> {
    Live::add(&live.attempts, 1);
    let result = session::establish(&session, i).await;
    drop(permit);
    let est = match result {
        Ok(est) => est,
        Err(e) => {
            e.record(&mut setup.borrow_mut().failures);
            Live::add(&live.failed, 1);
            return None;
        }
    };
    {
        let mut s = setup.borrow_mut();
        s.connect.record(est.connect_us);
        s.auth.record(est.auth_us);
        if s.server_header.is_none() {
            s.server_header = est.server_header.clone();
        }
    }
    Live::add(&live.established, 1);
    Live::add(&live.open, 1);
    let out = behavior.run(est, i).await;
    Live::dec(&live.open);
    Some((i, out))
}

/// Merged setup results of all workers.
pub struct Merged<B: Behavior> {
    /// Every established client's output.
    pub clients: Vec<(u64, B::Client)>,
    /// Per-worker outputs.
    pub workers: Vec<B::Worker>,
    /// Connect latency.
    pub connect: Latency,
    /// Auth latency.
    pub auth: Latency,
    /// Failures.
    pub failures: Failures,
    /// Server header.
    pub server_header: Option<String>,
}

/// Merges worker outputs.
pub fn merge<B: Behavior>(outs: Vec<WorkerOut<B>>) -> Merged<B> {
    let mut m = Merged {
        clients: Vec::new(),
        workers: Vec::new(),
        connect: Latency::new(),
        auth: Latency::new(),
        failures: Failures::default(),
        server_header: None,
    };
    for o in outs {
        m.clients.extend(o.clients);
        m.workers.push(o.worker);
        m.connect.merge(&o.connect);
        m.auth.merge(&o.auth);
        m.failures.merge(&o.failures);
        m.server_header = m.server_header.or(o.server_header);
    }
    m
}

impl<B: Behavior> Merged<B> {
    /// The error of a run in which no client connected, with sample failures.
    pub fn nothing_connected(&self) -> Error {
        Error::NothingConnected(self.failures.samples.join("; "))
    }

    /// Itself, or [`Merged::nothing_connected`] when no client connected.
    pub fn require_clients(self) -> Result<Self> {
        if self.clients.is_empty() {
            return Err(self.nothing_connected());
        }
        Ok(self)
    }
}

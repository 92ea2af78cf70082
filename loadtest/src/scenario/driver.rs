//! The part of a run every scenario shares. [`Driver`] starts a [`fleet`] with the
//! context's ramp options and moves its clients through [`Phase`]s; [`Driver::stop`] ends
//! the run: clients told to stop, workers awaited (progress line `close`), each thread's
//! timer lag attached to the client usage ([`take`], [`take_all`]) and the workers'
//! results merged. [`Driver::abandon`] ends a run in which nobody connected.

use super::fleet::{self, Behavior, FleetPlan, Merged, WorkerOut};
use super::{Ctx, Phase, with_progress};
use crate::error::{Error, Result};
use crate::meter::ClientUsage;
use crate::runtime::{Spawned, ThreadOutput};
use crate::stats::Live;
use std::sync::Arc;
use tokio::sync::watch;

/// A running fleet of clients and the phase they watch.
pub struct Driver<B: Behavior> {
    phase: watch::Sender<Phase>,
    workers: Spawned<WorkerOut<B>>,
}

impl<B: Behavior> Driver<B> {
    /// Starts `clients` clients behaving as `make(phase)` builds them, at the context's
    /// `--connect-rate`, `--max-inflight` and `--threads`; they start in [`Phase::Setup`].
    pub fn spawn(
        ctx: &Ctx,
        clients: u64,
        make: impl FnOnce(watch::Receiver<Phase>) -> B,
    ) -> Result<Self> {
        let (phase, rx) = watch::channel(Phase::Setup);
        let plan = FleetPlan::new(clients, &ctx.common);
        let workers = fleet::spawn(ctx, plan, Arc::new(make(rx)))?;
        Ok(Driver { phase, workers })
    }

    /// Moves every client to `phase`.
    pub fn enter(&self, phase: Phase) {
        let _ = self.phase.send(phase);
    }

    /// Stops the clients, waits for the workers (showing how many connections are still
    /// open), attaches each worker's timer lag to `client` and merges their results.
    pub async fn stop(self, ctx: &Ctx, client: &mut ClientUsage) -> Result<Merged<B>> {
        ctx.progress.phase("close", None);
        self.enter(Phase::Stop);
        let live = &ctx.live;
        let outs = with_progress(ctx, self.workers.join(), || {
            (0, format!("{} open", Live::get(&live.open)))
        })
        .await?;
        Ok(fleet::merge(take_all(outs, client)))
    }

    /// Stops a fleet none of whose clients connected; returns the error to end the run
    /// with (naming sample failures).
    pub async fn abandon(self) -> Error {
        self.enter(Phase::Stop);
        match self.workers.join().await {
            Ok(outs) => {
                fleet::merge(outs.into_iter().map(|o| o.result).collect()).nothing_connected()
            }
            Err(e) => e,
        }
    }
}

/// Attaches a finished thread's timer lag to `client` and returns the thread's result.
pub fn take<R>(out: ThreadOutput<R>, client: &mut ClientUsage) -> R {
    client.attach_lag(&out.name, out.lag.summary());
    out.result
}

/// [`take`] for every thread, results in spawn order.
pub fn take_all<R>(outs: Vec<ThreadOutput<R>>, client: &mut ClientUsage) -> Vec<R> {
    outs.into_iter().map(|o| take(o, client)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::ThreadUsage;
    use crate::runtime::Role;
    use crate::session::Established;
    use crate::stats::Latency;

    struct Idle;

    impl Behavior for Idle {
        type Client = ();
        type Worker = ();
        async fn run(self: Arc<Self>, _est: Established, _i: u64) {}
        fn finish_worker(&self) {}
    }

    fn usage(names: &[&str]) -> ClientUsage {
        let thread = |name: &&str| ThreadUsage {
            name: name.to_string(),
            role: Role::Worker,
            cpu_s: 0.0,
            util: 0.0,
            loop_lag: None,
        };
        ClientUsage {
            window_s: 1.0,
            process_cpu_s: 0.0,
            process_cores: 0.0,
            threads: names.iter().map(thread).collect(),
            load_cpus: Vec::new(),
            load_cpus_busy: 0.0,
            other_cores: 0.0,
            saturated: false,
            saturation: Vec::new(),
        }
    }

    fn output(name: &str, result: u32, lag_us: u64) -> ThreadOutput<u32> {
        let mut lag = Latency::new();
        lag.record(lag_us);
        ThreadOutput {
            result,
            name: name.into(),
            lag,
        }
    }

    #[test]
    fn take_all_keeps_order_and_attaches_each_threads_lag() {
        let mut client = usage(&["load-worker-0", "load-worker-1"]);
        let outs = vec![
            output("load-worker-1", 7, 500),
            output("load-worker-0", 3, 90),
        ];
        assert_eq!(take_all(outs, &mut client), vec![7, 3]);
        let lag = |i: usize| client.threads[i].loop_lag.as_ref().map(|l| l.max_us);
        assert_eq!((lag(0), lag(1)), (Some(90), Some(500)));
    }

    #[test]
    fn a_fleet_without_clients_is_an_error_naming_the_failures() {
        let mut m = fleet::merge::<Idle>(Vec::new());
        m.failures.samples = vec!["connect: refused".into(), "auth: timeout".into()];
        let err = m.require_clients().err().expect("no clients");
        assert_eq!(
            err.to_string(),
            "no client could connect: connect: refused; auth: timeout"
        );
        let mut m = fleet::merge::<Idle>(Vec::new());
        m.clients.push((0, ()));
        assert!(m.require_clients().is_ok());
    }
}

//! Accounting for the load generator itself, so it never silently becomes the bottleneck
//! it measures: process CPU (`getrusage`), per-thread CPU (`/proc/self/task`), how busy
//! the cores it may run on were (`/proc/stat`, all processes), and timer lag per worker.
//!
//! A run is flagged *saturated* when a worker thread used more than
//! [`SATURATION`] of a core over the measured window, or when the load generator's cores
//! (if it is pinned to a subset) were that busy in total.

use crate::proc::{self, CoreTimes};
use crate::runtime::{Role, ThreadRegistry};
use crate::stats::LatencySummary;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;

/// Fraction of a core above which the load generator counts as saturated.
pub const SATURATION: f64 = 0.90;
/// Worker timer lag (p99) above which the summary warns.
pub const LAG_WARN_US: u64 = 20_000;

/// Other processes' CPU (cores) above which the summary warns of interference.
pub const INTERFERENCE_WARN_CORES: f64 = 0.25;

/// A snapshot taken when a measured window starts.
pub struct Meter {
    at: Instant,
    process_cpu: f64,
    threads: HashMap<i32, f64>,
    cpus: Vec<usize>,
    cores: CoreTimes,
    all_cpus: Vec<usize>,
    all_cores: CoreTimes,
    /// Server processes (`--server-pid`, `fanout --node-pid`) and their CPU at the start.
    servers: Vec<(u32, f64)>,
}

/// CPU use of one thread over the window.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadUsage {
    /// Thread name.
    pub name: String,
    /// Worker or sidecar.
    pub role: Role,
    /// CPU seconds in the window.
    pub cpu_s: f64,
    /// Fraction of one core (cpu_s / window_s).
    pub util: f64,
    /// Timer lag on this thread over its life, when known.
    pub loop_lag: Option<LatencySummary>,
}

/// The load generator's own resource use, reported with every run.
#[derive(Debug, Clone, Serialize)]
pub struct ClientUsage {
    /// Length of the measured window.
    pub window_s: f64,
    /// Process CPU seconds in the window.
    pub process_cpu_s: f64,
    /// Average cores used by the process.
    pub process_cores: f64,
    /// Per thread.
    pub threads: Vec<ThreadUsage>,
    /// CPUs the process may run on.
    pub load_cpus: Vec<usize>,
    /// Fraction of those CPUs busy (any process) in the window.
    pub load_cpus_busy: f64,
    /// Cores used by every process except this one and the server (Redis included) in
    /// the window; includes the server when `--server-pid` is not given (`fanout`: nor
    /// `--node-pid`).
    pub other_cores: f64,
    /// Whether the load generator was saturated (results then measure the client).
    pub saturated: bool,
    /// Why it counts as saturated.
    pub saturation: Vec<String>,
}

impl Meter {
    /// Starts a window now; the `servers`' CPU is subtracted from the host's busy time
    /// (each process once, however often it is named).
    pub fn start(registry: &ThreadRegistry, servers: impl IntoIterator<Item = u32>) -> Meter {
        let mut pids: Vec<u32> = servers.into_iter().collect();
        pids.sort_unstable();
        pids.dedup();
        let cpus = proc::allowed_cpus();
        let all_cpus = proc::online_cpus();
        let threads = registry
            .entries()
            .iter()
            .filter_map(|t| Some((t.tid, proc::thread_cpu_s(t.tid)?)))
            .collect();
        Meter {
            at: Instant::now(),
            process_cpu: proc::self_cpu_s(),
            threads,
            cores: proc::core_times(&cpus),
            cpus,
            all_cores: proc::core_times(&all_cpus),
            all_cpus,
            servers: pids
                .into_iter()
                .filter_map(|pid| Some((pid, proc::sample(pid).ok()?.cpu_s)))
                .collect(),
        }
    }

    /// Ends the window and judges saturation.
    pub fn finish(&self, registry: &ThreadRegistry) -> ClientUsage {
        let window_s = self.at.elapsed().as_secs_f64().max(1e-9);
        let threads: Vec<ThreadUsage> = registry
            .entries()
            .into_iter()
            .map(|t| {
                let now = t
                    .final_cpu_s
                    .or_else(|| proc::thread_cpu_s(t.tid))
                    .unwrap_or(0.0);
                let cpu_s = (now - self.threads.get(&t.tid).copied().unwrap_or(0.0)).max(0.0);
                ThreadUsage {
                    name: t.name,
                    role: t.role,
                    cpu_s,
                    util: cpu_s / window_s,
                    loop_lag: None,
                }
            })
            .collect();
        let process_cpu_s = (proc::self_cpu_s() - self.process_cpu).max(0.0);
        let cores = proc::core_times(&self.cpus);
        let (busy, total) = (
            cores.busy - self.cores.busy.min(cores.busy),
            cores.total.saturating_sub(self.cores.total),
        );
        let load_cpus_busy = if total > 0 {
            busy as f64 / total as f64
        } else {
            0.0
        };
        let all = proc::core_times(&self.all_cpus);
        let host_busy_s = all.busy.saturating_sub(self.all_cores.busy) as f64 / proc::clk_tck();
        let server_s: f64 = self
            .servers
            .iter()
            .filter_map(|&(pid, before)| Some(proc::sample(pid).ok()?.cpu_s - before))
            .sum();
        let other_cores = ((host_busy_s - process_cpu_s - server_s) / window_s).max(0.0);
        let mut usage = ClientUsage {
            window_s,
            process_cpu_s,
            process_cores: process_cpu_s / window_s,
            threads,
            load_cpus: self.cpus.clone(),
            load_cpus_busy,
            other_cores,
            saturated: false,
            saturation: Vec::new(),
        };
        judge(&mut usage);
        usage
    }
}

fn judge(u: &mut ClientUsage) {
    for t in u
        .threads
        .iter()
        .filter(|t| t.role == Role::Worker && t.util > SATURATION)
    {
        u.saturation
            .push(format!("{} used {:.0}% of a core", t.name, t.util * 100.0));
    }
    let online = proc::online_cpus().len();
    let pinned = !u.load_cpus.is_empty() && u.load_cpus.len() < online;
    if pinned && u.load_cpus_busy > SATURATION {
        u.saturation.push(format!(
            "the load generator's CPUs {:?} were {:.0}% busy (all processes on them)",
            u.load_cpus,
            u.load_cpus_busy * 100.0
        ));
    }
    u.saturated = !u.saturation.is_empty();
}

impl ClientUsage {
    /// Attaches a thread's timer-lag summary (known only once the thread finished).
    pub fn attach_lag(&mut self, name: &str, lag: LatencySummary) {
        if let Some(t) = self.threads.iter_mut().find(|t| t.name == name) {
            t.loop_lag = Some(lag);
        }
    }

    /// Warnings for the summary: saturation first, then lagging workers.
    pub fn warnings(&self) -> Vec<String> {
        let mut w: Vec<String> = self
            .saturation
            .iter()
            .map(|s| {
                format!(
                    "LOAD GENERATOR SATURATED: {s}; the numbers measure the client, not the server"
                )
            })
            .collect();
        for t in &self.threads {
            if let Some(l) = t.loop_lag.filter(|l| l.p99_us > LAG_WARN_US) {
                w.push(format!(
                    "{}: timers fired late (p99 {} µs); latencies include client delay",
                    t.name, l.p99_us
                ));
            }
        }
        if self.other_cores > INTERFERENCE_WARN_CORES {
            w.push(format!(
                "other processes used {:.2} cores during the measured window (Redis included): results may be disturbed",
                self.other_cores
            ));
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(util: f64) -> ClientUsage {
        ClientUsage {
            window_s: 1.0,
            process_cpu_s: util,
            process_cores: util,
            threads: vec![ThreadUsage {
                name: "load-worker-0".into(),
                role: Role::Worker,
                cpu_s: util,
                util,
                loop_lag: None,
            }],
            load_cpus: vec![],
            load_cpus_busy: 0.0,
            other_cores: 0.0,
            saturated: false,
            saturation: vec![],
        }
    }

    #[test]
    fn a_busy_worker_is_saturation() {
        let mut u = usage(0.97);
        judge(&mut u);
        assert!(u.saturated);
        assert!(u.warnings()[0].contains("SATURATED"));
        let mut u = usage(0.5);
        judge(&mut u);
        assert!(!u.saturated && u.warnings().is_empty());
    }
}

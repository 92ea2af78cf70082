//! Process and host accounting from `/proc` and libc (through `nix`, no `unsafe`):
//! the server's CPU time, RSS and open descriptors (`--server-pid`), this process's and
//! each of its threads' CPU time, how busy the cores we run on were, host facts for the
//! report, and the `RLIMIT_NOFILE` raise.

use serde::Serialize;
use std::fs;
use std::io;
use std::time::Instant;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Thread count.
    pub threads: u64,
}

fn sysconf(var: nix::unistd::SysconfVar, fallback: i64) -> i64 {
    nix::unistd::sysconf(var).ok().flatten().unwrap_or(fallback)
}

/// Clock ticks per second (`_SC_CLK_TCK`).
pub fn clk_tck() -> f64 {
    sysconf(nix::unistd::SysconfVar::CLK_TCK, 100) as f64
}

fn page_size() -> u64 {
    sysconf(nix::unistd::SysconfVar::PAGE_SIZE, 4096) as u64
}

/// The fields after the command name of a `/proc/.../stat` line.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// CPU seconds (utime + stime) from a `/proc/.../stat` line.
pub fn stat_cpu_s(stat: &str) -> Option<f64> {
    let f = stat_fields(stat)?;
    // Fields 14 and 15 of stat(5); index 0 here is field 3 (state).
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck())
}

/// Reads CPU, RSS and threads of `pid`.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unparseable /proc/{pid}/stat"),
        )
    };
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let cpu_s = stat_cpu_s(&stat).ok_or_else(bad)?;
    let threads = stat_fields(&stat)
        .and_then(|f| f.get(17)?.parse().ok())
        .ok_or_else(bad)?;
    let statm = fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    Ok(ProcSample {
        cpu_s,
        rss_bytes: pages * page_size(),
        threads,
    })
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb: u64 = kb.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kb * 1024)
}

/// Open file descriptors of `pid` (entries of `/proc/<pid>/fd`; `"self"` for this
/// process). Reading another process's needs the same user.
pub fn fd_count(pid: &str) -> io::Result<u64> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// A server reading for the soak series: RSS, descriptors, CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Gauge {
    /// `VmRSS` from `/proc/<pid>/status`, bytes.
    pub rss_bytes: u64,
    /// Entries of `/proc/<pid>/fd`.
    pub fds: u64,
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
}

/// Reads [`Gauge`] of `pid`.
pub fn gauge(pid: u32) -> io::Result<Gauge> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_bytes = parse_vm_rss(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no VmRSS in /proc/{pid}/status"),
        )
    })?;
    Ok(Gauge {
        rss_bytes,
        fds: fd_count(&pid.to_string())?,
        cpu_s: sample(pid)?.cpu_s,
    })
}

/// User + system CPU seconds of this whole process (`getrusage(RUSAGE_SELF)`).
pub fn self_cpu_s() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

/// CPU seconds of one of this process's threads (by kernel thread id).
pub fn thread_cpu_s(tid: i32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    stat_cpu_s(&stat)
}

/// The calling thread's kernel id.
pub fn current_tid() -> i32 {
    nix::unistd::gettid().as_raw()
}

/// CPUs this process may run on (its affinity mask, e.g. from `taskset`).
pub fn allowed_cpus() -> Vec<usize> {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Busy and total jiffies of chosen CPUs, from `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CoreTimes {
    /// Non-idle jiffies (everything but idle and iowait).
    pub busy: u64,
    /// All jiffies.
    pub total: u64,
}

/// Parses the `cpuN` lines of `/proc/stat` for `cpus`, summed.
pub fn parse_core_times(proc_stat: &str, cpus: &[usize]) -> CoreTimes {
    let mut out = CoreTimes::default();
    for line in proc_stat.lines() {
        let mut it = line.split_whitespace();
        let Some(id) = it
            .next()
            .and_then(|n| n.strip_prefix("cpu"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.contains(&id) {
            continue;
        }
        let v: Vec<u64> = it.filter_map(|x| x.parse().ok()).collect();
        let total: u64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        out.busy += total - idle.min(total);
        out.total += total;
    }
    out
}

/// Ids of the host's online CPUs (from `/proc/stat`; unlike `available_parallelism` it
/// ignores our own affinity mask).
pub fn online_cpus() -> Vec<usize> {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .strip_prefix("cpu")?
                .parse()
                .ok()
        })
        .collect()
}

/// Reads [`CoreTimes`] for `cpus` now.
pub fn core_times(cpus: &[usize]) -> CoreTimes {
    fs::read_to_string("/proc/stat")
        .map(|s| parse_core_times(&s, cpus))
        .unwrap_or_default()
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Facts about the load-generating host, recorded in every report.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus: usize,
    /// CPUs the load generator was allowed to use (its affinity).
    pub load_cpus: Vec<usize>,
}

fn read_trim(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Collects [`HostInfo`].
pub fn host_info() -> HostInfo {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    HostInfo {
        hostname: read_trim("/proc/sys/kernel/hostname"),
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        cpu_model,
        cpus: online_cpus().len(),
        load_cpus: allowed_cpus(),
    }
}

/// Facts about the server process (`--server-pid`).
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// Process id.
    pub pid: u32,
    /// Command name.
    pub comm: String,
    /// Command line.
    pub cmdline: String,
    /// `Cpus_allowed_list` from its status (its pinning).
    pub cpus_allowed: String,
}

/// Reads [`ServerInfo`] for `pid`.
pub fn server_info(pid: u32) -> io::Result<ServerInfo> {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm"))?
        .trim()
        .to_string();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let cpus_allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    Ok(ServerInfo {
        pid,
        comm,
        cmdline,
        cpus_allowed,
    })
}

/// A server process to sample at phase boundaries.
#[derive(Debug, Clone, Copy)]
pub struct ServerProbe {
    /// Its pid.
    pub pid: u32,
}

/// A [`ProcSample`] with the moment it was taken.
#[derive(Debug, Clone, Copy)]
pub struct Stamped {
    /// The reading.
    pub sample: ProcSample,
    /// When.
    pub at: Instant,
}

impl ServerProbe {
    /// Samples the server now (`None` if the probe is absent or the process is gone).
    pub fn sample(probe: Option<&ServerProbe>) -> Option<Stamped> {
        let p = probe?;
        sample(p.pid).ok().map(|sample| Stamped {
            sample,
            at: Instant::now(),
        })
    }
}

/// CPU seconds and RSS change between two server samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ServerDelta {
    /// CPU seconds used in between.
    pub cpu_s: f64,
    /// Wall seconds in between.
    pub wall_s: f64,
    /// Average cores used (cpu_s / wall_s).
    pub cores: f64,
    /// RSS at the first sample.
    pub rss_before_bytes: u64,
    /// RSS at the second sample.
    pub rss_after_bytes: u64,
}

/// Difference between two samples (`None` unless both exist).
pub fn delta(a: Option<Stamped>, b: Option<Stamped>) -> Option<ServerDelta> {
    let (a, b) = (a?, b?);
    let wall_s = b.at.duration_since(a.at).as_secs_f64();
    let cpu_s = (b.sample.cpu_s - a.sample.cpu_s).max(0.0);
    Some(ServerDelta {
        cpu_s,
        wall_s,
        cores: if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 },
        rss_before_bytes: a.sample.rss_bytes,
        rss_after_bytes: b.sample.rss_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_cpu_even_with_spaces_in_comm() {
        let line =
            "42 (bun (worker) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 100 1000 200";
        assert_eq!(stat_cpu_s(line), Some(300.0 / clk_tck()));
        assert_eq!(stat_fields(line).unwrap()[17], "7");
    }

    #[test]
    fn samples_self() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0 && s.threads >= 1);
        assert!(thread_cpu_s(current_tid()).is_some());
    }

    #[test]
    fn parses_vm_rss_and_counts_descriptors() {
        let status = "Name:\tshardcast\nVmPeak:\t  9000 kB\nVmRSS:\t   61234 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(61234 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        let me = gauge(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0 && me.fds >= 3, "{me:?}");
        assert!(fd_count("self").unwrap() >= 3);
    }

    #[test]
    fn core_times_sum_selected_cpus() {
        let stat = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 1 0 1 50 0 0 0 0 0 0\ncpu1 9 0 9 50 5 0 0 0 0 0\nintr 1\n";
        assert_eq!(
            parse_core_times(stat, &[1]),
            CoreTimes {
                busy: 18,
                total: 73
            }
        );
        assert_eq!(
            parse_core_times(stat, &[0, 1]),
            CoreTimes {
                busy: 20,
                total: 125
            }
        );
    }
}

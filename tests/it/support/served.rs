//! The `shardcast` binary as a child process: start `serve` and read the address it
//! prints, collect its stderr, send it real signals by PID, run one-shot subcommands.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::WAIT;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_shardcast");

/// A `shardcast serve` child process, killed (by PID) on drop if still running.
pub struct Served {
    /// The process.
    pub child: Child,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    /// Everything the server logged so far (stderr).
    pub log: Arc<Mutex<String>>,
}

/// The address a started `shardcast serve` prints as its first stdout line
/// (`listening on ADDR`), taking `child`'s stdout; `Err` holds the line it printed instead.
pub fn listening_addr(child: &mut Child) -> Result<std::net::SocketAddr, String> {
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read stdout");
    let addr = line.trim().strip_prefix("listening on ").map(str::parse);
    match addr {
        Some(Ok(addr)) => Ok(addr),
        _ => Err(line),
    }
}

/// The port a child prints as its first stdout line, `READY <port>` (the Ignis reference's
/// run.sh, the examples), waiting at most `wait` and taking `child`'s stdout; `Err` holds
/// the line it printed instead (empty when it printed nothing in time).
pub fn ready_port(child: &mut Child, wait: Duration) -> Result<u16, String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(wait).unwrap_or_default();
    let port = line.trim().strip_prefix("READY ").map(str::parse);
    match port {
        Some(Ok(port)) => Ok(port),
        _ => Err(line),
    }
}

impl Served {
    /// Starts `serve` with `args` and extra `env`; waits for its address.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        hermetic(&mut command);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn shardcast");
        let log = collect(child.stderr.take().expect("stderr"));
        let addr = listening_addr(&mut child)
            .unwrap_or_else(|line| panic!("unexpected first line {line:?}"));
        Served { child, addr, log }
    }

    /// SIGTERM, by PID.
    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// A real signal, to the PID we spawned.
    pub fn signal(&self, which: &str) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args([which, &pid]).status();
    }

    /// Waits until the server has logged `text` (and `count` times in all).
    pub fn wait_log(&self, text: &str, count: usize) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let seen = self.log.lock().unwrap().matches(text).count();
            if seen >= count {
                return;
            }
            let log = self.log.lock().unwrap().clone();
            assert!(
                std::time::Instant::now() < deadline,
                "no {text:?} in:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Drains `stderr` on a thread into a shared string (the pipe never fills).
fn collect(stderr: std::process::ChildStderr) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// Runs the binary with `args` and extra `env` to completion: (success, stdout, stderr).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(BIN);
    command.args(args);
    hermetic(&mut command);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run shardcast");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Leaves out of `command`'s environment what would configure the binary behind the
/// test's back: every `SHARDCAST_*` variable, `RUST_LOG`, `NO_COLOR`.
pub fn hermetic(command: &mut Command) {
    let inherited = std::env::vars_os().map(|(name, _)| name);
    for name in inherited.filter(|n| n.to_string_lossy().starts_with("SHARDCAST_")) {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG").env_remove("NO_COLOR");
}

/// Runs the binary with `args`, which must fail; its stderr.
pub fn refusal(args: &[&str]) -> String {
    let mut command = Command::new(BIN);
    hermetic(command.args(args));
    let out = command.output().expect("run");
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh directory under the system temp dir.
pub fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shardcast-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

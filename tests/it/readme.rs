//! The README's quick start, run exactly as written so it cannot drift: command 1 starts
//! the real binary (on a free port instead of 8081), the "Try it" client
//! (`examples/client.rs`, compiled into this test) joins, the README's `curl` line
//! publishes through a shell, and the client prints what the README says it prints.
//! Also `shardcast --version`.

#[path = "../../examples/client.rs"]
#[allow(dead_code)]
mod client_example;

use crate::support::served::listening_addr;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{WAIT, http};

const BIN: &str = env!("CARGO_BIN_EXE_shardcast");
const README: &str = include_str!("../../README.md");

/// The port the README's commands use; the test swaps in a free one.
const README_PORT: &str = "8081";

/// The one README line that starts with `prefix` (inside the quick start).
fn readme_line(prefix: &str) -> &'static str {
    let quick_start = &README[..README
        .find("## Architecture")
        .expect("an Architecture section")];
    let lines: Vec<&str> = quick_start
        .lines()
        .filter(|l| l.starts_with(prefix))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "README lines starting with {prefix:?}: {lines:?}"
    );
    lines[0]
}

/// The text between the first pair of backticks after `marker` in the README.
fn readme_quoted_after(marker: &str) -> &'static str {
    let at = README.find(marker).expect("marker in README") + marker.len();
    let rest = &README[at..];
    let start = rest.find('`').expect("opening backtick") + 1;
    let len = rest[start..].find('`').expect("closing backtick");
    &rest[start..start + len]
}

/// Command 1, the binary in place of `cargo run --release --`, on a free port.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(command: &str) -> Server {
        let args = command
            .strip_prefix("cargo run --release -- ")
            .expect("command 1 runs the server through cargo");
        assert!(
            !args.contains("--listen"),
            "command 1 sets no address: {args}"
        );
        // The shell does the README's quoting; `exec` keeps the server's PID ours.
        let script = format!("exec \"$BIN\" {args} --listen 127.0.0.1:0");
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .env("BIN", BIN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn command 1");
        let addr =
            listening_addr(&mut child).unwrap_or_else(|line| panic!("command 1 printed {line:?}"));
        Server { child, addr }
    }

    /// A README command with the README's port replaced by this server's.
    fn on_port(&self, command: &str) -> String {
        command.replace(README_PORT, &self.addr.port().to_string())
    }

    fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the "Try it" client on a thread; its printed lines arrive on the channel.
fn start_client(command: &str) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let args: Vec<String> = command
        .strip_prefix("cargo run --release --example client -- ")
        .expect("the client runs as a cargo example")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        client_example::run(&args, |line| {
            let _ = tx.send(line.to_owned());
        })
        .expect("the client runs until the server closes");
    });
    (rx, thread)
}

fn next_line(rx: &mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("the client printed no {what}"))
}

/// Waits until `room` lists a client (the join is asynchronous), asking with the key.
async fn wait_joined(addr: SocketAddr, room: &str, key: &str) {
    let deadline = Instant::now() + WAIT;
    let auth = format!("Bearer {key}");
    loop {
        let path = format!("/api/rooms/{room}/clients");
        let (status, body) = http(addr, "GET", &path, &[("Authorization", &auth)], "").await;
        assert_eq!(status, 200, "{path}: {body}");
        if body.contains('-') {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{room} never had a member: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of `--flag VALUE` in a command line.
fn flag_value<'a>(command: &'a str, flag: &str) -> &'a str {
    let mut words = command.split_whitespace();
    words.find(|w| *w == flag).expect("flag present");
    words.next().expect("flag value")
}

#[tokio::test]
async fn readme_quick_start_works_as_written() {
    let command1 = readme_line("cargo run --release -- serve");
    let try_it = readme_line("cargo run --release --example client -- ");
    let curl = readme_line("curl ");
    let printed = readme_quoted_after("The client prints ");
    let server = Server::start(command1);

    let (lines, client) = start_client(&server.on_port(try_it));
    let connected = next_line(&lines, "connected event");
    assert!(connected.contains(r#""event":"connected""#), "{connected}");
    wait_joined(
        server.addr,
        "public-news",
        flag_value(command1, "--api-key"),
    )
    .await;

    let out = Command::new("sh")
        .args(["-c", &server.on_port(curl)])
        .output()
        .expect("run the README's curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed: {out:?}");
    assert!(
        body.contains(r#""ok":true"#),
        "the README's curl got {body:?}"
    );
    assert_eq!(next_line(&lines, "published message"), printed);

    server.sigterm();
    let last = next_line(&lines, "close");
    assert!(last.starts_with("closed by the server: 1001"), "{last}");
    client.join().expect("client thread");
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let out = Command::new(BIN).arg("--version").output().expect("run");
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let rest = line
        .strip_prefix(&format!("shardcast {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{line:?}"));
    let (commit, rest) = rest
        .split_once(", built ")
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "commit {commit:?} in {line:?}"
    );
    let date = rest.strip_suffix(')').unwrap_or_else(|| panic!("{line:?}"));
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        parts.len() == 3
            && [4, 2, 2] == [parts[0].len(), parts[1].len(), parts[2].len()]
            && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())),
        "date {date:?} in {line:?}"
    );
}

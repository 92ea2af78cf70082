//! The container contract, on the real binary: the Dockerfile's `ENTRYPOINT` + `CMD`, its
//! `SHARDCAST_LISTEN` and the README's `docker run -e …` variables start a server, and the
//! Dockerfile's `HEALTHCHECK` command succeeds against it (the image itself cannot be built
//! here: no container registry). Also: the image runs as a non-root user and builds with
//! `--locked`.

use crate::support::served::listening_addr;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_shardcast");
const DOCKERFILE: &str = include_str!("../../Dockerfile");
const README: &str = include_str!("../../README.md");

/// The runtime stage: everything after the last `FROM`.
fn runtime_stage() -> &'static str {
    let at = DOCKERFILE.rfind("\nFROM ").expect("a runtime stage");
    &DOCKERFILE[at..]
}

/// The value of the runtime stage's instruction `name` (continuation lines joined).
fn instruction(name: &str) -> String {
    let stage = runtime_stage().replace("\\\n", " ");
    let prefix = format!("{name} ");
    let line = stage
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} in the runtime stage"));
    line[prefix.len()..].trim().to_owned()
}

/// A JSON-array instruction (`ENTRYPOINT ["…"]`) as its words.
fn exec_form(name: &str) -> Vec<String> {
    serde_json::from_str(&instruction(name)).expect("exec form")
}

/// `-e NAME=VALUE` pairs of the README's `docker run` line.
fn docker_run_env() -> Vec<(String, String)> {
    let line = README
        .lines()
        .find(|l| l.trim_start().starts_with("docker run "))
        .expect("a docker run line in the README");
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "-e")
        .filter_map(|w| w[1].split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

struct Container {
    child: Child,
    port: u16,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary as the image does, on a free port of the image's listen address.
fn run_like_the_image() -> Container {
    let entrypoint = exec_form("ENTRYPOINT");
    assert_eq!(entrypoint, ["/usr/local/bin/shardcast"]);
    let env = instruction("ENV");
    let listen = env
        .strip_prefix("SHARDCAST_LISTEN=")
        .unwrap_or_else(|| panic!("ENV {env}"));
    let (host, _) = listen.rsplit_once(':').expect("host:port");
    assert_eq!(
        host, "0.0.0.0",
        "the image must listen beyond its own loopback"
    );
    let mut command = Command::new(BIN);
    command
        .args(exec_form("CMD"))
        .env("SHARDCAST_LISTEN", format!("{host}:0"))
        .envs(docker_run_env())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("spawn");
    let addr = listening_addr(&mut child)
        .unwrap_or_else(|line| panic!("the image's command printed {line:?}"));
    Container {
        child,
        port: addr.port(),
    }
}

#[test]
fn the_image_command_serves_and_its_healthcheck_passes() {
    let container = run_like_the_image();
    let healthcheck = instruction("HEALTHCHECK");
    let (_, command) = healthcheck.split_once(" CMD ").expect("HEALTHCHECK … CMD");
    let exposed = instruction("EXPOSE");
    assert!(command.contains(&format!(":{exposed}/health")), "{command}");
    let command = command.replace(&format!(":{exposed}/"), &format!(":{}/", container.port));
    let out = Command::new("sh")
        .args(["-c", &command])
        .output()
        .expect("run the HEALTHCHECK command");
    assert!(out.status.success(), "HEALTHCHECK failed: {out:?}");
}

#[test]
fn the_image_runs_unprivileged_from_a_locked_build() {
    let user = instruction("USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(!["", "0", "root"].contains(&uid), "USER {user}");
    assert!(
        DOCKERFILE.contains("cargo build --release --locked"),
        "{DOCKERFILE}"
    );
}

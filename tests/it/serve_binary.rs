//! The `shardcast` binary: configuration precedence, refusals, `token`, and a graceful
//! shutdown on a real SIGTERM.

use shardcast::protocol::CloseReason;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::raw::upgrade_status;
use crate::support::{WsClient, http};

const BIN: &str = env!("CARGO_BIN_EXE_shardcast");

/// A `shardcast serve` child process, killed (by PID) on drop if still running.
struct Served {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Served {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn shardcast");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("address");
        Served { child, addr }
    }

    fn sigterm(&self) {
        // A real signal, to the PID we spawned.
        let pid = self.child.id() as i32;
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn refusal(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run");
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn refuses_to_start_without_authentication_naming_both_options() {
    let err = refusal(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(
        err.contains("--jwt-secret") && err.contains("--dev"),
        "{err}"
    );
}

#[test]
fn bad_configuration_is_reported_with_what_to_fix() {
    let err = refusal(&[
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--path",
        "noslash",
    ]);
    assert!(err.contains("must start with `/`"), "{err}");
    let err = refusal(&[
        "serve",
        "--jwt-secret",
        "s",
        "--jwt-alg",
        "HS999",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(err.to_lowercase().contains("algorithm"), "{err}");
    let err = refusal(&[
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--allow-rooms",
        "bad-{x}",
    ]);
    assert!(err.contains("allow-rooms"), "{err}");
    let err = refusal(&[
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--allowed-origins",
        "https://{app}.example.com",
    ]);
    assert!(err.contains("allowed_origins"), "{err}");
    let dir = tempdir();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nno_such_key = 1\n").unwrap();
    let err = refusal(&["serve", "--dev", "--config", file.to_str().unwrap()]);
    assert!(err.contains("no_such_key"), "{err}");
    let err = refusal(&[
        "serve",
        "--dev",
        "--jwt-secret",
        "s",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[tokio::test]
async fn flags_beat_env_beat_file() {
    let dir = tempdir();
    let file = dir.join("shardcast.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\npath = \"/from-file\"\ndev = true\ndefault_rooms = [\"file-room\"]\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();

    let served = Served::start(&["--config", config], &[]);
    assert_eq!(http(served.addr, "GET", "/from-file", &[], "").await.0, 426);
    drop(served);

    let served = Served::start(&["--config", config], &[("SHARDCAST_PATH", "/from-env")]);
    assert_eq!(http(served.addr, "GET", "/from-env", &[], "").await.0, 426);
    assert_eq!(http(served.addr, "GET", "/from-file", &[], "").await.0, 404);
    drop(served);

    let served = Served::start(
        &["--config", config, "--path", "/from-flag"],
        &[("SHARDCAST_PATH", "/from-env")],
    );
    assert_eq!(http(served.addr, "GET", "/from-flag", &[], "").await.0, 426);
    // The file's default rooms still apply where nothing overrides them.
    let mut client = WsClient::connect(&format!("ws://{}/from-flag", served.addr)).await;
    client.authenticate("file-user").await;
}

/// The limits reach the engine from the flags, the environment and the file alike.
#[tokio::test]
async fn limits_are_set_by_flag_env_and_file() {
    let dir = tempdir();
    let file = dir.join("limits.toml");
    std::fs::write(
        &file,
        "client_message_rate = 2\nclient_message_burst = 50\n",
    )
    .unwrap();
    // The environment's burst beats the file's: the fourth quick message is over it.
    let served = Served::start(
        &["--dev", "--listen", "127.0.0.1:0", "--max-connections", "2"],
        &[
            ("SHARDCAST_CONFIG", file.to_str().unwrap()),
            ("SHARDCAST_CLIENT_MESSAGE_BURST", "3"),
        ],
    );
    let url = format!("ws://{}/ws", served.addr);
    let mut client = WsClient::connect(&url).await;
    client.authenticate("limited").await;
    let _second = WsClient::connect(&url).await;
    let upgrade = crate::support::UPGRADE_HEADERS;
    assert_eq!(
        http(served.addr, "GET", "/ws", &upgrade, "").await.0,
        503,
        "flag"
    );
    for _ in 0..3 {
        client.emit("heartbeat", json!(null)).await;
    }
    client.expect_close(CloseReason::RateLimited).await;
}

/// `--allowed-origins`, `SHARDCAST_ALLOWED_ORIGINS` and the TOML `allowed_origins` each
/// reach the engine (a foreign Origin gets 403, a matching one 101); unset, every Origin
/// may upgrade.
#[tokio::test]
async fn allowed_origins_reach_the_engine_from_flag_env_and_file() {
    let dir = tempdir();
    let file = dir.join("origins.toml");
    std::fs::write(&file, "allowed_origins = [\"https://*.file.example\"]\n").unwrap();
    let base = ["--dev", "--listen", "127.0.0.1:0"];
    let flag = [
        &base[..],
        &[
            "--allowed-origins",
            "https://a.example,https://*.flag.example",
        ],
    ]
    .concat();
    let from_file = [&base[..], &["--config", file.to_str().unwrap()]].concat();
    let env = [("SHARDCAST_ALLOWED_ORIGINS", "https://*.env.example")];
    for (args, env, allowed) in [
        (&flag[..], &[][..], "https://x.flag.example"),
        (&base[..], &env[..], "https://x.env.example"),
        (&from_file[..], &[][..], "https://x.file.example"),
    ] {
        let served = Served::start(args, env);
        assert_eq!(
            upgrade_status(served.addr, Some(allowed)).await,
            101,
            "{args:?} {env:?}"
        );
        assert_eq!(
            upgrade_status(served.addr, Some("https://evil.test")).await,
            403
        );
        assert_eq!(upgrade_status(served.addr, None).await, 101);
    }
    let served = Served::start(&base, &[]);
    assert_eq!(
        upgrade_status(served.addr, Some("https://evil.test")).await,
        101
    );
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_zero() {
    let mut served = Served::start(&["--dev", "--listen", "127.0.0.1:0"], &[]);
    let mut client = WsClient::connect(&format!("ws://{}/ws", served.addr)).await;
    client.authenticate("bye").await;
    let mut pending = WsClient::connect(&format!("ws://{}/ws", served.addr)).await;
    served.sigterm();
    client.expect_close(CloseReason::ShuttingDown).await;
    pending.expect_close(CloseReason::ShuttingDown).await;
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = served.child.try_wait().expect("wait") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn token_mints_what_serve_accepts() {
    let out = Command::new(BIN)
        .args([
            "token",
            "--secret",
            "s3",
            "--sub",
            "minted",
            "--ttl-s",
            "60",
            "--claim",
            "role=admin",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let served = Served::start(&["--jwt-secret", "s3", "--listen", "127.0.0.1:0"], &[]);
    let mut client = WsClient::connect(&format!("ws://{}/ws", served.addr)).await;
    client.emit("authenticate", json!({ "token": token })).await;
    let connected = client.expect_event("connected").await;
    assert_eq!(connected["data"]["userId"], "minted");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shardcast-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Regression: the signal handlers were installed after "listening on" was printed, so a
/// SIGTERM arriving right after start killed the process with the default action.
#[test]
fn sigterm_right_after_start_still_exits_gracefully() {
    for _ in 0..5 {
        let mut served = Served::start(&["--dev", "--listen", "127.0.0.1:0"], &[]);
        served.sigterm();
        let status = served.child.wait().expect("wait");
        assert!(status.success(), "exit status {status:?}");
    }
}

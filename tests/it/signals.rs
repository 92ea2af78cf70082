//! Real signals to the real binary (issue 11): SIGHUP re-reads the config file and applies
//! the API key, the room allow-list and the log filter live, names what needs a restart,
//! keeps everything on a bad file, and never stops the server. And its logs: no colour
//! codes off a terminal or with `NO_COLOR`, JSON lines with `--log-format json`.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::served::{BIN, Served, hermetic, tempdir};
use crate::support::{WAIT, WsClient, http};

/// `GET /api/rooms/{room}/clients` with `key`: (status, body).
async fn room_clients(addr: SocketAddr, room: &str, key: &str) -> (u16, String) {
    let bearer = format!("Bearer {key}");
    let path = format!("/api/rooms/{room}/clients");
    http(addr, "GET", &path, &[("Authorization", &bearer)], "").await
}

/// Waits until client `id` is in `room` (joins are asynchronous).
async fn wait_member(addr: SocketAddr, room: &str, key: &str, id: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !room_clients(addr, room, key).await.1.contains(id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never joined {room}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Joins `allowed` and `probe` in one request; `probe`'s membership after the allowed
/// one shows is the policy's answer.
async fn joins(
    addr: SocketAddr,
    client: &mut WsClient,
    id: &str,
    allowed: &str,
    probe: &str,
) -> bool {
    client.join(&[allowed, probe]).await;
    wait_member(addr, allowed, "new", id).await;
    room_clients(addr, probe, "new").await.1.contains(id)
}

const FIRST: &str =
    "listen = \"127.0.0.1:0\"\ndev = true\napi_key = \"old\"\nallow_rooms = [\"a-*\"]\n";

#[tokio::test]
async fn sighup_applies_the_new_api_key_and_room_list_and_keeps_serving() {
    let dir = tempdir();
    let file = dir.join("live.toml");
    std::fs::write(&file, FIRST).unwrap();
    let mut served = Served::start(&["--config", file.to_str().unwrap()], &[]);
    let addr = served.addr;
    assert_eq!(room_clients(addr, "a-1", "old").await.0, 200);
    assert_eq!(room_clients(addr, "a-1", "new").await.0, 401);
    let mut client = WsClient::connect(&format!("ws://{addr}/ws")).await;
    let id = client.authenticate("hup").await;

    let second = "listen = \"127.0.0.1:1\"\ndev = true\napi_key = \"new\"\nallow_rooms = [\"a-*\", \"b-*\"]\n";
    std::fs::write(&file, second).unwrap();
    served.signal("-HUP");
    served.wait_log("SIGHUP: api key changed", 1);
    served.wait_log(
        "SIGHUP: allow_rooms changed: [\"a-*\"] -> [\"a-*\", \"b-*\"]",
        1,
    );
    served.wait_log("SIGHUP: listen changed in the file; restart to apply", 1);
    assert!(
        !served.log().contains("\"new\""),
        "the key leaked into the log"
    );

    assert_eq!(room_clients(addr, "a-1", "new").await.0, 200);
    assert_eq!(room_clients(addr, "a-1", "old").await.0, 401);
    assert!(
        joins(addr, &mut client, &id, "a-2", "b-1").await,
        "b-* is allowed now"
    );
    assert!(
        !joins(addr, &mut client, &id, "a-3", "c-1").await,
        "c-* never was"
    );
    assert!(served.is_running());
    assert_eq!(served.addr, addr);
}

/// Regression: SIGHUP killed the server at once (no close frames, nothing logged).
#[tokio::test]
async fn sighup_without_a_config_file_keeps_the_server_and_its_clients() {
    let mut served = Served::start(&["--dev", "--listen", "127.0.0.1:0"], &[]);
    let mut client = WsClient::connect(&format!("ws://{}/ws", served.addr)).await;
    client.authenticate("stays").await;
    served.signal("-HUP");
    served.wait_log("SIGHUP: configuration unchanged", 1);
    client.expect_silence().await;
    let mut late = WsClient::connect(&format!("ws://{}/ws", served.addr)).await;
    late.authenticate("late").await;
    assert!(served.is_running());
}

/// A file that does not validate changes nothing; the log says why; the server serves on.
#[tokio::test]
async fn sighup_with_a_bad_file_keeps_everything_and_says_why() {
    let dir = tempdir();
    let file = dir.join("live.toml");
    let first = FIRST.replace("\"old\"", "\"new\"");
    std::fs::write(&file, &first).unwrap();
    let mut served = Served::start(&["--config", file.to_str().unwrap()], &[]);
    let mut client = WsClient::connect(&format!("ws://{}/ws", served.addr)).await;
    let id = client.authenticate("kept").await;
    let broken = first
        .replace("\"new\"", "\"newer\"")
        .replace("dev = true", "shards = -1");
    std::fs::write(&file, broken).unwrap();
    served.signal("-HUP");
    served.wait_log("SIGHUP: the configuration is refused, nothing changed", 1);
    assert!(
        served.log().contains("live.toml:2 (shards)"),
        "{}",
        served.log()
    );
    std::fs::write(&file, "this is = = not toml").unwrap();
    served.signal("-HUP");
    served.wait_log("SIGHUP: the configuration is refused, nothing changed", 2);
    assert_eq!(room_clients(served.addr, "a-1", "new").await.0, 200);
    assert_eq!(room_clients(served.addr, "a-1", "newer").await.0, 401);
    assert!(!joins(served.addr, &mut client, &id, "a-1", "b-1").await);
    assert!(served.is_running());
}

/// SIGHUP changes the log filter: started at `error`, a SIGHUP's info line is not
/// written; once the file says `info`, the SIGHUP that applies it is logged at info.
#[test]
fn sighup_reloads_the_log_filter() {
    let dir = tempdir();
    let file = dir.join("log.toml");
    let quiet = "listen = \"127.0.0.1:0\"\ndev = true\nlog = \"error\"\n";
    std::fs::write(&file, quiet).unwrap();
    let mut served = Served::start(&["--config", file.to_str().unwrap()], &[]);
    served.signal("-HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!served.log().contains("SIGHUP"), "{}", served.log());
    std::fs::write(&file, quiet.replace("error", "info")).unwrap();
    served.signal("-HUP");
    served.wait_log("SIGHUP: log filter changed: info", 1);
    assert!(served.is_running());
}

/// Regression: colour codes were written into log files.
#[test]
fn logs_to_a_file_have_no_colour_codes() {
    let dir = tempdir();
    let log = dir.join("stderr.log");
    let mut command = Command::new(BIN);
    hermetic(&mut command);
    let mut child = command
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("engine started")
    {
        assert!(std::time::Instant::now() < deadline, "no start logged");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("INSECURE") && !text.contains("\x1b["),
        "{text:?}"
    );
}

/// Colour on a terminal (a pseudo-terminal from `script`), but not with `NO_COLOR`.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    // The port is taken: the server logs its start-up lines, then fails to bind and exits.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let inner = format!("{BIN} serve --dev --listen {}", taken.local_addr().unwrap());
    let on_tty = |no_color: Option<&str>| {
        let mut command = Command::new("script");
        command
            .args(["-qec", &inner, "/dev/null"])
            .env_remove("NO_COLOR");
        command.env_remove("RUST_LOG").env_remove("SHARDCAST_LOG");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let out = command.output().expect("script (util-linux) runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_tty(None);
    assert!(
        coloured.contains("INSECURE") && coloured.contains("\x1b["),
        "{coloured:?}"
    );
    let plain = on_tty(Some("1"));
    assert!(
        plain.contains("INSECURE") && !plain.contains("\x1b["),
        "{plain:?}"
    );
}

/// `--log-format json`: every line is a JSON object with `level` and `message`.
#[test]
fn json_log_lines_parse_with_level_and_message() {
    let mut served = Served::start(
        &["--dev", "--listen", "127.0.0.1:0", "--log-format", "json"],
        &[],
    );
    served.wait_log("engine started", 1);
    served.sigterm();
    assert!(served.child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(100));
    let log = served.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() >= 4, "{log}");
    for line in &lines {
        assert!(
            line["level"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
    let insecure = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().contains("INSECURE"));
    assert_eq!(insecure.expect("the dev warning")["level"], json!("WARN"));
}

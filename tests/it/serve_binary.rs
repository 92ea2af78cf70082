//! The `shardcast` binary: configuration precedence, refusals, `token`, a graceful
//! shutdown on a real SIGTERM, and a TLS certificate reload on a real SIGHUP.

use shardcast::protocol::CloseReason;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::raw::upgrade_status;
use crate::support::served::{BIN, Served, refusal, tempdir};
use crate::support::tls::{TestCa, get};
use crate::support::{WAIT, WsClient, http};

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
    assert!(err.contains("same level"), "{err}");
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

#[test]
fn tls_needs_both_files_and_says_which_is_missing() {
    let err = refusal(&["serve", "--dev", "--tls-cert", "cert.pem"]);
    assert!(
        err.contains("--tls-key") && err.contains("missing"),
        "{err}"
    );
    let err = refusal(&["serve", "--dev", "--tls-key", "key.pem"]);
    assert!(
        err.contains("--tls-cert") && err.contains("missing"),
        "{err}"
    );
    let args = ["serve", "--dev", "--listen", "127.0.0.1:0"];
    let dir = tempdir();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let tls = ["--tls-cert", garbage, "--tls-key", "/no/such/key.pem"];
    let err = refusal(&[&args[..], &tls[..]].concat());
    assert!(
        err.contains("malformed PEM") && err.contains("garbage.pem"),
        "{err}"
    );
}

/// SIGHUP re-reads the certificate: connections made before keep receiving, new ones get
/// the new certificate, and a broken file on a later SIGHUP keeps the one in use.
#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_wss_clients() {
    let (ca, dir) = (TestCa::new(), tempdir());
    let live = ca.issue(&dir, "live");
    let (cert, key) = (
        live.cert_path.to_str().unwrap(),
        live.key_path.to_str().unwrap(),
    );
    let served = Served::start(
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--allow-rooms",
            "public-*",
        ],
        &[
            ("SHARDCAST_API_KEY", "k"),
            ("SHARDCAST_TLS_CERT", cert),
            ("SHARDCAST_TLS_KEY", key),
        ],
    );
    let (mut before, id) = ca.login(served.addr, "before").await;
    before.join(&["public-hup"]).await;
    wait_member(&ca, served.addr, &id).await;

    let renewed = ca.issue(&dir, "renewed");
    std::fs::copy(&renewed.cert_path, &live.cert_path).unwrap();
    std::fs::copy(&renewed.key_path, &live.key_path).unwrap();
    served.signal("-HUP");
    served.wait_log("TLS certificate reloaded", 1);
    assert_eq!(ca.presented(served.addr).await.unwrap(), renewed.der);

    std::fs::write(&live.key_path, "garbage").unwrap();
    served.signal("-HUP");
    served.wait_log("TLS reload failed", 1);
    assert_eq!(ca.presented(served.addr).await.unwrap(), renewed.der);

    let body = json!({ "type": "room", "target": "public-hup", "event": "after", "data": 1 });
    let publish = format!(
        "POST /api/publish HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer k\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.to_string().len()
    );
    assert_eq!(ca.https(served.addr, &publish).await.0, 202);
    before.expect_event("after").await;
}

/// Waits until client `id` is a member of `public-hup` (joins are asynchronous).
async fn wait_member(ca: &TestCa, addr: std::net::SocketAddr, id: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let request = get("/api/rooms/public-hup/clients")
        .replace("Connection", "Authorization: Bearer k\r\nConnection");
    while !ca.https(addr, &request).await.1.contains(id) {
        assert!(tokio::time::Instant::now() < deadline, "{id} never joined");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

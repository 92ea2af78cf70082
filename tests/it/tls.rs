//! TLS on the engine's port: wss and https over real sockets with a client that trusts
//! only a CA made at test time, plain TCP refused, certificate reload without dropping
//! connections, and the startup errors for unusable PEM files.

use serde_json::json;
use shardcast::tls::TlsConfig;
use shardcast::{EngineError, protocol::CloseReason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::tls::{TestCa, get, tempdir};
use crate::support::{TestServer, WAIT, builder};

/// A TLS engine with `shards` shards and its CA.
fn tls_server(shards: usize) -> (TestServer, TestCa, std::path::PathBuf) {
    let (ca, dir) = (TestCa::new(), tempdir());
    let cert = ca.issue(&dir, "server");
    let server = TestServer::start(builder(shards).tls(TestCa::config(&cert)));
    (server, ca, dir)
}

#[tokio::test]
async fn wss_clients_authenticate_join_and_receive_a_fanout() {
    let (server, ca, _dir) = tls_server(2);
    let mut clients = Vec::new();
    for user in ["ana", "bo", "cy"] {
        let (mut client, _) = ca.login(server.addr, user).await;
        client.join(&["public-tls"]).await;
        clients.push(client);
    }
    server.wait_members("public-tls", 3).await;
    let sent = server
        .handle
        .send_to_room("public-tls", "tick", &json!({ "n": 7 }), &[]);
    assert!(sent.is_ok());
    for client in &mut clients {
        let got = client.expect_event("tick").await;
        assert_eq!(got["data"]["n"], 7, "{got}");
    }
}

#[tokio::test]
async fn https_serves_health_on_the_same_port() {
    let (server, ca, _dir) = tls_server(1);
    let (status, body) = ca.https(server.addr, &get("/health")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    // A plain GET of the WebSocket path is answered too (426), then close_notify.
    assert_eq!(ca.https(server.addr, &get("/ws")).await.0, 426);
}

#[tokio::test]
async fn plain_tcp_gets_no_service_when_tls_is_on() {
    let (server, _ca, _dir) = tls_server(1);
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(get("/health").as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "the server closes the connection");
    assert!(!raw.starts_with(b"HTTP/"), "no HTTP answer: {raw:?}");
    let ws = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await;
    assert!(ws.is_err(), "a ws:// upgrade must fail");
}

/// Regression guard for the write path: a burst far larger than the socket buffers goes
/// through rustls with records the socket refused kept and sent on writability.
#[tokio::test]
async fn a_burst_larger_than_the_socket_buffers_arrives_whole_and_in_order() {
    let (server, ca, _dir) = tls_server(1);
    let (mut client, id) = ca.login(server.addr, "burst").await;
    let text = "x".repeat(2000);
    for n in 0..400 {
        let data = json!({ "n": n, "pad": text });
        server.handle.send_to_client(&id, "burst", &data).unwrap();
    }
    for n in 0..400 {
        let got = client.expect_event("burst").await;
        assert_eq!(got["data"]["n"], n);
    }
}

#[tokio::test]
async fn closing_over_tls_sends_the_close_frame() {
    let (mut server, ca, _dir) = tls_server(1);
    let (mut client, _) = ca.login(server.addr, "leaving").await;
    tokio::task::spawn_blocking(move || server.stop());
    client.expect_close(CloseReason::ShuttingDown).await;
}

#[tokio::test]
async fn reload_serves_the_new_certificate_to_new_connections_only() {
    let (ca, dir) = (TestCa::new(), tempdir());
    let first = ca.issue(&dir, "first");
    let server = TestServer::start(builder(2).tls(TestCa::config(&first)));
    let engine = server.engine.as_ref().unwrap();
    let (mut old, _) = ca.login(server.addr, "old").await;
    old.join(&["public-r"]).await;
    server.wait_members("public-r", 1).await;

    let second = ca.issue(&dir, "second");
    std::fs::copy(&second.cert_path, &first.cert_path).unwrap();
    std::fs::copy(&second.key_path, &first.key_path).unwrap();
    engine.reload_tls().expect("reload");
    assert_eq!(ca.presented(server.addr).await.unwrap(), second.der);

    // A bad file changes nothing: the second certificate stays.
    std::fs::write(&first.cert_path, "garbage").unwrap();
    assert!(engine.reload_tls().is_err());
    assert_eq!(ca.presented(server.addr).await.unwrap(), second.der);

    let sent = server.handle.send_to_room("public-r", "still", &1, &[]);
    assert!(sent.is_ok());
    old.expect_event("still").await;
}

#[test]
fn unusable_pem_files_fail_start_naming_the_file() {
    let (ca, dir) = (TestCa::new(), tempdir());
    let good = ca.issue(&dir, "good");
    let other = ca.issue(&dir, "other");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a pem file\n").unwrap();
    let missing = dir.join("missing.pem");
    let cases = [
        (
            TlsConfig::new(&missing, &good.key_path),
            "cannot read the TLS certificate file",
        ),
        (
            TlsConfig::new(&good.cert_path, &missing),
            "cannot read the TLS private key file",
        ),
        (
            TlsConfig::new(&garbage, &good.key_path),
            "no certificate in",
        ),
        (
            TlsConfig::new(&good.cert_path, &garbage),
            "no private key in",
        ),
        (
            TlsConfig::new(&good.cert_path, &other.key_path),
            "cannot be used together",
        ),
    ];
    for (config, expected) in cases {
        let err = start_error(config);
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
    }
}

fn start_error(config: TlsConfig) -> String {
    match builder(1).tls(config).start() {
        Err(err @ EngineError::Tls(_)) => err.to_string(),
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(_) => panic!("the engine started with unusable TLS files"),
    }
}

#[test]
fn reload_without_tls_says_so() {
    let server = TestServer::with_shards(1);
    let err = server.engine.as_ref().unwrap().reload_tls().unwrap_err();
    assert!(err.to_string().contains("not enabled"), "{err}");
}

/// The read path: a 100 KB message spans many TLS records and more plaintext than one
/// read of the shard's 64 KiB buffer.
#[tokio::test]
async fn a_message_larger_than_the_read_buffer_arrives_over_tls() {
    let (server, ca, _dir) = echo_server();
    let (mut client, _) = ca.login(server.addr, "big").await;
    client.emit("shout", json!("y".repeat(100_000))).await;
    let got = client.expect_event("echo").await;
    assert_eq!(got["data"], 100_002, "{got}");
}

/// Regression guard for the hand-over: a frame sent right behind the upgrade request, in
/// the same TLS record, is decrypted by rustls during the HTTP phase, which takes only
/// the bytes it reads (1 KiB at a time); the rest waits in rustls, and the socket never
/// becomes readable for it again, so the hand-over must take it out of rustls.
#[tokio::test]
async fn a_frame_sent_with_the_upgrade_request_is_read_after_the_hand_over() {
    let (server, ca, _dir) = echo_server();
    let mut tls = ca.connect(server.addr).await.unwrap();
    let mut flight = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec();
    let auth =
        json!({ "event": "authenticate", "data": { "token": "early", "pad": "p".repeat(2500) } });
    flight.extend(masked_text(&auth.to_string()));
    tls.write_all(&flight).await.unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"connected\"") {
        let read = tokio::time::timeout(WAIT, tls.read(&mut chunk)).await;
        let n = read.expect("the early frame is answered").unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
}

/// A TLS engine whose message handler answers each custom event with the length of its
/// `data`.
fn echo_server() -> (TestServer, TestCa, std::path::PathBuf) {
    let (ca, dir) = (TestCa::new(), tempdir());
    let cert = ca.issue(&dir, "server");
    let echo = builder(1)
        .tls(TestCa::config(&cert))
        .on_message(|handle, message| async move {
            let len = message.data.map_or(0, |d| d.get().len());
            let _ = handle.send_to_client(&message.client_id.to_string(), "echo", &len);
        });
    (TestServer::start(echo), ca, dir)
}

/// A client text frame, masked with the zero key (allowed; the payload stays readable).
fn masked_text(text: &str) -> Vec<u8> {
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(text.len() as u64).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(text.as_bytes());
    frame
}

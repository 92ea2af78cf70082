//! The HTTP surface on the engine's port.

use std::time::Duration;

use serde_json::json;

use crate::support::{self, TestServer, http};

fn with_key() -> TestServer {
    TestServer::start(support::builder(2).api_key("secret-key"))
}

#[tokio::test]
async fn health_ready_metrics_stats_and_dashboard() {
    let server = with_key();
    let (status, body) = http(server.addr, "GET", "/health", &[], "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert_eq!(http(server.addr, "GET", "/ready", &[], "").await.0, 200);
    let (status, metrics) = http(server.addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("shardcast_connections{shard=\"1\"}"),
        "{metrics}"
    );
    let _client = server.login("m").await;
    let (status, stats) = http(server.addr, "GET", "/api/stats", &[], "").await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["authenticated"], 1);
    let (status, page) = http(server.addr, "GET", "/dashboard", &[], "").await;
    assert_eq!(status, 200);
    assert!(page.contains("/api/stats"));
}

#[tokio::test]
async fn ws_path_without_upgrade_is_426_and_upgrade_elsewhere_is_404() {
    let server = with_key();
    assert_eq!(http(server.addr, "GET", "/ws", &[], "").await.0, 426);
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    assert_eq!(
        http(server.addr, "GET", "/elsewhere", &upgrade, "").await.0,
        404
    );
    assert_eq!(
        http(server.addr, "GET", "/nothing-here", &[], "").await.0,
        404
    );
    let bad_key = [
        upgrade[0],
        upgrade[1],
        ("Sec-WebSocket-Key", "short"),
        upgrade[3],
    ];
    assert_eq!(http(server.addr, "GET", "/ws", &bad_key, "").await.0, 400);
}

#[tokio::test]
async fn publish_checks_the_key_before_the_body() {
    let server = with_key();
    let good = json!({ "type": "broadcast", "event": "e" }).to_string();
    assert_eq!(
        http(server.addr, "POST", "/api/publish", &[], &good)
            .await
            .0,
        401
    );
    let wrong = [("Authorization", "Bearer nope")];
    assert_eq!(
        http(server.addr, "POST", "/api/publish", &wrong, "not json")
            .await
            .0,
        401
    );
    let keyless = TestServer::with_shards(1);
    let auth = [("Authorization", "Bearer secret-key")];
    assert_eq!(
        http(keyless.addr, "POST", "/api/publish", &auth, &good)
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn publish_rejects_bad_bodies_with_400() {
    let server = with_key();
    let auth = [("Authorization", "Bearer secret-key")];
    for body in [
        "not json".to_owned(),
        "[]".to_owned(),
        json!({ "type": "nope", "event": "e" }).to_string(),
        json!({ "type": "room", "event": "", "target": "r" }).to_string(),
        json!({ "type": "room", "event": "e" }).to_string(),
        json!({ "type": "user", "event": "e", "target": "" }).to_string(),
        json!({ "type": "room", "event": "e", "target": "r", "exclude": "x" }).to_string(),
        json!({ "type": "room", "event": "e", "target": "r", "exclude": [1] }).to_string(),
    ] {
        let (status, _) = http(server.addr, "POST", "/api/publish", &auth, &body).await;
        assert_eq!(status, 400, "{body}");
    }
}

#[tokio::test]
async fn publish_delivers_to_every_target_type() {
    let server = with_key();
    let auth = [("Authorization", "Bearer secret-key")];
    let (mut a, a_id) = server.login("pub-a").await;
    let (mut b, b_id) = server.login("pub-b").await;
    b.join(&["public-pub"]).await;
    server.wait_members("public-pub", 1).await;
    let cases = [
        (
            json!({ "type": "client", "target": a_id, "event": "c", "data": 1 }),
            true,
            false,
        ),
        (
            json!({ "type": "user", "target": "pub-b", "event": "u", "data": 2 }),
            false,
            true,
        ),
        (
            json!({ "type": "room", "target": "public-pub", "event": "r", "data": 3 }),
            false,
            true,
        ),
        (
            json!({ "type": "broadcast", "event": "b", "data": 4, "exclude": [b_id] }),
            true,
            false,
        ),
    ];
    for (body, to_a, to_b) in cases {
        let (status, reply) = http(
            server.addr,
            "POST",
            "/api/publish",
            &auth,
            &body.to_string(),
        )
        .await;
        assert_eq!((status, reply.as_str()), (202, r#"{"ok":true}"#));
        let event = body["event"].as_str().unwrap();
        for (client, expected) in [(&mut a, to_a), (&mut b, to_b)] {
            if expected {
                let m = client.expect_event(event).await;
                assert_eq!(m["data"], body["data"]);
            }
        }
    }
    a.expect_silence().await;
    b.expect_silence().await;
}

#[tokio::test]
async fn local_queries_need_the_key() {
    let server = with_key();
    let (_client, id) = server.login("q").await;
    assert_eq!(
        http(server.addr, "GET", "/api/users/q/clients", &[], "")
            .await
            .0,
        401
    );
    let auth = [("Authorization", "Bearer secret-key")];
    let (status, body) = http(server.addr, "GET", "/api/users/q/clients", &auth, "").await;
    assert_eq!(status, 200);
    assert!(body.contains(&id), "{body}");
    let (status, body) = http(
        server.addr,
        "GET",
        "/api/rooms/ws-default/clients",
        &auth,
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains(&id), "{body}");
}

#[tokio::test]
async fn slowloris_handshakes_time_out_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(
        support::builder(1).configure(|c| c.request_timeout = Duration::from_millis(300)),
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: slow\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    tokio::time::timeout(support::WAIT, stream.read_to_string(&mut reply))
        .await
        .expect("closed in time")
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
}

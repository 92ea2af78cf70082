//! The HTTP surface on the engine's port.

use std::time::Duration;

use serde_json::json;

use crate::support::raw::{RawConn, Received, get};
use crate::support::{self, TestServer, WsClient, http};

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
    // Assets relative to the page, so it also works under an application's prefix.
    assert!(page.contains(r#"src="dashboard/app.js""#), "{page}");
    let (status, page) = http(server.addr, "GET", "/dashboard/", &[], "").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"src="app.js""#), "{page}");
}

#[tokio::test]
async fn ws_path_without_upgrade_is_426_and_upgrade_elsewhere_is_404() {
    let server = with_key();
    assert_eq!(http(server.addr, "GET", "/ws", &[], "").await.0, 426);
    let upgrade = crate::support::UPGRADE_HEADERS;
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

/// A one-shard server whose `request_timeout` (reads, writes, idle) is 300 ms.
fn short_timeout() -> TestServer {
    TestServer::start(
        support::builder(1).configure(|c| c.request_timeout = Duration::from_millis(300)),
    )
}

/// Sends `raw` on a fresh connection and reads until the server closes it.
async fn exchange_until_closed(server: &TestServer, raw: &str) -> Received {
    let mut conn = RawConn::open(server.addr).await;
    conn.send(raw.as_bytes()).await;
    conn.read_until_closed().await
}

/// Regression: with `Content-Length: 0` and `Content-Length: N` the first one won, so the
/// body (a whole request) was read as a second request: request smuggling past any proxy
/// that honours the other header. Both orders are refused and the connection closed.
#[tokio::test]
async fn request_smuggling_with_two_content_lengths_is_400_and_closes() {
    let server = with_key();
    let smuggled = get("/health", "");
    for (first, second) in [(0, smuggled.len()), (smuggled.len(), 0)] {
        let raw = format!(
            "POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Length: {first}\r\nContent-Length: {second}\r\n\r\n{smuggled}"
        );
        let received = exchange_until_closed(&server, &raw).await;
        assert_eq!(received.statuses(), [400], "{received:?}");
        assert!(
            received.text.contains("duplicate Content-Length"),
            "{received:?}"
        );
    }
}

/// Regression: `Content-Length: +45` was read as 45 (Rust's integer parsing takes a sign),
/// where a proxy may refuse it or read it differently.
#[tokio::test]
async fn content_length_that_is_not_digits_is_400_and_closes() {
    let server = with_key();
    let smuggled = get("/health", "");
    for value in [format!("+{}", smuggled.len()), "0x10".into(), "5, 5".into()] {
        let raw = format!(
            "POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Length: {value}\r\n\r\n{smuggled}"
        );
        let received = exchange_until_closed(&server, &raw).await;
        assert_eq!(received.statuses(), [400], "{value}: {received:?}");
    }
}

/// Any framing error closes the connection after its answer: what follows is never read
/// as another request.
#[tokio::test]
async fn framing_errors_close_without_reading_the_rest_as_a_request() {
    let server = with_key();
    let smuggled = get("/health", "");
    for raw in [
        format!(
            "POST /api/publish HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
        ),
        format!("GET /health HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n{smuggled}"),
        format!(
            "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nContent-Length: {}\r\n\r\n{smuggled}",
            smuggled.len()
        ),
    ] {
        let received = exchange_until_closed(&server, &raw).await;
        assert_eq!(received.statuses(), [400], "{raw:?}: {received:?}");
    }
}

/// Regression: the 426 of the WebSocket path (and the 404 of an upgrade elsewhere) was
/// sent without reading the request's body, so the body was parsed as the next request.
#[tokio::test]
async fn body_sent_to_the_ws_path_is_not_read_as_a_second_request() {
    let server = with_key();
    let smuggled = get("/health", "");
    let mut conn = RawConn::open(server.addr).await;
    let raw = format!(
        "GET /ws HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    conn.send(raw.as_bytes()).await;
    conn.send(get("/nothing", "").as_bytes()).await;
    let received = conn.read_quiet().await;
    assert_eq!(received.statuses(), [426, 404], "{received:?}");
    assert!(
        !received.closed,
        "a well-framed request keeps the connection"
    );
}

/// Regression: the answer to HEAD carried the body, which a keep-alive client reads as
/// the start of the next response.
#[tokio::test]
async fn head_response_has_no_body_and_keep_alive_continues() {
    let server = with_key();
    let mut conn = RawConn::open(server.addr).await;
    conn.send(b"HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let head = conn.read_quiet().await.text;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.ends_with("\r\n\r\n"),
        "a body followed the head: {head:?}"
    );
    assert_eq!(
        support::raw::content_length(&head),
        r#"{"status":"ok"}"#.len()
    );
    conn.send(get("/health", "").as_bytes()).await;
    let answer = conn.read_quiet().await;
    assert!(answer.text.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    assert!(answer.text.ends_with(r#"{"status":"ok"}"#), "{answer:?}");
    assert!(!answer.closed);
}

/// Regression: a client that pipelined requests and never read blocked the response write
/// forever, holding the connection and its descriptor. The write is now bounded by the
/// request timeout, then the connection is dropped (the client's writes fail).
#[tokio::test]
async fn client_that_never_reads_is_dropped_after_the_write_timeout() {
    use tokio::io::AsyncWriteExt;
    let server = short_timeout();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    let requests = get("/dashboard", "").repeat(64);
    let writing = async { while stream.write_all(requests.as_bytes()).await.is_ok() {} };
    let dropped = tokio::time::timeout(support::WAIT, writing).await;
    assert!(
        dropped.is_ok(),
        "the server still holds a client that never reads"
    );
}

/// Regression: an idle keep-alive connection got an unsolicited 408 when the request
/// timeout passed; it is now closed quietly.
#[tokio::test]
async fn idle_keep_alive_connection_closes_quietly_without_408() {
    let server = short_timeout();
    let received = exchange_until_closed(&server, &get("/health", "")).await;
    assert_eq!(received.statuses(), [200], "{received:?}");
    let received = exchange_until_closed(&server, "").await;
    assert_eq!(received.text, "", "a connection that never sent a byte");
}

/// A request that started arriving on a kept-alive connection and stalls still gets 408.
#[tokio::test]
async fn request_stalled_after_its_first_bytes_gets_408_on_a_kept_alive_connection() {
    let server = short_timeout();
    let raw = format!("{}GET /health HTTP/1.1\r\nHo", get("/health", ""));
    let received = exchange_until_closed(&server, &raw).await;
    assert_eq!(received.statuses(), [200, 408], "{received:?}");
}

/// Regression: `GET http://host/health` (absolute-form, RFC 9112 §3.2.2) was routed by
/// the whole URI and answered 404.
#[tokio::test]
async fn absolute_form_target_is_routed_by_its_path() {
    let server = with_key();
    let mut conn = RawConn::open(server.addr).await;
    conn.send(b"GET http://example.com/health HTTP/1.1\r\nHost: other\r\n\r\n")
        .await;
    conn.send(get("HTTPS://example.com:8443/api/stats?x=1", "").as_bytes())
        .await;
    let received = conn.read_quiet().await;
    assert_eq!(received.statuses(), [200, 200], "{received:?}");
    assert!(received.text.contains(r#"{"status":"ok"}"#), "{received:?}");
    let upgrade = support::raw::upgrade(&format!("http://{}/ws", server.addr), None);
    let mut conn = RawConn::open(server.addr).await;
    conn.send(upgrade.as_bytes()).await;
    let switched = conn.read_quiet().await.text;
    assert!(switched.starts_with("HTTP/1.1 101"), "{switched}");
}

/// Regression: every method but POST on a route was treated as GET or answered 404; an
/// unknown method is now 501 everywhere and a known one a route does not serve 405.
#[tokio::test]
async fn unknown_method_is_501_and_known_method_on_a_route_is_405() {
    let server = with_key();
    for (method, path, status, allow) in [
        ("BREW", "/health", 501, None),
        ("BREW", "/nothing", 501, None),
        ("get", "/health", 501, None),
        ("OPTIONS", "/health", 405, Some("GET, HEAD")),
        ("POST", "/metrics", 405, Some("GET, HEAD")),
        ("DELETE", "/api/rooms/r/clients", 405, Some("GET, HEAD")),
        ("PUT", "/api/publish", 405, Some("POST")),
        ("GET", "/api/publish", 405, Some("POST")),
        ("POST", "/ws", 405, Some("GET, HEAD")),
        ("PATCH", "/nothing", 404, None),
    ] {
        let mut conn = RawConn::open(server.addr).await;
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        conn.send(raw.as_bytes()).await;
        let received = conn.read_quiet().await;
        assert_eq!(
            received.statuses(),
            [status],
            "{method} {path}: {received:?}"
        );
        let allow = allow.map(|a| format!("\r\nAllow: {a}\r\n"));
        let has_allow = received.text.contains("\r\nAllow: ");
        assert_eq!(has_allow, allow.is_some(), "{method} {path}: {received:?}");
        assert!(
            allow.is_none_or(|a| received.text.contains(&a)),
            "{received:?}"
        );
        assert!(!received.closed, "{method} {path} keeps the connection");
    }
}

/// A server allowing `https://*.example.com` only.
fn with_origins() -> TestServer {
    TestServer::start(
        support::builder(1)
            .configure(|c| c.allowed_origins = vec!["https://*.example.com".to_owned()]),
    )
}

#[tokio::test]
async fn foreign_origin_is_refused_with_403_and_never_upgrades() {
    let server = with_origins();
    let upgrade = support::raw::upgrade("/ws", Some("https://evil.test"));
    let received = exchange_until_closed(&server, &upgrade).await;
    assert_eq!(received.statuses(), [403], "{received:?}");
    assert_eq!(server.handle.metrics().origin_refused.get(), 1);
    assert_eq!(server.handle.stats().origin_refused, 1);
    let (_, metrics) = http(server.addr, "GET", "/metrics", &[], "").await;
    assert!(
        metrics.contains("\nshardcast_origin_refused_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn allowed_origin_glob_upgrades_and_authenticates() {
    let server = with_origins();
    let mut client = WsClient::connect_from(&server.ws_url(), "https://app.example.com").await;
    client.authenticate("from-app").await;
    assert_eq!(server.handle.metrics().origin_refused.get(), 0);
}

#[tokio::test]
async fn upgrade_without_origin_passes_the_allow_list() {
    let server = with_origins();
    let (_client, _id) = server.login("no-origin").await;
    assert_eq!(server.handle.metrics().origin_refused.get(), 0);
}

#[tokio::test]
async fn no_allow_list_lets_every_origin_upgrade() {
    let server = TestServer::with_shards(1);
    let mut client = WsClient::connect_from(&server.ws_url(), "https://evil.test").await;
    client.authenticate("anywhere").await;
    assert_eq!(server.handle.metrics().origin_refused.get(), 0);
}

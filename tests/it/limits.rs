//! What one client (or one address) can take: connection caps, rooms per client, inbound
//! rate, failed-authentication throttling, fairness on the way to `ws:inbound`, one large
//! message, deep JSON — each refusal counted in /metrics.

use crate::support::served::listening_addr;
use std::time::Duration;

use serde_json::json;
use shardcast::protocol::{CloseReason, ErrorText};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::redis::{RawSubscriber, RedisServer, wait_for};
use crate::support::{self, TestServer, WAIT};

/// The status line and headers a raw upgrade request gets (the connection then ends or
/// switches protocols).
async fn upgrade_answer(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(support::UPGRADE_REQUEST)
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(WAIT, stream.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The value of a metric in the server's /metrics text (summed over shards).
async fn metric(server: &TestServer, name: &str) -> u64 {
    let (_, text) = support::http(server.addr, "GET", "/metrics", &[], "").await;
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn connections_past_the_process_cap_get_503_with_retry_after() {
    let server = TestServer::start(support::builder(2).configure(|c| c.max_connections = 2));
    let (mut first, _) = server.login("a").await;
    let (_second, _) = server.login("b").await;
    let refused = upgrade_answer(server.addr).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("Retry-After: 5"), "{refused}");
    assert_eq!(
        metric(&server, "shardcast_connections_refused_total").await,
        1
    );
    // Established clients are unaffected.
    server.handle.send_to_user("a", "still", &1).unwrap();
    first.expect_event("still").await;
    drop(first);
    wait_for("a place is given back", WAIT, || {
        server.handle.stats().connections < 2
    })
    .await;
    assert!(
        upgrade_answer(server.addr)
            .await
            .starts_with("HTTP/1.1 101")
    );
}

#[tokio::test]
async fn connections_past_the_per_address_cap_get_503() {
    let server = TestServer::start(support::builder(1).configure(|c| c.max_connections_per_ip = 1));
    let (_held, _) = server.login("a").await;
    let refused = upgrade_answer(server.addr).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
}

#[tokio::test]
async fn joins_past_max_rooms_per_client_are_dropped_and_counted() {
    // Two default rooms count too: 4 leaves room for two joins.
    let server = TestServer::start(support::builder(1).configure(|c| c.max_rooms_per_client = 4));
    let (mut client, _) = server.login("r").await;
    let rooms: Vec<String> = (0..5).map(|i| format!("public-{i}")).collect();
    client.emit("join", json!({ "rooms": rooms })).await;
    server.wait_members("public-1", 1).await;
    tokio::time::sleep(support::QUIET).await;
    for (i, room) in rooms.iter().enumerate() {
        let members = server.handle.clients_of_room(room).await.len();
        assert_eq!(members, usize::from(i < 2), "{room}");
    }
    assert_eq!(metric(&server, "shardcast_rooms_refused_total").await, 3);
}

#[tokio::test]
async fn a_client_over_its_message_rate_is_closed_1008() {
    let server = TestServer::start(support::builder(1).configure(|c| {
        c.client_message_rate = 5;
        c.client_message_burst = 5;
    }));
    let (mut fast, _) = server.login("fast").await;
    let (mut calm, _) = server.login("calm").await;
    for _ in 0..20 {
        fast.emit("heartbeat", json!(null)).await;
    }
    fast.expect_close(CloseReason::RateLimited).await;
    assert_eq!(metric(&server, "shardcast_rate_limited_total").await, 1);
    calm.emit("heartbeat", json!(null)).await;
    server.handle.send_to_user("calm", "ok", &1).unwrap();
    calm.expect_event("ok").await;
}

#[tokio::test]
async fn failed_authentications_throttle_the_address_with_429() {
    let server = TestServer::start(support::builder(1).configure(|c| {
        c.max_auth_failures_per_ip = 3;
    }));
    for _ in 0..3 {
        let mut bad = server.connect().await;
        bad.emit("authenticate", json!({ "token": "" })).await;
        bad.expect_error(ErrorText::AuthenticationFailed).await;
        bad.expect_close(CloseReason::AuthFailed).await;
    }
    let refused = upgrade_answer(server.addr).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("Retry-After:"), "{refused}");
    assert_eq!(metric(&server, "shardcast_auth_throttled_total").await, 1);
}

/// Regression: a message bigger than `backpressure_limit` was dropped for every
/// recipient, even one with an empty queue.
#[tokio::test]
async fn a_message_larger_than_the_backpressure_limit_reaches_an_idle_client() {
    let server = TestServer::start(support::builder(1).configure(|c| {
        c.backpressure_limit = 64 * 1024;
        c.max_payload_length = 4 << 20;
    }));
    let (mut client, _) = server.login("big").await;
    let big = "x".repeat(2 << 20);
    server.handle.broadcast("big", &big, &[]).unwrap();
    let got = client.expect_event("big").await;
    assert_eq!(got["data"].as_str().map(str::len), Some(big.len()));
}

/// Regression: a custom event nesting 50,000 levels was forwarded as is.
#[tokio::test]
async fn deeply_nested_json_is_invalid_message_format() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = TestServer::start(support::builder(1).on_message(move |_h, msg| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(msg.event);
        }
    }));
    let (mut client, _) = server.login("deep").await;
    let deep = format!(
        r#"{{"event":"deep","data":{}0{}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    client.send_text(&deep).await;
    client.expect_error(ErrorText::InvalidMessageFormat).await;
    client.emit("shallow", json!([[1]])).await;
    let forwarded = tokio::time::timeout(WAIT, rx.recv()).await.unwrap();
    assert_eq!(
        forwarded.as_deref(),
        Some("shallow"),
        "only the shallow one"
    );
}

/// Regression: while one client flooded custom events, only 2–6 of another client's 50
/// reached `ws:inbound` (one publish queue, no per-client share). Here Redis stalls for a
/// moment while the flood arrives, so the publish queue would fill: the flooder may hold
/// only its share, and the polite client's events all get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_loses_its_own_events_never_another_clients() {
    let redis = RedisServer::start();
    let builder = support::builder(1)
        .configure(|c| c.max_forwarded_per_client = 8)
        .on_message(|handle, message| async move {
            handle.forward_inbound(&message);
        });
    // A small publish queue, so that without per-client shares the flood fills it.
    let settings = shardcast::redis::RedisSettings {
        publish_queue: 64,
        ..shardcast::redis::RedisSettings::new([redis.url()])
    };
    let server = TestServer::start(builder.redis(settings));
    wait_for("ready", WAIT, || server.handle.is_ready()).await;
    let mut inbound = RawSubscriber::psubscribe(&redis.url(), &["ws:inbound"]).await;
    let (mut flooder, _) = server.login("flooder").await;
    let (mut polite, _) = server.login("polite").await;
    redis.pause(600);
    for i in 0..1000 {
        flooder.emit("flood", json!(i)).await;
        if i % 200 == 0 {
            polite.emit("polite", json!(i / 200)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    for i in 5..50 {
        polite.emit("polite", json!(i)).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut polite_seen = 0;
    while let Some((_, bytes)) = inbound.next(Duration::from_secs(2)).await {
        let event: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        polite_seen += usize::from(event["event"] == "polite");
    }
    assert_eq!(polite_seen, 50, "every event of the polite client");
    assert!(
        metric(&server, "shardcast_inbound_dropped_total").await > 0,
        "the flooder's"
    );
}

/// Out of file descriptors: established clients keep being served, the acceptor backs
/// off without spinning, logs once per interval, and counts. The real binary under a
/// small `ulimit -n`, flooded with connections it cannot accept.
#[tokio::test]
async fn out_of_descriptors_keeps_serving_and_logs_once() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_shardcast");
    let script = format!("ulimit -n 64; exec {bin} serve --dev --listen 127.0.0.1:0 --shards 1");
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shardcast");
    let addr = listening_addr(&mut child).unwrap_or_else(|line| panic!("printed {line:?}"));
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let mut served = crate::support::WsClient::connect(&format!("ws://{addr}/ws")).await;
    served.authenticate("kept").await;
    let mut flood = Vec::new();
    for _ in 0..120 {
        flood.push(
            tokio::net::TcpStream::connect(addr)
                .await
                .expect("kernel backlog accepts"),
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    served.send_text("not json").await;
    served.expect_error(ErrorText::InvalidMessageFormat).await;
    drop(flood);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, metrics) = crate::support::http(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    let errors: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("shardcast_accept_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(errors > 10, "each failed accept is counted ({errors})");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let lines = log.join().unwrap();
    let logged = lines.iter().filter(|l| l.contains("accept failed")).count();
    assert_eq!(logged, 1, "logged once, not per failure: {lines:#?}");
}

/// Measurement (run with `--ignored --nocapture`): how long one shard is busy with a
/// client in 150,000 rooms that leaves 7,500 of them in one message, and with a join of
/// 7,500 names (every other client of the shard waits that long).
/// Issue 10's probe found 4.8–6.6 s for the leave before the room sets (PERF.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement (~1 min); run with --ignored --nocapture"]
async fn measure_shard_time_of_a_large_leave_and_join() {
    let server = TestServer::start(support::builder(1).configure(|c| {
        c.max_rooms_per_client = 200_000;
        c.max_payload_length = 256 * 1024;
    }));
    let (mut heavy, _) = server.login("heavy").await;
    let batch =
        |b: usize| -> Vec<String> { (0..7_500).map(|i| format!("public-{b}-{i}")).collect() };
    let started = std::time::Instant::now();
    for b in 0..20 {
        heavy.emit("join", json!({ "rooms": batch(b) })).await;
    }
    server.wait_members("public-19-7499", 1).await;
    println!("150,000 joins took {:?}", started.elapsed());
    let leave = shard_time(&mut heavy, "leave", batch(7)).await;
    let join = shard_time(&mut heavy, "join", batch(20)).await;
    println!("shard time: leave of 7,500 from 150,000 rooms {leave:?}; join of 7,500 {join:?}");
}

/// How long the shard spends on `heavy`'s `event`: the time until its answer to a
/// message sent right after it (one connection's messages are handled in order; the
/// shard serves nobody else meanwhile).
async fn shard_time(
    heavy: &mut crate::support::WsClient,
    event: &str,
    rooms: Vec<String>,
) -> Duration {
    let sent = std::time::Instant::now();
    heavy.emit(event, json!({ "rooms": rooms })).await;
    heavy.send_text("not json").await;
    let answer = heavy.next_json().await;
    assert_eq!(answer["event"], "error", "{answer}");
    sent.elapsed()
}

//! permessage-deflate (RFC 7692): negotiation, one compression per message shared by
//! every recipient that negotiated it, compressed client messages and their limits, and
//! a real browser. Clients are real sockets over loopback: a hand-written
//! permessage-deflate client (`support::deflate_ws`, zlib's algorithms via flate2),
//! tungstenite clients without the extension, and headless Chromium.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::cdp::{Chromium, Page};
use crate::support::deflate_ws::{DeflateWs, deflate};
use crate::support::{TestServer, WAIT, builder, shard_of};

/// What Chromium and Firefox offer.
const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";
/// What shardcast answers to any acceptable offer without a window limit.
const ANSWER: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// A test engine with compression on (2 shards).
fn compressing(configure: impl FnOnce(&mut shardcast::EngineConfig)) -> TestServer {
    TestServer::start(builder(2).configure(|c| {
        c.compression = true;
        configure(c);
    }))
}

/// A market-data-like JSON object of about 1 KB: realistic keys, strings and numbers.
fn quote_book(seq: u64) -> Value {
    let levels: Vec<Value> = (0..12)
        .map(|i| {
            let venue = ["XNAS", "XNYS", "BATS", "EDGX"][i as usize % 4];
            json!({
                "price": 43_250.5 + f64::from(i) * 0.5 + seq as f64,
                "size": 0.125 * f64::from(i + 1),
                "orders": i * 3 + 1,
                "venue": venue,
            })
        })
        .collect();
    json!({ "symbol": "BTC-USD", "seq": seq, "bids": levels, "status": "open" })
}

/// Sums a shard counter over the engine's shards.
fn total(server: &TestServer, counter: fn(&shardcast::metrics::ShardMetrics) -> u64) -> u64 {
    let metrics = server.handle.metrics();
    metrics.shards().iter().map(|s| counter(s)).sum()
}

fn compressions(server: &TestServer) -> u64 {
    total(server, |s| s.compressions.get())
}

fn compressed_deliveries(server: &TestServer) -> u64 {
    total(server, |s| s.compressed_deliveries.get())
}

/// Connects compressing clients until each of the 2 shards has at least two, logs them
/// in and joins `room`.
async fn compressing_members(server: &TestServer, room: &str) -> Vec<DeflateWs> {
    let mut clients = Vec::new();
    let mut per_shard = [0; 2];
    while per_shard.iter().any(|&n| n < 2) {
        assert!(clients.len() < 40, "placement never reached both shards");
        let mut client = DeflateWs::connect(server.addr, Some(BROWSER_OFFER)).await;
        assert_eq!(client.extensions.as_deref(), Some(ANSWER));
        let id = client.authenticate(&format!("u{}", clients.len())).await;
        per_shard[shard_of(&id, 2)] += 1;
        client
            .emit_compressed("join", json!({ "rooms": [room] }))
            .await;
        clients.push(client);
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_compressed_once_for_every_recipient_on_every_shard() {
    let server = compressing(|_| {});
    let room = "public-book";
    let mut compressing = compressing_members(&server, room).await;
    let mut plain = Vec::new();
    for user in ["p1", "p2"] {
        let (mut client, _) = server.login(user).await;
        client.join(&[room]).await;
        plain.push(client);
    }
    server
        .wait_members(room, compressing.len() + plain.len())
        .await;

    for seq in 1..=3 {
        let (before, delivered_before) = (compressions(&server), compressed_deliveries(&server));
        let book = quote_book(seq);
        server
            .handle
            .send_to_room(room, "book", &book, &[])
            .expect("send");
        let expected = plain[0].next_text().await;
        assert_eq!(plain[1].next_text().await, expected);
        for client in &mut compressing {
            let message = client.next().await;
            assert!(message.compressed, "RSV1 on a 1 KB message");
            assert_eq!(
                message.payload,
                expected.as_bytes(),
                "inflates to the same bytes"
            );
            assert!(
                message.wire_len * 3 < expected.len(),
                "{} wire bytes for {}",
                message.wire_len,
                expected.len()
            );
        }
        assert_eq!(
            compressions(&server) - before,
            1,
            "one compression for {} recipients on 2 shards",
            compressing.len()
        );
        assert_eq!(
            compressed_deliveries(&server) - delivered_before,
            compressing.len() as u64
        );
    }

    // Below compression_min_size (256 bytes): plain to everyone, nothing compressed.
    let before = compressions(&server);
    server
        .handle
        .send_to_room(room, "tick", &json!({ "n": 1 }), &[])
        .expect("send");
    for client in &mut compressing {
        let message = client.next().await;
        assert!(!message.compressed);
        assert_eq!(message.json()["data"], json!({ "n": 1 }));
    }
    assert_eq!(compressions(&server), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_replays_and_replies_are_compressed_too() {
    let server = compressing(|c| c.history_rooms = vec!["public-h*".into()]);
    let room = "public-hist";
    // A compressing member when the messages are published: each is compressed then.
    let mut publisher_side = DeflateWs::connect(server.addr, Some(BROWSER_OFFER)).await;
    publisher_side.authenticate("watcher").await;
    publisher_side
        .emit_compressed("join", json!({ "rooms": [room] }))
        .await;
    server.wait_members(room, 1).await;
    let mut epoch = Value::Null;
    for seq in 1..=3 {
        let book = quote_book(seq);
        server
            .handle
            .send_to_room(room, "book", &book, &[])
            .expect("send");
        epoch = publisher_side.expect_event("book").await["epoch"].clone();
    }
    let before = compressions(&server);
    // A late joiner asks to recover from the start: the replayed messages were kept
    // marked, so they are not compressed again.
    let mut late = DeflateWs::connect(server.addr, Some(BROWSER_OFFER)).await;
    late.authenticate("late").await;
    let since = json!({ "rooms": [room], "since": { room: { "offset": 0, "epoch": epoch } } });
    late.emit_compressed("join", since).await;
    // The replay comes first, then `ws:joined`.
    let mut replayed = Vec::new();
    let joined = loop {
        let message = late.next().await;
        let json = message.json();
        if json["event"] == "ws:joined" {
            break json;
        }
        if json["event"] == "book" {
            assert!(message.compressed, "a replayed 1 KB message is compressed");
            replayed.push(json["offset"].clone());
        }
    };
    assert_eq!(replayed, [json!(1), json!(2), json!(3)], "{joined}");
    assert_eq!(
        compressions(&server),
        before,
        "the kept messages' compressed forms were reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_follows_the_offer_and_the_setting() {
    let server = compressing(|_| {});
    // A client that limits the server's window gets its limit repeated, and its
    // messages compressed for it alone, with that window.
    let offer = "permessage-deflate; server_max_window_bits=10; client_max_window_bits";
    let mut limited = DeflateWs::connect(server.addr, Some(offer)).await;
    assert_eq!(
        limited.extensions.as_deref(),
        Some(format!("{ANSWER}; server_max_window_bits=10").as_str())
    );
    limited.authenticate("limited").await;
    limited
        .emit_compressed("join", json!({ "rooms": ["public-x"] }))
        .await;
    server.wait_members("public-x", 1).await;
    server
        .handle
        .send_to_room("public-x", "book", &quote_book(1), &[])
        .expect("send");
    let message = limited.next().await;
    assert!(message.compressed);
    assert_eq!(message.json()["data"], quote_book(1));
    // 2^8 bytes is a window zlib cannot compress with: agreed, but sent plain.
    let offer = "permessage-deflate; server_max_window_bits=8";
    let mut tiny = DeflateWs::connect(server.addr, Some(offer)).await;
    assert_eq!(
        tiny.extensions.as_deref(),
        Some(format!("{ANSWER}; server_max_window_bits=8").as_str())
    );
    tiny.authenticate("tiny").await;
    tiny.emit_compressed("join", json!({ "rooms": ["public-x"] }))
        .await;
    server.wait_members("public-x", 2).await;
    server
        .handle
        .send_to_room("public-x", "book", &quote_book(2), &[])
        .expect("send");
    let message = tiny.next().await;
    assert!(!message.compressed);
    assert_eq!(message.json()["data"], quote_book(2));
    assert!(limited.next().await.compressed);

    // Offers this server cannot accept, and no offer: no extension.
    for offer in [
        None,
        Some("x-webkit-deflate-frame"),
        Some("permessage-deflate; server_max_window_bits=16"),
        Some("permessage-deflate; unknown_param"),
    ] {
        let client = DeflateWs::connect(server.addr, offer).await;
        assert_eq!(client.extensions, None, "{offer:?}");
    }
    // The first acceptable offer of several wins.
    let several = "permessage-deflate; mystery, permessage-deflate; client_max_window_bits";
    let client = DeflateWs::connect(server.addr, Some(several)).await;
    assert_eq!(client.extensions.as_deref(), Some(ANSWER));

    // Compression off (the default): never agreed, and RSV1 is a protocol error.
    let plain = TestServer::start(builder(1));
    let mut client = DeflateWs::connect(plain.addr, Some(BROWSER_OFFER)).await;
    assert_eq!(client.extensions, None);
    client.send_frame(0xC1, &deflate(b"{}")).await;
    assert_eq!(client.close_code().await, 1002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_client_messages_are_inflated_within_the_limits() {
    let server = compressing(|c| c.max_payload_length = 4096);
    let mut client = DeflateWs::connect(server.addr, Some(BROWSER_OFFER)).await;
    client.authenticate("alice").await;
    // A compressed join in two frames (RSV1 on the first only), a ping between them.
    let join = json!({ "event": "join", "data": { "rooms": ["public-a", "public-b"] } });
    let body = deflate(join.to_string().as_bytes());
    let (first, rest) = body.split_at(body.len() / 2);
    client.send_frame(0x41, first).await;
    client.send_frame(0x89, b"ping").await;
    client.send_frame(0x80, rest).await;
    server.wait_members("public-b", 1).await;

    // A message that inflates past max_payload_length closes with 1009, whatever its
    // compressed size (1 MiB of spaces is about a kilobyte compressed).
    let bomb = deflate(&vec![b' '; 1 << 20]);
    assert!(bomb.len() < 4096);
    client.send_frame(0xC1, &bomb).await;
    assert_eq!(client.close_code().await, 1009);

    // Compressed bytes that do not inflate close with 1007.
    let mut broken = DeflateWs::connect(server.addr, Some(BROWSER_OFFER)).await;
    broken.send_frame(0xC1, &[0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(broken.close_code().await, 1007);

    // RSV1 on a continuation frame is a protocol error.
    let mut misplaced = DeflateWs::connect(server.addr, Some(BROWSER_OFFER)).await;
    misplaced.send_frame(0x01, b"{").await;
    misplaced.send_frame(0xC0, &deflate(b"}")).await;
    assert_eq!(misplaced.close_code().await, 1002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_negotiates_compression_and_receives_messages_intact() {
    let server = compressing(|_| {});
    let room = "public-browser";
    let browser = Chromium::launch();
    let mut page = Page::open(&browser).await;
    // Chromium offers permessage-deflate on its own; the page logs in (its messages go
    // compressed too), joins, and keeps every message's text.
    let script = format!(
        r#"new Promise((resolve, reject) => {{
            const ws = new WebSocket("ws://{addr}/ws");
            window.received = [];
            ws.onopen = () => ws.send(JSON.stringify({{ event: "authenticate", data: {{ token: "chrome" }} }}));
            ws.onmessage = (m) => {{
                const message = JSON.parse(m.data);
                if (message.event === "connected") {{
                    ws.send(JSON.stringify({{ event: "join", data: {{ rooms: ["{room}"] }} }}));
                    resolve(ws.extensions);
                }} else {{
                    window.received.push(m.data);
                }}
            }};
            ws.onerror = () => reject(new Error("WebSocket error"));
            window.ws = ws;
        }})"#,
        addr = server.addr,
    );
    let extensions = page.eval(&script).await;
    assert_eq!(extensions, json!(ANSWER), "what Chromium says was agreed");
    server.wait_members(room, 1).await;
    // A message from the page long enough to be worth compressing: Chromium sends it
    // compressed, and the server inflates it.
    let inflated = total(&server, |s| s.inflated_messages.get());
    let note = "a note from the browser ".repeat(40);
    page.eval(&format!(
        r#"window.ws.send(JSON.stringify({{ event: "note", data: "{note}" }})); true"#
    ))
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while total(&server, |s| s.inflated_messages.get()) == inflated {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server inflated no message from Chromium"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let before = compressed_deliveries(&server);
    let mut sent = Vec::new();
    for seq in 1..=5 {
        let book = quote_book(seq);
        server
            .handle
            .send_to_room(room, "book", &book, &[])
            .expect("send");
        sent.push(json!(format!(r#"{{"event":"book","data":{book}}}"#)));
    }
    server
        .handle
        .send_to_room(room, "tick", &json!({ "small": true }), &[])
        .expect("send");
    sent.push(json!(r#"{"event":"tick","data":{"small":true}}"#));
    page.wait_for("window.received.length === 6", WAIT).await;
    let received = page.eval("window.received").await;
    assert_eq!(
        received,
        Value::Array(sent),
        "every message intact to the byte, in order"
    );
    assert_eq!(
        compressed_deliveries(&server) - before,
        5,
        "the five 1 KB messages went compressed, the small one plain"
    );
    assert_eq!(page.eval("window.ws.readyState").await, json!(1));
    let errors = page.errors();
    assert!(errors.is_empty(), "browser errors: {errors:?}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

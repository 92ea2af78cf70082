//! Delivery through the engine handle: exactly once, across shards, with exclusions,
//! in order, and never slowed by a slow reader.

use shardcast::protocol::CloseReason;
use std::time::Duration;

use serde_json::json;

use crate::support::{self, TestServer, WsClient, shard_of};

/// Logs in clients until at least `per_shard` sit on each of `shards` shards.
async fn spread(
    server: &TestServer,
    shards: usize,
    per_shard: usize,
    user: impl Fn(usize) -> String,
) -> Vec<(WsClient, String)> {
    let mut clients = Vec::new();
    let mut counts = vec![0usize; shards];
    let mut i = 0;
    while counts.iter().any(|&c| c < per_shard) {
        let (client, id) = server.login(&user(i)).await;
        counts[shard_of(&id, shards)] += 1;
        clients.push((client, id));
        i += 1;
        assert!(i < 200, "placement never reached every shard: {counts:?}");
    }
    clients
}

#[tokio::test]
async fn room_members_on_two_shards_receive_exactly_once() {
    let server = TestServer::with_shards(2);
    let mut clients = spread(&server, 2, 2, |i| format!("u{i}")).await;
    for (client, _) in &mut clients {
        client.join(&["public-room"]).await;
    }
    server.wait_members("public-room", clients.len()).await;
    server
        .handle
        .send_to_room("public-room", "hello", &json!({ "n": 1 }), &[])
        .unwrap();
    for (client, _) in &mut clients {
        let message = client.expect_event("hello").await;
        assert_eq!(message["data"]["n"], 1);
        client.expect_silence().await;
    }
}

#[tokio::test]
async fn exclude_applies_to_room_and_broadcast() {
    let server = TestServer::with_shards(2);
    let mut clients = spread(&server, 2, 2, |i| format!("x{i}")).await;
    let skipped = vec![clients[0].1.clone(), clients[1].1.clone()];
    server
        .handle
        .send_to_room("ws-default", "room", &1, &skipped)
        .unwrap();
    server.handle.broadcast("all", &2, &skipped).unwrap();
    for (client, id) in &mut clients {
        if skipped.contains(id) {
            client.expect_silence().await;
        } else {
            client.expect_event("room").await;
            client.expect_event("all").await;
        }
    }
}

#[tokio::test]
async fn every_session_of_a_user_receives_across_shards() {
    let server = TestServer::with_shards(2);
    let mut sessions = spread(&server, 2, 1, |_| "same-user".into()).await;
    let (mut other, _) = server.login("someone-else").await;
    assert_eq!(
        server.handle.clients_of_user("same-user").await.len(),
        sessions.len()
    );
    server
        .handle
        .send_to_user("same-user", "for-you", &json!("hi"))
        .unwrap();
    for (client, _) in &mut sessions {
        client.expect_event("for-you").await;
    }
    other.expect_silence().await;
}

#[tokio::test]
async fn a_thousand_messages_to_one_client_arrive_in_order() {
    let server = TestServer::with_shards(2);
    let (mut client, id) = server.login("ordered").await;
    for n in 0..1000 {
        server.handle.send_to_client(&id, "seq", &n).unwrap();
    }
    for n in 0..1000 {
        let message = client.expect_event("seq").await;
        assert_eq!(message["data"], n, "message {n} out of order");
    }
}

#[tokio::test]
async fn ignis_send_resolves_broadcast_client_then_room() {
    let server = TestServer::with_shards(2);
    let (mut a, a_id) = server.login("a").await;
    let (mut b, _) = server.login("b").await;
    b.join(&["public-r"]).await;
    server.wait_members("public-r", 1).await;
    server.handle.send(None, "everyone", &0).unwrap();
    a.expect_event("everyone").await;
    b.expect_event("everyone").await;
    server.handle.send(Some(&a_id), "just-a", &1).unwrap();
    a.expect_event("just-a").await;
    server.handle.send(Some("public-r"), "room-r", &2).unwrap();
    b.expect_event("room-r").await;
    a.expect_silence().await;
    b.expect_silence().await;
}

#[tokio::test]
async fn server_side_join_leave_and_queries() {
    let server = TestServer::with_shards(2);
    let (mut client, id) = server.login("srv").await;
    server.handle.join(&id, &["ops-room"]).unwrap();
    server.wait_members("ops-room", 1).await;
    server
        .handle
        .send_to_room("ops-room", "ops", &1, &[])
        .unwrap();
    client.expect_event("ops").await;
    server.handle.leave(&id, &["ops-room"]).unwrap();
    server.wait_members("ops-room", 0).await;
    assert!(server.handle.is_local_client(&id).await);
    assert!(server.handle.join("not-an-id", &["x"]).is_err());
    server.handle.disconnect(&id).unwrap();
    client.expect_close(CloseReason::Normal).await;
}

/// Publishes `count` 4 KB messages to `ws-default`, paced so a reading client keeps up.
async fn paced_load(server: &TestServer, count: usize) {
    let payload = "p".repeat(4000);
    for n in 0..count {
        server
            .handle
            .send_to_room("ws-default", "load", &json!({ "n": n, "p": payload }), &[])
            .unwrap();
        if n % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Reads `count` `load` messages in order on a task of its own.
fn reader(mut client: WsClient, count: usize) -> tokio::task::JoinHandle<WsClient> {
    tokio::spawn(async move {
        for n in 0..count {
            let message = client.expect_event("load").await;
            assert_eq!(message["data"]["n"], n);
        }
        client
    })
}

/// Publishes 4,000 4 KB messages while `fast` reads them; returns once it has read all,
/// in order.
async fn fast_reader_keeps_up(server: &TestServer, fast: WsClient) {
    let fast = reader(fast, 4000);
    paced_load(server, 4000).await;
    tokio::time::timeout(Duration::from_secs(30), fast)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_is_bounded_and_never_delays_others() {
    let server =
        TestServer::start(support::builder(1).configure(|c| c.backpressure_limit = 256 * 1024));
    let (fast, _) = server.login("fast").await;
    let (stalled, _) = server.login("stalled").await;
    // 16 MB: far more than the kernel buffers of the stalled socket can absorb.
    fast_reader_keeps_up(&server, fast).await;
    let stats = server.handle.stats();
    assert!(
        stats.backpressure_dropped > 0,
        "the stalled client's excess was dropped: {stats:?}"
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_on_backpressure_limit_closes_the_slow_consumer() {
    let server = TestServer::start(support::builder(1).configure(|c| {
        c.backpressure_limit = 256 * 1024;
        c.close_on_backpressure_limit = true;
    }));
    let (_stalled, _) = server.login("stalled").await;
    let (fast, _) = server.login("fast").await;
    fast_reader_keeps_up(&server, fast).await;
    let closed = server
        .handle
        .metrics()
        .shards()
        .iter()
        .map(|s| s.slow_consumers_closed.get())
        .sum::<u64>();
    assert_eq!(closed, 1);
}

/// Write pacing holds a busy socket back between writes: every frame still arrives, in
/// order, and writes carry several frames each even when messages come one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_writes_deliver_every_frame_in_order_with_several_per_write() {
    // A generous factor: the interval is ~200 passes over the 20 sockets (milliseconds
    // even on a fast machine), far more than the 2 ms between messages below.
    let server = TestServer::start(support::builder(1).configure(|c| {
        c.write_coalesce_factor = 200;
        c.max_write_delay = Duration::from_millis(100);
    }));
    const CLIENTS: usize = 20;
    const BURST: usize = 100;
    const SINGLES: usize = 200;
    let mut readers = Vec::new();
    for i in 0..CLIENTS {
        let (client, _) = server.login(&format!("paced{i}")).await;
        readers.push(reader(client, BURST + SINGLES));
    }
    let send = |n: usize| {
        server
            .handle
            .send_to_room("ws-default", "load", &json!({ "n": n }), &[])
            .unwrap();
    };
    // A burst: sockets get many frames per flush, which turns pacing on.
    (0..BURST).for_each(send);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = server.handle.stats();
    for n in BURST..BURST + SINGLES {
        send(n);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("a paced socket was never written")
            .unwrap();
    }
    let after = server.handle.stats();
    let deliveries = after.deliveries - before.deliveries;
    let writes = after.socket_writes - before.socket_writes;
    assert_eq!(deliveries, (CLIENTS * SINGLES) as u64);
    assert!(
        writes * 2 <= deliveries,
        "one message at a time, yet paced writes should carry ≥ 2 frames each: \
         {writes} writes for {deliveries} deliveries"
    );
}

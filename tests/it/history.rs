//! History, recovery and presence on a single node (in memory): every numbered rule of
//! the wire additions, through real clients.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, TestServer, WsClient, http};

/// A node whose `public-h-*` rooms keep `size` messages and `public-p-*` rooms track
/// presence.
pub fn history_builder(size: usize) -> shardcast::EngineBuilder {
    support::builder(2).configure(move |c| {
        c.history_rooms = vec!["public-h-*".into()];
        c.history_size = size;
        c.presence_rooms = vec!["public-p-*".into()];
    })
}

/// Joins `room` (with `since` when given) and returns every message up to and including
/// `ws:joined`: the replayed ones, then the acknowledgement.
pub async fn join_since(
    client: &mut WsClient,
    room: &str,
    since: Option<(u64, &str)>,
) -> (Vec<Value>, Value) {
    let mut data = json!({ "rooms": [room] });
    if let Some((offset, epoch)) = since {
        data["since"] = json!({ room: { "offset": offset, "epoch": epoch } });
    }
    client.emit("join", data).await;
    let mut replayed = Vec::new();
    loop {
        let message = client.next_json().await;
        if message["event"] == "ws:joined" {
            assert_eq!(message["data"]["room"], room);
            return (replayed, message["data"].clone());
        }
        assert_ne!(message["event"], "error", "while joining {room}: {message}");
        replayed.push(message);
    }
}

/// A join with `since` into a room whose history started again (a new epoch): nothing
/// replayed, `recovered: false`, offset 0, another epoch than `old_epoch`.
pub fn assert_started_again(replayed: &[Value], joined: &Value, old_epoch: &str) {
    assert!(replayed.is_empty(), "replayed {replayed:?}");
    let outcome = (joined["recovered"].clone(), joined["offset"].clone());
    assert_eq!(outcome, (json!(false), json!(0)));
    assert_ne!(joined["epoch"], old_epoch);
}

/// The offsets of positioned messages.
pub fn offsets(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["offset"].as_u64().expect("offset"))
        .collect()
}

fn publish(server: &TestServer, room: &str, n: std::ops::Range<u64>) {
    for i in n {
        server
            .handle
            .send_to_room(room, "tick", &json!({ "n": i }), &[])
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_positions_and_a_join_is_acknowledged() {
    let server = TestServer::start(history_builder(100));
    let (mut alice, _) = server.login("alice").await;
    let (mut bob, _) = server.login("bob").await;
    let (replayed, joined) = join_since(&mut alice, "public-h-1", None).await;
    assert!(replayed.is_empty());
    assert_eq!(joined["offset"], 0);
    assert!(joined.get("recovered").is_none());
    let epoch = joined["epoch"].as_str().unwrap().to_owned();
    assert_eq!(epoch.len(), 16);
    let (_, joined) = join_since(&mut bob, "public-h-1", None).await;
    assert_eq!(joined["epoch"], epoch.as_str());
    publish(&server, "public-h-1", 0..3);
    for offset in 1..=3 {
        let (a, b) = (alice.next_text().await, bob.next_text().await);
        assert_eq!(a, b, "every member gets the same bytes");
        let expected = format!(
            r#"{{"event":"tick","data":{{"n":{}}},"room":"public-h-1","offset":{offset},"epoch":"{epoch}"}}"#,
            offset - 1
        );
        assert_eq!(a, expected);
    }
    // Rooms without history are unchanged: no position, and a silent join.
    alice.join(&["public-plain"]).await;
    server.wait_members("public-plain", 1).await;
    alice.expect_silence().await;
    server
        .handle
        .send_to_room("public-plain", "plain", &1, &[])
        .unwrap();
    assert_eq!(alice.next_text().await, r#"{"event":"plain","data":1}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_recovers_what_it_missed_once_and_in_order() {
    let server = TestServer::start(history_builder(1000));
    let (mut alice, _) = server.login("alice").await;
    let (_, joined) = join_since(&mut alice, "public-h-r", None).await;
    let epoch = joined["epoch"].as_str().unwrap().to_owned();
    publish(&server, "public-h-r", 0..2);
    let seen = vec![alice.next_json().await, alice.next_json().await];
    assert_eq!(offsets(&seen), [1, 2]);
    alice.close().await;
    server.wait_members("public-h-r", 0).await;
    publish(&server, "public-h-r", 2..5);

    // Publishing goes on while the client recovers: nothing missed, nothing twice (the
    // history keeps 1,000, more than the publisher can get ahead by).
    let (mut again, _) = server.login("alice").await;
    let publisher = {
        let handle = server.handle.clone();
        std::thread::spawn(move || {
            for i in 5..400 {
                handle
                    .send_to_room("public-h-r", "tick", &json!({ "n": i }), &[])
                    .unwrap();
            }
        })
    };
    let (replayed, joined) = join_since(&mut again, "public-h-r", Some((2, &epoch))).await;
    assert_eq!(joined["recovered"], true);
    assert_eq!(joined["epoch"], epoch.as_str());
    let top = joined["offset"].as_u64().unwrap();
    assert!(top >= 5);
    let expected: Vec<u64> = (3..=top).collect();
    assert_eq!(offsets(&replayed), expected);
    publisher.join().unwrap();
    let mut next = top + 1;
    while next <= 400 {
        let message = again.next_json().await;
        assert_eq!(
            message["offset"], next,
            "live continues with no gap and no duplicate"
        );
        assert_eq!(message["data"]["n"], next - 1);
        next += 1;
    }
    again.expect_silence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_is_refused_past_the_window_or_in_another_epoch() {
    let mut server = TestServer::start(history_builder(3));
    let (mut alice, _) = server.login("alice").await;
    let (_, joined) = join_since(&mut alice, "public-h-w", None).await;
    let epoch = joined["epoch"].as_str().unwrap().to_owned();
    alice.leave(&["public-h-w"]).await;
    server.wait_members("public-h-w", 0).await;
    publish(&server, "public-h-w", 0..10);
    // Offsets 8..=10 are kept: from 7 it recovers, from 6 it cannot.
    let (replayed, joined) = join_since(&mut alice, "public-h-w", Some((7, &epoch))).await;
    assert_eq!(
        (offsets(&replayed), joined["recovered"].clone()),
        (vec![8, 9, 10], json!(true))
    );
    alice.leave(&["public-h-w"]).await;
    server.wait_members("public-h-w", 0).await;
    let (replayed, joined) = join_since(&mut alice, "public-h-w", Some((6, &epoch))).await;
    assert!(replayed.is_empty());
    assert_eq!(
        (joined["recovered"].clone(), joined["offset"].clone()),
        (json!(false), json!(10))
    );
    alice.leave(&["public-h-w"]).await;
    server.wait_members("public-h-w", 0).await;
    let (replayed, joined) = join_since(&mut alice, "public-h-w", Some((9, "another"))).await;
    assert!(replayed.is_empty());
    assert_eq!(joined["recovered"], false);
    // A `since` that is not a position cannot be recovered from either.
    alice.leave(&["public-h-w"]).await;
    server.wait_members("public-h-w", 0).await;
    alice
        .emit(
            "join",
            json!({ "rooms": ["public-h-w"], "since": { "public-h-w": 7 } }),
        )
        .await;
    let joined = alice.expect_event("ws:joined").await;
    assert_eq!(
        (
            joined["data"]["recovered"].clone(),
            joined["data"]["offset"].clone()
        ),
        (json!(false), json!(10))
    );

    // Each outcome is counted (summed over the shards).
    let metrics = server.handle.render_metrics();
    let total = |name: &str| -> u64 {
        let prefix = format!("{name}{{");
        metrics
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(total("shardcast_history_joins_total"), 5);
    assert_eq!(total("shardcast_history_recovered_total"), 1);
    assert_eq!(total("shardcast_history_not_recovered_total"), 3);
    assert_eq!(total("shardcast_history_read_failures_total"), 0);

    // A restarted single node starts a new epoch: its history was in its memory.
    server.stop();
    let server = TestServer::start(history_builder(3));
    let (mut alice, _) = server.login("alice").await;
    let (replayed, joined) = join_since(&mut alice, "public-h-w", Some((10, &epoch))).await;
    assert_started_again(&replayed, &joined, &epoch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_on_request_for_members_and_over_http() {
    let server = TestServer::start(history_builder(100).api_key("k"));
    let (mut alice, _) = server.login("alice").await;
    join_since(&mut alice, "public-h-q", None).await;
    publish(&server, "public-h-q", 0..5);
    for _ in 0..5 {
        alice.next_json().await;
    }
    alice
        .emit("ws:history", json!({ "room": "public-h-q", "limit": 2 }))
        .await;
    let answer = alice.expect_event("ws:history").await["data"].clone();
    assert_eq!(answer["offset"], 5);
    assert_eq!(
        answer["publications"],
        json!([
            { "offset": 4, "event": "tick", "data": { "n": 3 } },
            { "offset": 5, "event": "tick", "data": { "n": 4 } },
        ])
    );
    let epoch = answer["epoch"].as_str().unwrap().to_owned();
    alice
        .emit(
            "ws:history",
            json!({ "room": "public-h-q", "since": { "offset": 3, "epoch": epoch } }),
        )
        .await;
    let answer = alice.expect_event("ws:history").await["data"].clone();
    assert_eq!(offsets(answer["publications"].as_array().unwrap()), [4, 5]);
    // Not a member, no history, no room: an error that says so.
    alice
        .emit("ws:history", json!({ "room": "public-h-other" }))
        .await;
    alice.expect_error_containing("not a member").await;
    alice.join(&["public-plain"]).await;
    server.wait_members("public-plain", 1).await;
    alice
        .emit("ws:history", json!({ "room": "public-plain" }))
        .await;
    alice.expect_error_containing("has no history").await;
    alice.emit("ws:history", json!({ "limit": 1 })).await;
    alice
        .expect_error(shardcast::protocol::ErrorText::NoRoomNamed)
        .await;

    let auth = [("Authorization", "Bearer k")];
    let (status, body) = http(
        server.addr,
        "GET",
        "/api/rooms/public-h-q/history?limit=1",
        &auth,
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (body["offset"].clone(), body["epoch"].clone()),
        (json!(5), json!(epoch))
    );
    assert_eq!(offsets(body["publications"].as_array().unwrap()), [5]);
    let (status, _) = http(
        server.addr,
        "GET",
        "/api/rooms/public-plain/history",
        &auth,
        "",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = http(
        server.addr,
        "GET",
        "/api/rooms/public-h-q/history?limit=x",
        &auth,
        "",
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = http(server.addr, "GET", "/api/rooms/public-h-q/history", &[], "").await;
    assert_eq!(status, 401);
    let handle_read = server
        .handle
        .history(
            "public-h-q",
            shardcast::history::Query {
                since: None,
                limit: 3,
            },
        )
        .await
        .unwrap();
    assert_eq!(handle_read.publications.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_members_and_announces_joins_and_leaves() {
    let server = TestServer::start(history_builder(10).api_key("k"));
    let (mut alice, alice_id) = server.login("alice").await;
    let (mut bob, bob_id) = server.login("bob").await;
    alice.join(&["public-p-1"]).await;
    server.wait_members("public-p-1", 1).await;
    alice.expect_silence().await;
    bob.join(&["public-p-1"]).await;
    let joined = alice.expect_event("ws:join").await;
    assert_eq!(
        joined["data"],
        json!({ "room": "public-p-1", "id": bob_id, "userId": "bob" })
    );
    bob.emit("ws:presence", json!({ "room": "public-p-1" }))
        .await;
    let mut clients = vec![
        json!({ "id": alice_id, "userId": "alice" }),
        json!({ "id": bob_id, "userId": "bob" }),
    ];
    clients.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let answer = bob.expect_event("ws:presence").await;
    assert_eq!(
        answer["data"],
        json!({ "room": "public-p-1", "clients": clients })
    );
    let (status, body) = http(
        server.addr,
        "GET",
        "/api/rooms/public-p-1/presence",
        &[("Authorization", "Bearer k")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["clients"],
        json!(clients)
    );
    // A leave and a disconnect are announced; a non-member may not ask.
    bob.leave(&["public-p-1"]).await;
    let left = alice.expect_event("ws:leave").await;
    assert_eq!(left["data"]["id"], bob_id.as_str());
    bob.emit("ws:presence", json!({ "room": "public-p-1" }))
        .await;
    bob.expect_error_containing("not a member").await;
    bob.join(&["public-p-1"]).await;
    alice.expect_event("ws:join").await;
    bob.close().await;
    let left = alice.expect_event("ws:leave").await;
    assert_eq!(
        left["data"],
        json!({ "room": "public-p-1", "id": bob_id, "userId": "bob" })
    );
    assert_eq!(server.handle.presence("public-p-1").await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

//! History and presence across a fleet of three nodes over one Redis: one order of a
//! room's messages everywhere (byte-identical frames), recovery across a node restart
//! and a whole-fleet restart, refusal after the history expired, presence and its
//! announcements across nodes, and a killed node's members leaving within the bound.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::history::{assert_started_again, history_builder, join_since, offsets};
use crate::support::redis::{RedisServer, wait_for};
use crate::support::served::Served;
use crate::support::{TestServer, attach, attach_in};
use shardcast::redis::SubscribeMode;

/// The in-process nodes' presence TTL: their keepers renew every 2 s and reap as often.
/// Long enough that a starved test machine never lets their own entries lapse; the node
/// that is killed uses 2 s.
const PRESENCE_TTL: Duration = Duration::from_secs(6);

fn node(redis: &RedisServer, size: usize, mode: SubscribeMode) -> TestServer {
    TestServer::start(
        attach_in(history_builder(size), &[redis.url()], mode).configure(|c| {
            c.presence_ttl = PRESENCE_TTL;
        }),
    )
}

async fn fleet(redis: &RedisServer, size: usize, mode: SubscribeMode) -> Vec<TestServer> {
    let nodes: Vec<TestServer> = (0..3).map(|_| node(redis, size, mode)).collect();
    wait_for("every node ready", Duration::from_secs(5), || {
        nodes.iter().all(|n| n.handle.is_ready())
    })
    .await;
    nodes
}

async fn concurrent_publishers_on_several_nodes_give_one_order_everywhere(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 1000, mode).await;
    let mut clients = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let (mut client, _) = node.login(&format!("user-{i}")).await;
        let (_, joined) = join_since(&mut client, "public-h-fleet", None).await;
        assert_eq!(joined["offset"], 0);
        clients.push(client);
    }
    let publishers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let handle = node.handle.clone();
            std::thread::spawn(move || {
                for n in 0..100 {
                    let data = json!({ "node": i, "n": n });
                    handle
                        .send_to_room("public-h-fleet", "tick", &data, &[])
                        .unwrap();
                }
            })
        })
        .collect();
    publishers.into_iter().for_each(|p| p.join().unwrap());
    let mut streams = Vec::new();
    for client in &mut clients {
        let mut texts = Vec::new();
        for _ in 0..300 {
            texts.push(client.next_text().await);
        }
        client.expect_silence().await;
        streams.push(texts);
    }
    assert_eq!(
        streams[0], streams[1],
        "node 0 and node 1 delivered different bytes"
    );
    assert_eq!(
        streams[0], streams[2],
        "node 0 and node 2 delivered different bytes"
    );
    let parsed: Vec<serde_json::Value> = streams[0]
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(offsets(&parsed), (1..=300).collect::<Vec<u64>>());
    // Each publisher's own messages keep its order inside the one order.
    for i in 0..3 {
        let mine: Vec<u64> = parsed
            .iter()
            .filter(|m| m["data"]["node"] == i)
            .map(|m| m["data"]["n"].as_u64().unwrap())
            .collect();
        assert_eq!(mine, (0..100).collect::<Vec<u64>>());
    }
}

async fn recovery_survives_node_restarts_and_is_refused_once_history_expired(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let mut nodes = fleet(&redis, 100, mode).await;
    let (mut alice, _) = nodes[0].login("alice").await;
    let (_, joined) = join_since(&mut alice, "public-h-restart", None).await;
    let epoch = joined["epoch"].as_str().unwrap().to_owned();
    nodes[1]
        .handle
        .send_to_room("public-h-restart", "tick", &0, &[])
        .unwrap();
    assert_eq!(alice.next_json().await["offset"], 1);
    // The client's node dies; the others go on publishing.
    drop(alice);
    nodes[0].stop();
    for n in 1..4 {
        nodes[2]
            .handle
            .send_to_room("public-h-restart", "tick", &n, &[])
            .unwrap();
    }
    nodes[0] = node(&redis, 100, mode);
    wait_for("restarted node ready", Duration::from_secs(5), || {
        nodes[0].handle.is_ready()
    })
    .await;
    let (mut alice, _) = nodes[0].login("alice").await;
    let (replayed, joined) = join_since(&mut alice, "public-h-restart", Some((1, &epoch))).await;
    assert_eq!(offsets(&replayed), [2, 3, 4]);
    assert_eq!(
        (joined["recovered"].clone(), joined["epoch"].clone()),
        (json!(true), json!(epoch))
    );

    // Every node restarts: the history is in Redis, the epoch stays.
    drop(alice);
    for node in &mut nodes {
        node.stop();
    }
    let fresh = node(&redis, 100, mode);
    wait_for("fresh node ready", Duration::from_secs(5), || {
        fresh.handle.is_ready()
    })
    .await;
    let (mut bob, _) = fresh.login("bob").await;
    let (replayed, joined) = join_since(&mut bob, "public-h-restart", Some((3, &epoch))).await;
    assert_eq!(offsets(&replayed), [4]);
    assert_eq!(
        (joined["recovered"].clone(), joined["epoch"].clone()),
        (json!(true), json!(epoch))
    );
    // Trimming by size never changes the epoch; expiry does.
    redis.cli(&["EXPIRE", "shardcast:{public-h-restart}:meta", "0"]);
    redis.cli(&["EXPIRE", "shardcast:{public-h-restart}:history", "0"]);
    bob.leave(&["public-h-restart"]).await;
    fresh.wait_members("public-h-restart", 0).await;
    let (replayed, joined) = join_since(&mut bob, "public-h-restart", Some((4, &epoch))).await;
    assert_started_again(&replayed, &joined, &epoch);
}

async fn presence_spans_the_fleet_and_a_killed_node_leaves_within_the_bound(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 10, mode).await;
    let (mut alice, alice_id) = nodes[0].login("alice").await;
    alice.join(&["public-p-fleet"]).await;
    nodes[0].wait_members("public-p-fleet", 1).await;
    let (mut bob, bob_id) = nodes[1].login("bob").await;
    bob.join(&["public-p-fleet"]).await;
    let joined = alice.expect_event("ws:join").await;
    assert_eq!(joined["data"]["id"], bob_id.as_str());

    // A node of the fleet that will be killed (SIGKILL: no goodbye).
    let url = redis.url();
    let mut doomed = Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--dev",
            "--redis",
            &url,
            "--allow-rooms",
            "public-*",
            "--presence-rooms",
            "public-p-*",
            "--presence-ttl-s",
            "2",
        ],
        &[],
    );
    let doomed_url = format!("ws://{}/ws", doomed.addr);
    let mut carol = crate::support::WsClient::connect(&doomed_url).await;
    let carol_id = carol.authenticate("carol").await;
    carol.join(&["public-p-fleet"]).await;
    assert_eq!(
        alice.expect_event("ws:join").await["data"]["id"],
        carol_id.as_str()
    );
    assert_eq!(
        bob.expect_event("ws:join").await["data"]["id"],
        carol_id.as_str()
    );
    alice
        .emit("ws:presence", json!({ "room": "public-p-fleet" }))
        .await;
    let listed = alice.expect_event("ws:presence").await["data"]["clients"].clone();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut expected = vec![alice_id.as_str(), bob_id.as_str(), carol_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);

    let killed = Instant::now();
    doomed.child.kill().expect("SIGKILL the node");
    let _ = doomed.child.wait();
    // The bound: the dead node's presence_ttl (2 s) plus the other nodes' reaping period
    // (a third of theirs, 2 s), plus scheduling slack (a busy CI machine).
    let left = alice
        .expect_event_within("ws:leave", Duration::from_secs(10))
        .await;
    assert_eq!(left["data"]["id"], carol_id.as_str());
    let took = killed.elapsed();
    let bound = Duration::from_secs(2) + PRESENCE_TTL / 3;
    assert!(took <= bound + Duration::from_secs(3), "took {took:?}");
    assert_eq!(
        bob.expect_event_within("ws:leave", Duration::from_secs(2))
            .await["data"]["id"],
        carol_id.as_str()
    );
    let fleet_view = nodes[2].handle.presence("public-p-fleet").await.unwrap();
    assert_eq!(fleet_view.len(), 2);
    // An entry lost while its node lives (reaped during a stall, Redis restarted empty)
    // is put back by the node's next renewal, and its join announced again.
    redis.cli(&["HDEL", "shardcast:{public-p-fleet}:presence", &alice_id]);
    let back = bob
        .expect_event_within("ws:join", PRESENCE_TTL / 3 + Duration::from_secs(3))
        .await;
    assert_eq!(back["data"]["id"], alice_id.as_str());
    // A graceful leave on one node is announced on the others once.
    bob.leave(&["public-p-fleet"]).await;
    assert_eq!(
        alice.expect_event("ws:leave").await["data"]["id"],
        bob_id.as_str()
    );
    alice.expect_silence().await;
}

async fn emitter_messages_reach_history_rooms_without_a_position(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let nodes = fleet(&redis, 10, mode).await;
    let (mut alice, _) = nodes[0].login("alice").await;
    join_since(&mut alice, "public-h-mixed", None).await;
    // What an Ignis emitter (or node) publishes knows nothing of history.
    let emitter = shardcast::redis::Emitter::connect(&[redis.url()])
        .await
        .expect("emitter");
    emitter
        .to_room("public-h-mixed", "from-ignis", Some("1"), &[])
        .await
        .expect("emit");
    assert_eq!(
        alice.next_text().await,
        r#"{"event":"from-ignis","data":1}"#
    );
    emitter.shutdown().await;
    nodes[1]
        .handle
        .send_to_room("public-h-mixed", "from-shardcast", &2, &[])
        .unwrap();
    let positioned = alice.next_json().await;
    assert_eq!(
        (positioned["event"].clone(), positioned["offset"].clone()),
        (json!("from-shardcast"), json!(1))
    );
}

#[test]
fn history_with_a_redis_cluster_is_refused_at_start() {
    let urls = [
        "redis://127.0.0.1:1".to_owned(),
        "redis://127.0.0.1:2".to_owned(),
    ];
    let started = attach(history_builder(10), &urls).start();
    let error = started.err().expect("refused");
    assert!(
        matches!(error, shardcast::EngineError::HistoryOnCluster),
        "{error}"
    );
    assert!(error.to_string().contains("single Redis"), "{error}");
}

crate::support::redis::in_both_modes!(
    concurrent_publishers_on_several_nodes_give_one_order_everywhere,
    recovery_survives_node_restarts_and_is_refused_once_history_expired,
    presence_spans_the_fleet_and_a_killed_node_leaves_within_the_bound,
    emitter_messages_reach_history_rooms_without_a_position,
);

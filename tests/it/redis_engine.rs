//! Two engines over one Redis (the glue in `src/engine/remote.rs`): what one node's handle
//! or an emitter sends reaches clients of the other node, exclude honoured; a node starts
//! with Redis down, delivers locally meanwhile, and becomes ready when Redis comes up.

use std::time::Duration;

use crate::support::attach;
use serde_json::json;
use shardcast::redis::Emitter;

use crate::support::redis::{RedisServer, wait_for};
use crate::support::{self, TestServer};

fn node(redis: &RedisServer) -> TestServer {
    TestServer::start(attach(support::builder(2), &[redis.url()]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_to_each_others_clients() {
    let redis = RedisServer::start();
    let a = node(&redis);
    let b = node(&redis);
    wait_for("both nodes ready", Duration::from_secs(5), || {
        a.handle.is_ready() && b.handle.is_ready()
    })
    .await;
    let (mut alice, alice_id) = a.login("alice").await;
    alice.join(&["public-room"]).await;
    a.wait_members("public-room", 1).await;

    b.handle
        .send_to_user("alice", "to-user", &json!({ "n": 1 }))
        .unwrap();
    assert_eq!(alice.expect_event("to-user").await["data"]["n"], 1);
    b.handle
        .send_to_client(&alice_id, "to-client", &json!("x"))
        .unwrap();
    assert_eq!(alice.expect_event("to-client").await["data"], "x");
    b.handle
        .broadcast("skipped", &json!(null), std::slice::from_ref(&alice_id))
        .unwrap();
    b.handle
        .send_to_room("public-room", "to-room", &json!([1, 2]), &[])
        .unwrap();
    assert_eq!(alice.expect_event("to-room").await["data"], json!([1, 2]));
    alice.expect_silence().await;

    let emitter = Emitter::connect(&[redis.url()]).await.expect("emitter");
    emitter
        .to_room("public-room", "from-emitter", Some(r#"{"ok":true}"#), &[])
        .await
        .expect("emit");
    assert_eq!(alice.expect_event("from-emitter").await["data"]["ok"], true);
    emitter.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_starts_with_redis_down_and_becomes_ready() {
    let mut redis = RedisServer::reserved();
    let a = node(&redis);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!a.handle.is_ready(), "not ready while Redis is down");
    let (mut alice, _) = a.login("alice").await;
    a.handle
        .send_to_user("alice", "local-still-works", &json!(1))
        .unwrap();
    alice.expect_event("local-still-works").await;
    redis.restart();
    // Default backoff caps at 2 s.
    wait_for("ready after Redis came up", Duration::from_secs(5), || {
        a.handle.is_ready()
    })
    .await;
}

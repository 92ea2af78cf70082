//! One delivery suite, every mode: the same scenarios against a single node, against two
//! and three nodes sharing one Redis (interest and patterns mode), and against three nodes
//! on a 3-master Redis Cluster in sharded mode. Clients are spread over the nodes;
//! messages are published from node 0; every recipient must get each message exactly once
//! — never twice on the publishing node, whose own envelope comes back from Redis.

use std::time::Duration;

use crate::support::attach_in;
use serde_json::json;
use shardcast::redis::Emitter;
use shardcast::redis::SubscribeMode;

use crate::support::redis::{
    RawSubscriber, RedisCluster, RedisServer, in_both_modes, publish_raw, wait_for,
};
use crate::support::{self, TestServer, WsClient};

/// Nodes, and the Redis they share when there are several (a 3-master cluster in sharded
/// mode).
struct Fleet {
    redis: Option<RedisServer>,
    cluster: Option<RedisCluster>,
    mode: SubscribeMode,
    nodes: Vec<TestServer>,
}

impl Fleet {
    async fn start(nodes: usize, mode: SubscribeMode) -> Fleet {
        if nodes == 1 {
            return Fleet {
                redis: None,
                cluster: None,
                mode,
                nodes: vec![TestServer::start(forwarding(support::builder(2)))],
            };
        }
        let (redis, cluster) = match mode {
            SubscribeMode::Sharded => (None, Some(RedisCluster::start(3))),
            _ => (Some(RedisServer::start()), None),
        };
        let urls = match (&redis, &cluster) {
            (Some(redis), _) => vec![redis.url()],
            (_, Some(cluster)) => cluster.urls(),
            _ => unreachable!("one of them was started"),
        };
        let nodes: Vec<TestServer> = (0..nodes)
            .map(|_| {
                let builder = forwarding(support::builder(2));
                TestServer::start(attach_in(builder, &urls, mode))
            })
            .collect();
        wait_for("every node subscribed", Duration::from_secs(10), || {
            nodes.iter().all(|n| n.handle.is_ready())
        })
        .await;
        Fleet {
            redis,
            cluster,
            mode,
            nodes,
        }
    }

    /// An emitter the fleet hears: classic, or SPUBLISH on the cluster in sharded mode.
    async fn emitter(&self) -> Emitter {
        match (&self.redis, &self.cluster) {
            (_, Some(cluster)) if self.mode == SubscribeMode::Sharded => {
                Emitter::connect_sharded(&cluster.urls()).await
            }
            (Some(redis), _) => Emitter::connect(&[redis.url()]).await,
            _ => panic!("a single node has no Redis"),
        }
        .expect("emitter connects")
    }

    fn node(&self, i: usize) -> &TestServer {
        &self.nodes[i % self.nodes.len()]
    }

    /// Logs in `count` clients, round-robin over the nodes.
    async fn spread(
        &self,
        user: impl Fn(usize) -> String,
        count: usize,
    ) -> Vec<(WsClient, String)> {
        let mut out = Vec::new();
        for i in 0..count {
            out.push(self.node(i).login(&user(i)).await);
        }
        out
    }

    /// Every client joins `room`; waits until each node indexed its members.
    async fn join_all(&self, clients: &mut [(WsClient, String)], room: &str) {
        for (client, _) in clients.iter_mut() {
            client.join(&[room]).await;
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let here = (0..clients.len())
                .filter(|c| c % self.nodes.len() == i)
                .count();
            node.wait_members(room, here).await;
        }
    }
}

/// Custom events go to `ws:inbound`, as in the standalone server.
fn forwarding(builder: shardcast::EngineBuilder) -> shardcast::EngineBuilder {
    builder.on_message(|handle, message| async move {
        handle.forward_inbound(&message);
    })
}

async fn expect_once(clients: &mut [(WsClient, String)], event: &str, skip: &[String]) {
    for (client, id) in clients.iter_mut() {
        if !skip.contains(id) {
            client.expect_event(event).await;
        }
    }
    for (client, _) in clients.iter_mut() {
        client.expect_silence().await;
    }
}

async fn to_client(fleet: Fleet) {
    let mut clients = fleet.spread(|i| format!("c{i}"), 3).await;
    let target = clients.last().unwrap().1.clone();
    fleet
        .node(0)
        .handle
        .send_to_client(&target, "direct", &1)
        .unwrap();
    let last = clients.len() - 1;
    clients[last].0.expect_event("direct").await;
    for (client, _) in &mut clients {
        client.expect_silence().await;
    }
}

async fn to_user(fleet: Fleet) {
    let mut sessions = fleet.spread(|_| "multi".into(), 3).await;
    let (mut other, _) = fleet.node(1).login("other").await;
    fleet
        .node(0)
        .handle
        .send_to_user("multi", "mine", &1)
        .unwrap();
    expect_once(&mut sessions, "mine", &[]).await;
    other.expect_silence().await;
}

async fn to_room(fleet: Fleet) {
    let mut members = fleet.spread(|i| format!("r{i}"), 6).await;
    let (mut outsider, _) = fleet.node(2).login("outsider").await;
    fleet.join_all(&mut members, "public-fleet").await;
    fleet
        .node(0)
        .handle
        .send_to_room("public-fleet", "room", &1, &[])
        .unwrap();
    expect_once(&mut members, "room", &[]).await;
    outsider.expect_silence().await;
}

async fn exclude_room_and_broadcast(fleet: Fleet) {
    let mut clients = fleet.spread(|i| format!("x{i}"), 6).await;
    let skip = vec![clients[0].1.clone(), clients[1].1.clone()];
    fleet.join_all(&mut clients, "public-ex").await;
    fleet
        .node(0)
        .handle
        .send_to_room("public-ex", "room", &1, &skip)
        .unwrap();
    expect_once(&mut clients, "room", &skip).await;
    fleet.node(0).handle.broadcast("all", &2, &skip).unwrap();
    expect_once(&mut clients, "all", &skip).await;
}

async fn ignis_send(fleet: Fleet) {
    let mut clients = fleet.spread(|i| format!("s{i}"), 3).await;
    fleet.node(0).handle.send(None, "everyone", &0).unwrap();
    expect_once(&mut clients, "everyone", &[]).await;
    let far = clients.last().unwrap().1.clone();
    fleet.node(0).handle.send(Some(&far), "far", &1).unwrap();
    let last = clients.len() - 1;
    clients[last].0.expect_event("far").await;
    for (client, _) in &mut clients {
        client.expect_silence().await;
    }
}

macro_rules! every_mode {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use shardcast::redis::SubscribeMode;
                const INTEREST: SubscribeMode = SubscribeMode::Interest;
                const PATTERNS: SubscribeMode = SubscribeMode::Patterns;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn single_node() {
                    super::$scenario(super::Fleet::start(1, INTEREST).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn two_nodes_over_redis() {
                    super::$scenario(super::Fleet::start(2, INTEREST).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn three_nodes_over_redis() {
                    super::$scenario(super::Fleet::start(3, INTEREST).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn two_nodes_over_redis_patterns() {
                    super::$scenario(super::Fleet::start(2, PATTERNS).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn three_nodes_over_redis_patterns() {
                    super::$scenario(super::Fleet::start(3, PATTERNS).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn three_nodes_over_redis_cluster_sharded() {
                    let sharded = super::Fleet::start(3, SubscribeMode::Sharded).await;
                    super::$scenario(sharded).await;
                }
            }
        )*
    };
}

every_mode!(
    to_client,
    to_user,
    to_room,
    exclude_room_and_broadcast,
    ignis_send
);

async fn emitter_reaches_every_target_type_on_every_node(mode: SubscribeMode) {
    let fleet = Fleet::start(3, mode).await;
    let mut clients = fleet.spread(|i| format!("e{i}"), 3).await;
    fleet.join_all(&mut clients, "public-em").await;
    let emitter = fleet.emitter().await;
    let target = clients[2].1.clone();
    emitter.to_client(&target, "c", Some("1")).await.unwrap();
    clients[2].0.expect_event("c").await;
    emitter.to_user("e1", "u", None).await.unwrap();
    assert!(clients[1].0.expect_event("u").await.get("data").is_none());
    emitter
        .to_room("public-em", "r", Some("[1]"), &[])
        .await
        .unwrap();
    expect_once(&mut clients, "r", &[]).await;
    emitter
        .broadcast("b", Some("{}"), std::slice::from_ref(&target))
        .await
        .unwrap();
    expect_once(&mut clients, "b", std::slice::from_ref(&target)).await;
    emitter.shutdown().await;
}

async fn custom_events_are_forwarded_to_ws_inbound(mode: SubscribeMode) {
    let fleet = Fleet::start(2, mode).await;
    let url = fleet.redis.as_ref().unwrap().url();
    let mut inbound = RawSubscriber::psubscribe(&url, &["ws:inbound"]).await;
    let (mut client, id) = fleet.node(1).login("sender").await;
    client
        .send_json(json!({ "event": "order", "data": { "qty": 2 }, "id": "o-1" }))
        .await;
    let (channel, payload) = inbound.next(support::WAIT).await.expect("forwarded");
    assert_eq!(channel, "ws:inbound");
    let got: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(got["serverId"], fleet.node(1).handle.server_id().as_str());
    assert_eq!(got["clientId"], id);
    assert_eq!(got["userId"], "sender");
    assert_eq!(got["event"], "order");
    assert_eq!(got["data"], json!({ "qty": 2 }));
    assert_eq!(got["id"], "o-1");
}

async fn malformed_envelopes_are_ignored_and_delivery_continues(mode: SubscribeMode) {
    let fleet = Fleet::start(2, mode).await;
    let url = fleet.redis.as_ref().unwrap().url();
    let (mut client, _) = fleet.node(1).login("m").await;
    for junk in [
        &b"not json"[..],
        b"[]",
        br#"{"serverId":1,"event":"x"}"#,
        br#"{"serverId":"s","type":"room","event":"x"}"#,
        br#"{"serverId":"s","type":"nope","target":"ws-default","event":"x"}"#,
    ] {
        publish_raw(&url, "ws:room:ws-default", junk).await.unwrap();
    }
    let valid =
        br#"{"serverId":"emitter","type":"room","target":"ws-default","event":"ok","data":1}"#;
    publish_raw(&url, "ws:room:ws-default", valid)
        .await
        .unwrap();
    assert_eq!(client.expect_event("ok").await["data"], 1);
    client.expect_silence().await;
}

async fn http_publish_on_one_node_reaches_the_others(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let a = TestServer::start(attach_in(
        support::builder(1).api_key("k"),
        &[redis.url()],
        mode,
    ));
    let b = TestServer::start(attach_in(support::builder(1), &[redis.url()], mode));
    wait_for("ready", Duration::from_secs(10), || {
        a.handle.is_ready() && b.handle.is_ready()
    })
    .await;
    let (mut on_a, _) = a.login("ha").await;
    let (mut on_b, _) = b.login("hb").await;
    let body = json!({ "type": "room", "target": "ws-default", "event": "api", "data": 5 });
    let (status, _) = support::http(
        a.addr,
        "POST",
        "/api/publish",
        &[("Authorization", "Bearer k")],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(on_a.expect_event("api").await["data"], 5);
    assert_eq!(on_b.expect_event("api").await["data"], 5);
    on_a.expect_silence().await;
    on_b.expect_silence().await;
}

async fn redis_cluster_carries_every_target_between_nodes(mode: SubscribeMode) {
    use crate::support::redis::RedisCluster;
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    // Each node is told about the cluster through different seed orders.
    let mut reversed = urls.clone();
    reversed.reverse();
    let a = TestServer::start(attach_in(support::builder(1), &urls, mode));
    let b = TestServer::start(attach_in(support::builder(1), &reversed, mode));
    wait_for("ready", Duration::from_secs(10), || {
        a.handle.is_ready() && b.handle.is_ready()
    })
    .await;
    let (mut client, id) = b.login("cluster-user").await;
    client.join(&["public-cl"]).await;
    b.wait_members("public-cl", 1).await;
    a.handle.send_to_client(&id, "c", &1).unwrap();
    a.handle.send_to_user("cluster-user", "u", &2).unwrap();
    a.handle.send_to_room("public-cl", "r", &3, &[]).unwrap();
    a.handle.broadcast("b", &4, &[]).unwrap();
    for event in ["c", "u", "r", "b"] {
        client.expect_event(event).await;
    }
    client.expect_silence().await;
}

async fn redis_restart_mid_run_local_keeps_working_and_cross_node_resumes(mode: SubscribeMode) {
    let mut redis = RedisServer::start();
    let a = TestServer::start(attach_in(support::builder(1), &[redis.url()], mode));
    let b = TestServer::start(attach_in(support::builder(1), &[redis.url()], mode));
    wait_for("ready", Duration::from_secs(10), || {
        a.handle.is_ready() && b.handle.is_ready()
    })
    .await;
    let (mut on_a, _) = a.login("local").await;
    let (mut on_b, _) = b.login("remote").await;

    redis.kill();
    wait_for("not ready", Duration::from_secs(10), || {
        !a.handle.is_ready()
    })
    .await;
    let (status, _) = support::http(a.addr, "GET", "/ready", &[], "").await;
    assert_eq!(status, 503);
    a.handle
        .send_to_room("ws-default", "during-outage", &1, &[])
        .unwrap();
    on_a.expect_event("during-outage").await;

    redis.restart();
    let restarted = std::time::Instant::now();
    wait_for("ready again", Duration::from_secs(10), || {
        a.handle.is_ready() && b.handle.is_ready()
    })
    .await;
    // Cross-node delivery resumes: keep publishing until one arrives on the other node.
    // (What was published during the outage waited in the bounded queue; it arrives too
    // when B resubscribed before A's publisher flushed it — pub/sub keeps nothing.)
    let mut n = 0;
    loop {
        a.handle.send_to_user("remote", "after", &n).unwrap();
        if let support::Next::Json(m) = on_b.next_within(Duration::from_millis(50)).await {
            if m["event"] == "during-outage" {
                continue;
            }
            assert_eq!(m["event"], "after");
            break;
        }
        n += 1;
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "cross-node delivery never resumed"
        );
    }
    println!(
        "redis restart → cross-node delivery resumed in {:?}",
        restarted.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_reaches_every_target_type_on_every_node_in_sharded_mode() {
    emitter_reaches_every_target_type_on_every_node(SubscribeMode::Sharded).await;
}

in_both_modes!(
    emitter_reaches_every_target_type_on_every_node,
    custom_events_are_forwarded_to_ws_inbound,
    malformed_envelopes_are_ignored_and_delivery_continues,
    http_publish_on_one_node_reaches_the_others,
    redis_cluster_carries_every_target_between_nodes,
    redis_restart_mid_run_local_keeps_working_and_cross_node_resumes,
);

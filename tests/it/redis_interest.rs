//! Interest-based subscriptions against real redis-server processes: what a node holds
//! in Redis (read back with `PUBSUB CHANNELS`) follows its rooms, clients and users
//! through join/leave churn and disconnects; it is restored after Redis restarts (joins
//! made during the outage included); the join-to-subscription window is measured; a node
//! hears only its own rooms' traffic, where a patterns-mode node hears the fleet's.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use shardcast::redis::{RedisSettings, SubscribeMode};

use crate::metrics::scrape;
use crate::support::redis::{
    RedisServer, client_channels, expect_set, fast_settings_in, publish_raw, wait_for,
};
use crate::support::{self, TestServer, WAIT, WsClient};

fn node(redis: &RedisServer, mode: SubscribeMode) -> TestServer {
    let settings: RedisSettings = fast_settings_in(mode, vec![redis.url()]);
    TestServer::start(support::builder(2).redis(settings))
}

async fn ready(nodes: &[&TestServer]) {
    wait_for("nodes ready", Duration::from_secs(10), || {
        nodes.iter().all(|n| n.handle.is_ready())
    })
    .await;
}

/// The `ws:*` channels Redis has subscribers for.
fn channels(redis: &RedisServer) -> BTreeSet<String> {
    redis
        .cli(&["PUBSUB", "CHANNELS", "ws:*"])
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Waits until Redis holds exactly `want`; panics with the difference.
async fn expect_channels(redis: &RedisServer, want: &BTreeSet<String>) {
    expect_set("Redis channels", want, || channels(redis)).await;
}

fn set<S: Into<String>>(items: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

/// A room message as an Ignis emitter publishes it.
async fn publish_to_room(redis: &RedisServer, room: &str, event: &str) {
    let payload = format!(
        r#"{{"serverId":"emitter","type":"room","target":"{room}","event":"{event}","data":1}}"#
    );
    publish_raw(&redis.url(), &format!("ws:room:{room}"), payload.as_bytes())
        .await
        .expect("publish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_join_leave_churn_and_disconnects() {
    let redis = RedisServer::start();
    let server = node(&redis, SubscribeMode::Interest);
    ready(&[&server]).await;
    expect_channels(&redis, &set(["ws:broadcast"])).await;
    let (mut a, id_a) = server.login("ua").await;
    let (mut b, id_b) = server.login("ub").await;
    let mut base = set(["ws:broadcast"]);
    base.extend(client_channels(&id_a, "ua"));
    base.extend(client_channels(&id_b, "ub"));
    expect_channels(&redis, &base).await;

    // A room is held while either member is here.
    a.join(&["public-x"]).await;
    b.join(&["public-x"]).await;
    server.wait_members("public-x", 2).await;
    let mut with_x = base.clone();
    with_x.insert("ws:room:public-x".into());
    expect_channels(&redis, &with_x).await;
    a.leave(&["public-x"]).await;
    server.wait_members("public-x", 1).await;
    expect_channels(&redis, &with_x).await;
    b.leave(&["public-x"]).await;
    server.wait_members("public-x", 0).await;
    expect_channels(&redis, &base).await;

    // Fast churn settles on the final state, and that room is heard.
    for _ in 0..50 {
        a.join(&["public-churn"]).await;
        a.leave(&["public-churn"]).await;
    }
    a.join(&["public-churn"]).await;
    server.wait_members("public-churn", 1).await;
    let mut with_churn = base.clone();
    with_churn.insert("ws:room:public-churn".into());
    expect_channels(&redis, &with_churn).await;
    publish_to_room(&redis, "public-churn", "after-churn").await;
    a.expect_event("after-churn").await;

    // A disconnect takes the client's, its user's and its rooms' channels with it.
    b.join(&["public-y"]).await;
    server.wait_members("public-y", 1).await;
    b.close().await;
    let mut left = set(["ws:broadcast", "ws:room:public-churn"]);
    left.extend(client_channels(&id_a, "ua"));
    expect_channels(&redis, &left).await;

    let scrape = scrape(server.addr).await;
    let held = scrape.value(r#"shardcast_redis_subscriptions{mode="interest",kind="channel"}"#);
    // The probe channel is outside ws:*.
    assert_eq!(held as usize, left.len() + 1);
    let unsubscribed =
        scrape.value(r#"shardcast_redis_subscription_changes_total{op="unsubscribe"}"#);
    assert!(
        unsubscribed >= 5.0,
        "public-x, b's four channels: {unsubscribed}"
    );
    a.expect_silence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscription_is_restored_after_redis_restarts() {
    let mut redis = RedisServer::start();
    let server = node(&redis, SubscribeMode::Interest);
    ready(&[&server]).await;
    let (mut a, id) = server.login("ra").await;
    a.join(&["public-before"]).await;
    server.wait_members("public-before", 1).await;

    redis.kill();
    wait_for("not ready", WAIT, || !server.handle.is_ready()).await;
    // A join while Redis is down is subscribed once it is back.
    a.join(&["public-during"]).await;
    support::wait_members(&server.handle, "public-during", 1).await;
    redis.restart();
    ready(&[&server]).await;

    let mut want = set([
        "ws:broadcast",
        "ws:room:public-before",
        "ws:room:public-during",
    ]);
    want.extend(client_channels(&id, "ra"));
    expect_channels(&redis, &want).await;
    publish_to_room(&redis, "public-before", "b").await;
    a.expect_event("b").await;
    publish_to_room(&redis, "public-during", "d").await;
    a.expect_event("d").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_to_subscription_window_is_measured_and_short() {
    let redis = RedisServer::start();
    let server = node(&redis, SubscribeMode::Interest);
    ready(&[&server]).await;
    let (mut client, _) = server.login("w").await;
    let mut conn = redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    const ROOMS: usize = 40;
    let mut windows = Vec::with_capacity(ROOMS);
    for i in 0..ROOMS {
        let channel = format!("ws:room:public-w{i}");
        let sent = Instant::now();
        client.join(&[&format!("public-w{i}")]).await;
        // Redis itself says when the node's SUBSCRIBE took effect.
        loop {
            let (_, n): (String, u64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .expect("PUBSUB NUMSUB");
            if n == 1 {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(2),
                "{channel} was not subscribed 2 s after the join"
            );
        }
        windows.push(sent.elapsed());
    }
    windows.sort();
    let at = |q: f64| windows[((windows.len() - 1) as f64 * q) as usize];
    println!(
        "join → SUBSCRIBE in effect, as seen from Redis ({ROOMS} fresh rooms, the client's \
         join frame included): min {:?}, median {:?}, p90 {:?}, max {:?}",
        windows[0],
        at(0.5),
        at(0.9),
        windows[ROOMS - 1]
    );
    // The node measured the same windows from its side.
    let scrape = scrape(server.addr).await;
    let count = scrape.value("shardcast_redis_subscribe_window_seconds_count");
    let sum = scrape.value("shardcast_redis_subscribe_window_seconds_sum");
    assert!(count >= ROOMS as f64, "{count}");
    println!(
        "node-side window: {count} samples, mean {:?}",
        Duration::from_secs_f64(sum / count)
    );
}

/// Two nodes; a room whose members are all on node 1. Returns node 0's count of Redis
/// messages received for the room (the closing broadcast left out), and of those, the
/// ones nobody there wanted.
async fn bystander_receives(mode: SubscribeMode) -> (f64, f64) {
    let redis = RedisServer::start();
    let bystander = node(&redis, mode);
    let host = node(&redis, mode);
    ready(&[&bystander, &host]).await;
    let (mut idle, _) = bystander.login("idle").await;
    let (mut member, _) = host.login("member").await;
    member.join(&["public-here"]).await;
    host.wait_members("public-here", 1).await;
    let before = scrape(bystander.addr).await;
    for _ in 0..20 {
        publish_to_room(&redis, "public-here", "m").await;
    }
    for _ in 0..20 {
        member.expect_event("m").await;
    }
    // A broadcast published after them: once the bystander's client has it, its node has
    // taken in everything Redis sent it before (one connection delivers in order).
    let end = r#"{"serverId":"emitter","type":"broadcast","event":"end"}"#;
    publish_raw(&redis.url(), "ws:broadcast", end.as_bytes())
        .await
        .expect("publish");
    idle.expect_event("end").await;
    let after = scrape(bystander.addr).await;
    let delta = |series: &str| after.value(series) - before.value(series);
    (
        delta("shardcast_redis_received_total") - 1.0,
        delta("shardcast_redis_received_unwanted_total"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_hears_only_its_own_rooms_where_patterns_hear_the_fleet() {
    let (received, unwanted) = bystander_receives(SubscribeMode::Interest).await;
    assert_eq!((received, unwanted), (0.0, 0.0), "interest mode");
    let (received, unwanted) = bystander_receives(SubscribeMode::Patterns).await;
    assert_eq!((received, unwanted), (20.0, 20.0), "patterns mode");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_mode_holds_the_three_patterns_and_no_channel_per_room() {
    let redis = RedisServer::start();
    let server = node(&redis, SubscribeMode::Patterns);
    ready(&[&server]).await;
    let (mut client, _): (WsClient, String) = server.login("p").await;
    client.join(&["public-p"]).await;
    server.wait_members("public-p", 1).await;
    expect_channels(&redis, &set(["ws:broadcast"])).await;
    assert_eq!(redis.cli(&["PUBSUB", "NUMPAT"]).trim(), "3");
    let scrape = scrape(server.addr).await;
    let patterns = scrape.value(r#"shardcast_redis_subscriptions{mode="patterns",kind="pattern"}"#);
    assert_eq!(patterns, 3.0);
    publish_to_room(&redis, "public-p", "heard").await;
    client.expect_event("heard").await;
}

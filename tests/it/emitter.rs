//! The emitter against real redis-server processes: exact bytes per target type, errors,
//! reconnect, cluster, and emitter → bridge delivery.

use std::time::Duration;

use shardcast::internals::redis::RedisBridge;
use shardcast::protocol::Target;
use shardcast::redis::{Emitter, EmitterError};
use tokio::runtime::Handle;

use crate::support::redis::{
    RawSubscriber, RedisCluster, RedisServer, collect_sink, fast_settings, host, next_within,
    wait_for,
};

const ARRIVE: Duration = Duration::from_secs(3);

fn owned(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

async fn expect(raw: &mut RawSubscriber, channel: &str, payload: &str) {
    let (got_channel, got_payload) = raw.next(ARRIVE).await.expect("emitted message arrives");
    assert_eq!(got_channel, channel);
    assert_eq!(
        String::from_utf8_lossy(&got_payload),
        payload,
        "on {channel}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_every_target_type_with_exact_ignis_bytes() {
    let redis = RedisServer::start();
    let mut raw = RawSubscriber::psubscribe(&redis.url(), &["ws:*"]).await;
    let emitter = Emitter::connect(&[redis.url()]).await.expect("connects");

    emitter
        .to_client(
            "5b0c1f3e-8a2d-4c6b-9e7f-0123456789ab",
            "job:progress",
            Some(r#"{ "jobId": "123", "progress": 75 }"#),
        )
        .await
        .expect("to_client");
    expect(&mut raw, "ws:client:5b0c1f3e-8a2d-4c6b-9e7f-0123456789ab", r#"{"serverId":"emitter","type":"client","target":"5b0c1f3e-8a2d-4c6b-9e7f-0123456789ab","event":"job:progress","data":{"jobId":"123","progress":75}}"#).await;

    emitter
        .to_user(
            "user-456",
            "notification",
            Some(r#"{"message":"Your report is ready"}"#),
        )
        .await
        .expect("to_user");
    expect(&mut raw, "ws:user:user-456", r#"{"serverId":"emitter","type":"user","target":"user-456","event":"notification","data":{"message":"Your report is ready"}}"#).await;

    emitter
        .to_room(
            "dashboard-viewers",
            "data:update",
            Some(r#"{"metric":"cpu","value":42.5}"#),
            &owned(&["client-id-to-skip"]),
        )
        .await
        .expect("to_room");
    expect(&mut raw, "ws:room:dashboard-viewers", r#"{"serverId":"emitter","type":"room","target":"dashboard-viewers","event":"data:update","data":{"metric":"cpu","value":42.5},"exclude":["client-id-to-skip"]}"#).await;

    emitter
        .to_room("r", "no-exclude", None, &[])
        .await
        .expect("to_room without data");
    expect(
        &mut raw,
        "ws:room:r",
        r#"{"serverId":"emitter","type":"room","target":"r","event":"no-exclude"}"#,
    )
    .await;

    emitter
        .broadcast(
            "system:maintenance",
            Some(r#"{"message":"Scheduled maintenance in 10 minutes"}"#),
            &[],
        )
        .await
        .expect("broadcast");
    expect(&mut raw, "ws:broadcast", r#"{"serverId":"emitter","type":"broadcast","event":"system:maintenance","data":{"message":"Scheduled maintenance in 10 minutes"}}"#).await;

    emitter
        .broadcast("b", Some("null"), &owned(&["a", "b"]))
        .await
        .expect("broadcast with exclude");
    expect(
        &mut raw,
        "ws:broadcast",
        r#"{"serverId":"emitter","type":"broadcast","event":"b","data":null,"exclude":["a","b"]}"#,
    )
    .await;

    emitter
        .to_user("ü", "é\"vent", Some(r#""line\nbreak""#))
        .await
        .expect("unicode");
    expect(&mut raw, "ws:user:ü", r#"{"serverId":"emitter","type":"user","target":"ü","event":"é\"vent","data":"line\nbreak"}"#).await;

    emitter.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_bad_input_before_publishing() {
    let redis = RedisServer::start();
    let emitter = Emitter::connect(&[redis.url()]).await.expect("connects");
    let err = emitter
        .to_client(
            "5b0c1f3e-8a2d-4c6b-9e7f-0123456789ab",
            "e",
            Some("{not json"),
        )
        .await
        .expect_err("bad data");
    assert!(matches!(err, EmitterError::InvalidData(_)), "{err}");
    // No node can hold a client whose id is not a client id.
    let err = emitter.to_client("c", "e", None).await.expect_err("bad id");
    assert!(matches!(err, EmitterError::InvalidClientId(_)), "{err}");
    assert!(matches!(
        emitter.to_room("", "e", None, &[]).await,
        Err(EmitterError::EmptyTarget("room"))
    ));
    assert!(matches!(
        emitter.to_user("", "e", None).await,
        Err(EmitterError::EmptyTarget("user id"))
    ));
    assert!(matches!(
        emitter.to_client("", "e", None).await,
        Err(EmitterError::EmptyTarget("client id"))
    ));
    emitter.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_are_clear() {
    let dead = RedisServer::reserved();
    let err = Emitter::connect(&[dead.url()])
        .await
        .err()
        .expect("nothing listens there");
    let text = err.to_string();
    assert!(matches!(err, EmitterError::Unreachable { .. }), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", dead.port())),
        "{text}"
    );
    assert!(matches!(
        Emitter::connect(&[]).await,
        Err(EmitterError::NoUrls)
    ));
    let err = Emitter::connect(&["redis://:hunter2@[bad".to_owned()])
        .await
        .err()
        .expect("bad url");
    assert!(
        matches!(err, EmitterError::InvalidUrl { .. }) && !err.to_string().contains("hunter2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_redis_restart() {
    let mut redis = RedisServer::start();
    let emitter = Emitter::connect(&[redis.url()]).await.expect("connects");
    emitter
        .broadcast("before", None, &[])
        .await
        .expect("before restart");
    redis.kill();
    let err = emitter
        .broadcast("while-down", None, &[])
        .await
        .expect_err("redis is down");
    assert!(matches!(err, EmitterError::Unreachable { .. }), "{err}");
    redis.restart();
    let mut raw = RawSubscriber::psubscribe(&redis.url(), &["ws:*"]).await;
    emitter
        .broadcast("after", None, &[])
        .await
        .expect("after restart");
    expect(
        &mut raw,
        "ws:broadcast",
        r#"{"serverId":"emitter","type":"broadcast","event":"after"}"#,
    )
    .await;
    emitter.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_messages_reach_every_bridge() {
    let redis = RedisServer::start();
    let (sink_a, mut rx_a) = collect_sink();
    let (sink_b, mut rx_b) = collect_sink();
    let a = RedisBridge::start(
        fast_settings(vec![redis.url()]),
        "node-a".into(),
        sink_a,
        &Handle::current(),
    )
    .expect("a");
    let b = RedisBridge::start(
        fast_settings(vec![redis.url()]),
        "node-b".into(),
        sink_b,
        &Handle::current(),
    )
    .expect("b");
    host(&a);
    host(&b);
    wait_for("both ready", ARRIVE, || a.is_ready() && b.is_ready()).await;
    let emitter = Emitter::connect(&[redis.url()]).await.expect("connects");
    emitter
        .to_room("lobby", "tick", Some("[1, 2]"), &owned(&["c-9"]))
        .await
        .expect("emit");
    for rx in [&mut rx_a, &mut rx_b] {
        let env = next_within(rx, ARRIVE).await.expect("delivered");
        assert_eq!(
            (env.server_id.as_str(), env.target.clone(), env.data()),
            ("emitter", Target::room("lobby"), Some("[1,2]"))
        );
        assert_eq!(env.exclude, owned(&["c-9"]));
    }
    emitter.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_through_a_cluster_and_skips_dead_nodes() {
    let mut cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    let mut raw = RawSubscriber::psubscribe(&urls[2], &["ws:user:*"]).await;
    cluster.nodes[0].kill();
    // Node 0 is first in the list but dead: the emitter uses node 1; node 2 still hears it.
    let emitter = Emitter::connect(&urls)
        .await
        .expect("connects to a live node");
    emitter
        .to_user("u", "hello", Some("1"))
        .await
        .expect("emit");
    expect(
        &mut raw,
        "ws:user:u",
        r#"{"serverId":"emitter","type":"user","target":"u","event":"hello","data":1}"#,
    )
    .await;
    emitter.shutdown().await;
}

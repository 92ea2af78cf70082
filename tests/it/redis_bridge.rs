//! The Redis bridge against real redis-server processes: delivery of every envelope type,
//! own-id and malformed filtering, ordering, the bounded publish queue, shutdown and
//! configuration errors. Faults live in `redis_faults.rs`.

use shardcast::redis::SubscribeMode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shardcast::internals::redis::{LinkState, PublishError, RedisBridge};
use shardcast::protocol::Target;
use shardcast::protocol::envelope::Envelope;
use shardcast::redis::{RedisConfigError, RedisSettings};
use tokio::runtime::Handle;

use crate::support::redis::{
    ARRIVE, RawSubscriber, RedisServer, collect_sink, envelope, fast_settings, fast_settings_in,
    in_both_modes, next_within, publish_envelope, publish_raw, start_bridge, wait_for, wait_ready,
};

async fn delivers_every_envelope_type(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let (bridge, mut rx) = start_bridge(fast_settings_in(mode, vec![redis.url()]), "me");
    wait_ready(&bridge).await;
    let sent = [
        envelope(
            "other",
            crate::support::redis::client_target(),
            "to-client",
            Some(r#"{"a":1}"#),
            &[],
        ),
        envelope(
            "emitter",
            Target::user("u-1"),
            "to-user",
            Some("[1,2]"),
            &[],
        ),
        envelope(
            "other",
            Target::room("lobby"),
            "to-room",
            Some(r#""text""#),
            &["c-9"],
        ),
        envelope("other", Target::Broadcast, "to-all", None, &["c-8", "c-7"]),
    ];
    for env in &sent {
        publish_envelope(&redis.url(), env).await;
    }
    for want in &sent {
        let got = next_within(&mut rx, ARRIVE)
            .await
            .expect("envelope delivered");
        assert_eq!(&got, want);
    }
    let status = bridge.status();
    assert_eq!(
        (status.received, status.delivered, status.malformed),
        (4, 4, 0)
    );
    assert_eq!(
        (status.subscriber, status.publisher),
        (LinkState::Up, LinkState::Up)
    );
    bridge.shutdown().await;
}

async fn skips_envelopes_with_own_server_id(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let (bridge, mut rx) = start_bridge(fast_settings_in(mode, vec![redis.url()]), "me");
    wait_ready(&bridge).await;
    publish_envelope(
        &redis.url(),
        &envelope("me", Target::Broadcast, "mine", None, &[]),
    )
    .await;
    publish_envelope(
        &redis.url(),
        &envelope("you", Target::Broadcast, "yours", None, &[]),
    )
    .await;
    let got = next_within(&mut rx, ARRIVE).await.expect("delivered");
    assert_eq!(got.event(), "yours");
    assert_eq!(bridge.status().ignored_own, 1);
    assert!(
        next_within(&mut rx, Duration::from_millis(200))
            .await
            .is_none()
    );
    bridge.shutdown().await;
}

async fn malformed_envelopes_are_counted_and_later_ones_still_arrive(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let (bridge, mut rx) = start_bridge(fast_settings_in(mode, vec![redis.url()]), "me");
    wait_ready(&bridge).await;
    let bad: [(&str, &[u8]); 8] = [
        ("ws:broadcast", b"not json"),
        ("ws:broadcast", b"[1,2,3]"),
        ("ws:room:r", br#"{"type":"room","target":"r","event":"e"}"#),
        (
            "ws:room:r",
            br#"{"serverId":"x","type":"room","target":"r","event":5}"#,
        ),
        (
            "ws:user:u",
            br#"{"serverId":"x","type":"nobody","target":"u","event":"e"}"#,
        ),
        (
            "ws:room:r",
            br#"{"serverId":"x","type":"room","event":"e"}"#,
        ),
        (
            "ws:room:r",
            br#"{"serverId":"x","type":"room","target":"r","event":"e","exclude":"c"}"#,
        ),
        ("ws:client:c", b"\xff\xfe\xfd"),
    ];
    for (channel, payload) in bad {
        publish_raw(&redis.url(), channel, payload)
            .await
            .expect("publish");
    }
    let good = envelope(
        "x",
        crate::support::redis::client_target(),
        "fine",
        Some("1"),
        &[],
    );
    publish_envelope(&redis.url(), &good).await;
    assert_eq!(next_within(&mut rx, ARRIVE).await.as_ref(), Some(&good));
    let status = bridge.status();
    assert_eq!(
        (status.malformed, status.received, status.delivered),
        (8, 9, 1)
    );
    bridge.shutdown().await;
}

async fn bridge_to_bridge_keeps_per_channel_order(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let (sender, _own) = start_bridge(fast_settings_in(mode, vec![redis.url()]), "node-a");
    let (receiver, mut rx) = start_bridge(fast_settings_in(mode, vec![redis.url()]), "node-b");
    wait_ready(&sender).await;
    wait_ready(&receiver).await;
    const N: usize = 2000;
    for i in 0..N {
        let env = envelope(
            "node-a",
            Target::room("seq"),
            "n",
            Some(&i.to_string()),
            &[],
        );
        sender.publish_envelope(&env).expect("queued");
    }
    for i in 0..N {
        let got = next_within(&mut rx, ARRIVE).await.expect("in order");
        assert_eq!(got.data(), Some(i.to_string().as_str()), "message {i}");
    }
    wait_for("published counter", ARRIVE, || {
        sender.status().published == N as u64
    })
    .await;
    assert_eq!(sender.status().queued, 0);
    sender.shutdown().await;
    receiver.shutdown().await;
}

async fn publish_works_from_a_thread_outside_the_runtime(mode: SubscribeMode) {
    let redis = RedisServer::start();
    let (sender, _own) = start_bridge(fast_settings_in(mode, vec![redis.url()]), "node-a");
    let (receiver, mut rx) = start_bridge(fast_settings_in(mode, vec![redis.url()]), "node-b");
    wait_ready(&receiver).await;
    let handle = sender.clone();
    std::thread::spawn(move || {
        let env = envelope("node-a", Target::user("u"), "from-thread", None, &[]);
        handle
            .publish_envelope(&env)
            .expect("queued from a plain thread");
    })
    .join()
    .expect("thread");
    assert_eq!(
        next_within(&mut rx, ARRIVE)
            .await
            .map(|e| e.event())
            .as_deref(),
        Some("from-thread")
    );
    sender.shutdown().await;
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_queue_is_bounded_while_redis_is_down_then_drains() {
    let mut redis = RedisServer::reserved();
    let settings = RedisSettings {
        publish_queue: 100,
        ..fast_settings(vec![redis.url()])
    };
    let (bridge, _rx) = start_bridge(settings, "me");
    let env = envelope("me", Target::room("q"), "e", Some("1"), &[]);
    let results: Vec<_> = (0..150).map(|_| bridge.publish_envelope(&env)).collect();
    assert!(results[..100].iter().all(Result::is_ok));
    assert!(
        results[100..]
            .iter()
            .all(|r| *r == Err(PublishError::QueueFull))
    );
    let status = bridge.status();
    assert_eq!(
        (status.queued, status.publish_dropped, status.published),
        (100, 50, 0)
    );
    redis.restart();
    let mut raw = RawSubscriber::psubscribe(&redis.url(), &["ws:room:*"]).await;
    wait_for("queue drained", Duration::from_secs(5), || {
        bridge.status().published == 100
    })
    .await;
    assert_eq!(bridge.status().queued, 0);
    // Whatever the raw subscriber caught (it may have subscribed after some were sent) is intact.
    if let Some((channel, payload)) = raw.next(Duration::from_millis(200)).await {
        assert_eq!((channel.as_str(), payload), ("ws:room:q", env.encode()));
    }
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_queue_byte_bound() {
    let redis = RedisServer::reserved();
    let settings = RedisSettings {
        publish_queue_bytes: 1000,
        ..fast_settings(vec![redis.url()])
    };
    let (bridge, _rx) = start_bridge(settings, "me");
    let payload = Bytes::from(vec![b'x'; 300]);
    let results: Vec<_> = (0..5)
        .map(|_| bridge.publish("ws:broadcast".into(), payload.clone()))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert_eq!(bridge.status().publish_dropped, 2);
    bridge.shutdown().await;
    assert_eq!(
        bridge.status().publish_dropped,
        5,
        "queued messages abandoned at shutdown count as dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_quits_and_refuses_later_publishes() {
    let redis = RedisServer::start();
    let (bridge, _rx) = start_bridge(fast_settings(vec![redis.url()]), "me");
    wait_ready(&bridge).await;
    let mut raw = RawSubscriber::psubscribe(&redis.url(), &["ws:user:*"]).await;
    for i in 0..50 {
        let env = envelope("me", Target::user("u"), "e", Some(&i.to_string()), &[]);
        bridge.publish_envelope(&env).expect("queued");
    }
    bridge.shutdown().await;
    for _ in 0..50 {
        assert!(raw.next(ARRIVE).await.is_some(), "flushed before exit");
    }
    let status = bridge.status();
    assert_eq!(
        (status.subscriber, status.publisher, status.published),
        (LinkState::Stopped, LinkState::Stopped, 50)
    );
    assert_eq!(
        bridge.publish("ws:broadcast".into(), Bytes::from_static(b"{}")),
        Err(PublishError::Closed)
    );
    bridge.shutdown().await; // idempotent
    let clients = redis.cli(&["CLIENT", "LIST"]);
    assert_eq!(
        clients.lines().count(),
        2,
        "only redis-cli and the raw subscriber remain:\n{clients}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_rejects_only_bad_configuration() {
    let (sink, _rx) = collect_sink();
    let rt = Handle::current();
    let bad = |settings: RedisSettings| {
        RedisBridge::start(settings, "me".into(), sink.clone(), &rt).err()
    };
    assert!(matches!(
        bad(RedisSettings::default()),
        Some(RedisConfigError::NoUrls)
    ));
    let err = bad(fast_settings(vec!["http://:secret@host".into()])).expect("bad scheme");
    assert!(matches!(err, RedisConfigError::InvalidUrl { .. }));
    assert!(!err.to_string().contains("secret"), "{err}");
    let zero = RedisSettings {
        publish_queue: 0,
        ..fast_settings(vec!["redis://127.0.0.1:1".into()])
    };
    assert!(matches!(
        bad(zero),
        Some(RedisConfigError::InvalidSetting {
            name: "publish_queue",
            ..
        })
    ));
    // Unreachable is not an error.
    let ok = RedisBridge::start(
        fast_settings(vec!["redis://127.0.0.1:1".into()]),
        "me".into(),
        sink.clone(),
        &rt,
    )
    .expect("starts");
    ok.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_panic_does_not_kill_the_bridge() {
    struct Flaky(tokio::sync::mpsc::UnboundedSender<String>);
    impl shardcast::internals::redis::EnvelopeSink for Flaky {
        fn deliver(&self, envelope: Envelope) {
            assert_ne!(envelope.event(), "boom", "sink blew up on purpose");
            let _ = self.0.send(envelope.event());
        }
    }
    let redis = RedisServer::start();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let bridge = RedisBridge::start(
        fast_settings(vec![redis.url()]),
        "me".into(),
        Arc::new(Flaky(tx)),
        &Handle::current(),
    )
    .expect("start");
    wait_ready(&bridge).await;
    publish_envelope(
        &redis.url(),
        &envelope("x", Target::Broadcast, "boom", None, &[]),
    )
    .await;
    publish_envelope(
        &redis.url(),
        &envelope("x", Target::Broadcast, "fine", None, &[]),
    )
    .await;
    let got = tokio::time::timeout(ARRIVE, rx.recv()).await.ok().flatten();
    assert_eq!(got.as_deref(), Some("fine"));
    bridge.shutdown().await;
}

in_both_modes!(
    delivers_every_envelope_type,
    skips_envelopes_with_own_server_id,
    malformed_envelopes_are_counted_and_later_ones_still_arrive,
    bridge_to_bridge_keeps_per_channel_order,
    publish_works_from_a_thread_outside_the_runtime,
);

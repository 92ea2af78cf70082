//! The Redis families of `/metrics` against a real redis-server that the test stops,
//! restarts and pauses: link state, reconnects, probe timeouts, malformed envelopes, the
//! publish queue, and `published` counted only when Redis accepted the message.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use shardcast::redis::RedisSettings;

use crate::metrics::{Scrape, check_with_parsers, scrape};
use crate::support::redis::{RedisServer, fast_settings, publish_raw};
use crate::support::{self, TestServer};

/// Most messages the publish queue holds in these tests.
const QUEUE: usize = 4;

fn node(redis: &RedisServer) -> TestServer {
    let settings = RedisSettings {
        publish_queue: QUEUE,
        ..fast_settings(vec![redis.url()])
    };
    TestServer::start(support::builder(2).redis(settings))
}

/// Scrapes until `cond` holds on a scrape (panics with `what` after 5 s); returns it.
async fn scrape_until(addr: SocketAddr, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    let start = Instant::now();
    loop {
        let scrape = scrape(addr).await;
        if cond(&scrape) {
            return scrape;
        }
        assert!(
            start.elapsed() < support::WAIT,
            "timed out waiting for {what}:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn link_up(scrape: &Scrape, link: &str) -> f64 {
    scrape.value(&format!("shardcast_redis_link_up{{link=\"{link}\"}}"))
}

fn both_up(scrape: &Scrape) -> bool {
    link_up(scrape, "subscriber") == 1.0 && link_up(scrape, "publisher") == 1.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_published_total_does_not_rise_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let server = node(&redis);
    let up = scrape_until(server.addr, "both links up", both_up).await;
    check_with_parsers(&up.text);
    let sent = |n: usize| {
        for i in 0..n {
            server.handle.broadcast("b", &json!(i), &[]).expect("send");
        }
    };
    sent(1);
    let before = scrape_until(server.addr, "one published", |s| {
        s.value("shardcast_redis_published_total") == 1.0
    })
    .await;
    assert_eq!(before.value("shardcast_redis_publish_queue_depth"), 0.0);

    redis.kill();
    let down = scrape_until(server.addr, "subscriber link down", |s| {
        link_up(s, "subscriber") == 0.0
    })
    .await;
    check_with_parsers(&down.text);
    sent(QUEUE + 2);
    // The publisher may hold one message in flight besides the full queue.
    let held = scrape(server.addr).await;
    let depth = held.value("shardcast_redis_publish_queue_depth");
    let dropped = held.value("shardcast_redis_publish_dropped_total");
    assert_eq!(
        held.value("shardcast_redis_published_total"),
        1.0,
        "nothing reached Redis"
    );
    assert!(depth >= QUEUE as f64 && dropped >= 1.0, "{}", held.text);
    assert_eq!(depth + dropped, (QUEUE + 2) as f64, "{}", held.text);
    assert!(held.value("shardcast_redis_publish_queue_bytes") > 0.0);
    assert_eq!(held.value("shardcast_redis_queued_total"), 1.0 + depth);

    redis.restart();
    let back = scrape_until(server.addr, "queue sent after restart", |s| {
        both_up(s) && s.value("shardcast_redis_published_total") == 1.0 + depth
    })
    .await;
    assert_eq!(back.value("shardcast_redis_publish_queue_depth"), 0.0);
    assert!(back.sum("shardcast_redis_reconnects_total", &["link=\"subscriber\""]) >= 1.0);
    check_with_parsers(&back.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_envelopes_and_unanswered_probes_are_counted() {
    let redis = RedisServer::start();
    let server = node(&redis);
    scrape_until(server.addr, "both links up", both_up).await;
    publish_raw(&redis.url(), "ws:broadcast", b"not an envelope")
        .await
        .expect("publish");
    scrape_until(server.addr, "one malformed", |s| {
        s.value("shardcast_redis_malformed_total") == 1.0
    })
    .await;
    // Probes every 300 ms, answered within 300 ms: a 1.5 s pause leaves one unanswered.
    redis.pause(1500);
    let after = scrape_until(server.addr, "a probe timeout and a reconnect", |s| {
        s.value("shardcast_redis_probe_timeouts_total") >= 1.0
            && s.sum("shardcast_redis_reconnects_total", &["link=\"subscriber\""]) >= 1.0
    })
    .await;
    check_with_parsers(&after.text);
    scrape_until(server.addr, "links up after the pause", both_up).await;
}

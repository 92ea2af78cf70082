//! Plain members' delivery rate with and without encrypted members in the same room,
//! through a real engine and real sockets over loopback.
//!
//! Each iteration publishes a burst to a room of 200 plain clients plus E encrypted
//! clients (E = 0, 50, 200) and waits until every plain client has read the whole burst.
//! Encryption runs on the shard's bounded encrypted path, after the plain members' frames
//! were queued and flushed, so the plain rate should not move with E.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use futures_util::{SinkExt, StreamExt};
use shardcast::crypto::ClientKeyPair;
use shardcast::hooks::DevAuthenticator;
use tokio_tungstenite::tungstenite::Message;

const PLAIN: usize = 200;
const BURST: u64 = 50;

/// Connects a client that authenticates (optionally with a public key) and counts the
/// messages it reads after `connected`.
async fn client(url: String, token: String, encrypted: bool, counter: Arc<AtomicU64>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    let mut data = serde_json::json!({ "token": token });
    if encrypted {
        data["publicKey"] = ClientKeyPair::generate().public_key_b64().into();
    }
    let hello = serde_json::json!({ "event": "authenticate", "data": data });
    ws.send(Message::text(hello.to_string()))
        .await
        .expect("send");
    let _connected = ws.next().await;
    while let Some(Ok(message)) = ws.next().await {
        if message.is_text() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn plain_rate_with_encrypted_members(c: &mut Criterion) {
    let mut group = c.benchmark_group("room_plain_rate");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    for encrypted in [0usize, 50, 200] {
        let engine = shardcast::Engine::builder()
            .configure(|cfg| {
                cfg.listen = "127.0.0.1:0".parse().expect("addr");
                cfg.shards = 1;
                // Plain and encrypted members in one room: encryption is offered, not required.
                cfg.optional_encryption = true;
            })
            .authenticator(DevAuthenticator)
            .start()
            .expect("engine");
        let url = format!(
            "ws://{}/ws",
            engine.local_addr().expect("the engine listens")
        );
        let plain_count = Arc::new(AtomicU64::new(0));
        let secure_count = Arc::new(AtomicU64::new(0));
        // Plain and encrypted readers on runtimes (threads) of their own, so reading the
        // encrypted members' frames never slows the plain readers being measured.
        let runtime = || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("client runtime")
        };
        let (plain_clients, secure_clients) = (runtime(), runtime());
        for i in 0..PLAIN {
            plain_clients.spawn(client(
                url.clone(),
                format!("p{i}"),
                false,
                plain_count.clone(),
            ));
        }
        for i in 0..encrypted {
            secure_clients.spawn(client(
                url.clone(),
                format!("e{i}"),
                true,
                secure_count.clone(),
            ));
        }
        let handle = engine.handle();
        let deadline = Instant::now() + Duration::from_secs(20);
        while (handle.stats().authenticated as usize) < PLAIN + encrypted {
            assert!(Instant::now() < deadline, "clients did not connect");
            std::thread::sleep(Duration::from_millis(10));
        }
        group.throughput(Throughput::Elements(BURST * PLAIN as u64));
        group.bench_with_input(
            BenchmarkId::new("encrypted_members", encrypted),
            &encrypted,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let target = plain_count.load(Ordering::Relaxed) + BURST * PLAIN as u64;
                        let started = Instant::now();
                        for n in 0..BURST {
                            handle
                                .send_to_room("ws-default", "tick", &n, &[])
                                .expect("send");
                        }
                        // Poll with sleeps: a spinning thread would take a core from the
                        // server or the readers on a small machine.
                        while plain_count.load(Ordering::Relaxed) < target {
                            std::thread::sleep(Duration::from_micros(100));
                        }
                        total += started.elapsed();
                    }
                    total
                })
            },
        );
        engine.shutdown();
        plain_clients.shutdown_timeout(Duration::from_secs(1));
        secure_clients.shutdown_timeout(Duration::from_secs(1));
    }
    group.finish();
}

/// Private so the `pub fn` that `criterion_group!` generates needs no doc.
mod group {
    criterion::criterion_group!(benches, super::plain_rate_with_encrypted_members);
}
criterion_main!(group::benches);

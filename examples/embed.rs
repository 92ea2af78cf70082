//! Embedding shardcast in an application: a live "dashboard feed" that authenticates
//! viewers with its own rule, lets them join the `metrics` room, and pushes a sample to
//! that room every 500 ms from an ordinary thread.
//!
//! ```sh
//! cargo run --example embed            # serves ws://127.0.0.1:8090/ws for 60 s
//! # in a browser console:
//! #   ws = new WebSocket('ws://127.0.0.1:8090/ws')
//! #   ws.onmessage = e => console.log(e.data)
//! #   ws.send(JSON.stringify({event:'authenticate', data:{token:'viewer-ann'}}))
//! #   ws.send(JSON.stringify({event:'join', data:{rooms:['metrics']}}))
//! ```

use std::time::{Duration, Instant};

use shardcast::Engine;
use shardcast::hooks::Identity;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let engine = Engine::builder()
        .configure(|c| {
            c.listen = "127.0.0.1:8090".parse().expect("valid address");
            c.default_rooms = vec![];
        })
        // The application's own rule: tokens `viewer-<name>` are viewers named <name>.
        .authenticate(|request| async move {
            let viewer = request
                .token()
                .and_then(|t| t.strip_prefix("viewer-").map(str::to_owned));
            Ok(viewer.map(|name| Identity {
                user_id: Some(name),
                metadata: Default::default(),
            }))
        })
        // Viewers may watch `metrics` and nothing else.
        .validate_rooms(|request| async move {
            request
                .rooms
                .into_iter()
                .filter(|r| r == "metrics")
                .collect()
        })
        .on_connect(|_handle, client| async move {
            println!(
                "viewer {:?} connected as {}",
                client.user_id, client.client_id
            );
        })
        .start()?;
    let addr = engine
        .local_addr()
        .expect("the engine has its own listener");
    println!("dashboard feed on ws://{addr}/ws");

    // Any thread can push through the handle: it encodes once and never blocks on I/O.
    let handle = engine.handle();
    let started = Instant::now();
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let stats = handle.stats();
        let sample = serde_json::json!({
            "tick": tick,
            "uptime_ms": started.elapsed().as_millis() as u64,
            "viewers": stats.authenticated,
            "deliveries": stats.deliveries,
        });
        handle.send_to_room("metrics", "sample", &sample, &[])?;
        tick += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    engine.shutdown();
    Ok(())
}

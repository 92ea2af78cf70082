//! The memory a room's history takes on a single node: fills ROOMS history rooms with
//! SIZE messages each (data of about BYTES bytes) through the handle, and prints the
//! resident memory it added, per room and per kept message, as one JSON line. Run by
//! `loadtest/history.sh` for PERF.md.
//!
//! ```text
//! cargo run --release --example history_memory -- 2000 100 200
//! ```

use std::time::Duration;

use shardcast::Engine;
use shardcast::hooks::Identity;

/// The allocator the standalone server uses, so the figures compare with its own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident bytes of this process (`/proc/self/statm`).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: history_memory <ROOMS> <SIZE> <BYTES>";
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{usage}: {e}"))?;
    let [rooms, size, bytes] = args.as_slice() else {
        return Err(usage.into());
    };
    let engine = Engine::builder()
        .without_listener()
        .configure(|c| {
            c.shards = 1;
            c.history_rooms = vec!["room-*".into()];
            c.history_size = *size;
            c.history_max_bytes = usize::MAX;
        })
        .authenticate(|_| async { Ok(Some(Identity::default())) })
        .start()?;
    let handle = engine.handle();
    let text = "x".repeat(*bytes);
    let message = serde_json::json!({ "text": text });
    // Warm up the allocator and the engine with one room, then measure the rest.
    handle.send_to_room("room-warm", "m", &message, &[])?;
    std::thread::sleep(Duration::from_millis(200));
    let before = rss();
    for room in 0..*rooms {
        let room = format!("room-{room}");
        for _ in 0..*size {
            handle.send_to_room(&room, "m", &message, &[])?;
        }
        // Let the shard drain its inbox (no member: each delivery is a lookup).
        if room.ends_with("00") {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let added = rss().saturating_sub(before);
    let frame_len = shardcast::protocol::Frame::from_serialize("m", &message)?
        .with_position("room-0", 1, "0123456789abcdef")
        .len();
    println!(
        "{}",
        serde_json::json!({
            "rooms": rooms, "size": size, "data_bytes": bytes, "frame_bytes": frame_len,
            "rss_added_bytes": added,
            "bytes_per_room": added as f64 / *rooms as f64,
            "bytes_per_message": added as f64 / (*rooms * *size) as f64,
        })
    );
    engine.shutdown();
    Ok(())
}

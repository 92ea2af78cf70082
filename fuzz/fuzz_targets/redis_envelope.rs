//! A Redis envelope through `Envelope::parse` (simd-json, in place), and arbitrary JSON
//! text through `compact_json`.
//!
//! Invariants: no panic; an envelope that parses encodes to JSON that parses back to an
//! equal envelope (what a node publishes, every node reads); `compact_json` output is
//! JSON (serde_json agrees) and compacting it again changes nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardcast::protocol::envelope::{Envelope, compact_json};

fn round_trip(data: &[u8]) {
    let Ok(env) = Envelope::parse(&mut data.to_vec()) else {
        return;
    };
    let encoded = env.encode();
    assert!(
        serde_json::from_slice::<serde_json::Value>(&encoded).is_ok(),
        "encode() is not JSON: {}",
        String::from_utf8_lossy(&encoded)
    );
    let again = Envelope::parse(&mut encoded.clone()).unwrap_or_else(|e| {
        panic!(
            "encode() does not parse again ({e}): {}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(again, env, "round trip changed the envelope");
}

fn compact(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(compacted) = compact_json(text) else {
        return;
    };
    assert!(
        serde_json::from_str::<serde_json::Value>(&compacted).is_ok(),
        "compact_json output is not JSON: {compacted}"
    );
    let twice = compact_json(&compacted).unwrap_or_else(|e| {
        panic!("compact_json output does not compact again ({e}): {compacted}")
    });
    assert_eq!(twice, compacted, "compact_json is not idempotent");
}

fuzz_target!(|data: &[u8]| {
    round_trip(data);
    compact(data);
});

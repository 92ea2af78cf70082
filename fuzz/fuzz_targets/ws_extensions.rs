//! `negotiate_deflate` over arbitrary `Sec-WebSocket-Extensions` header values.
//!
//! Input layout: the bytes as text (lossy UTF-8), one header value per line.
//! Invariants: no panic; an agreement is an offer this server can keep (a window of
//! 8..=15 bits when one was asked); the answer it writes, offered back, is accepted and
//! gives the same agreement; the answer always removes both contexts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardcast::internals::ws::negotiate_deflate;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Some(agreed) = negotiate_deflate(text.split('\n')) else {
        return;
    };
    if let Some(bits) = agreed.server_max_window_bits {
        assert!((8..=15).contains(&bits), "window of {bits} bits agreed");
    }
    let answer = agreed.response();
    assert!(
        answer.starts_with(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        )
    );
    assert_eq!(
        negotiate_deflate([answer.as_str()]),
        Some(agreed),
        "{answer}"
    );
});

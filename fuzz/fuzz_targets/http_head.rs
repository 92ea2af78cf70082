//! The HTTP/1.1 request head parser over arbitrary bytes.
//!
//! Kept a thin call so it can be repointed at the strict parser's entry point when that
//! lands: `parse` below is the one line to change.
//! Invariants: no panic; a complete head never claims more bytes than it was given; a
//! head is a pure function of its bytes (parsing it again, alone, gives the same head);
//! the header helpers never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardcast::internals::http::{RequestError, RequestHead, parse_head};

/// The parser under test.
fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, RequestError> {
    parse_head(buf)
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some((head, used))) = parse(data) else {
        return;
    };
    assert!(
        used <= data.len(),
        "head claims {used} of {} bytes",
        data.len()
    );
    let (again, used_again) = parse(&data[..used])
        .expect("the head alone parses again")
        .expect("the head alone is complete");
    assert_eq!(used_again, used);
    assert_eq!(format!("{again:?}"), format!("{head:?}"));
    let _ = (head.is_websocket_upgrade(), head.keep_alive());
    let _ = head.header("content-length").map(str::trim);
});

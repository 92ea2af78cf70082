//! Room-name rules and the glob allow-list over arbitrary patterns, rooms and user ids.
//!
//! Input: `patterns \0 room \0 user` (patterns separated by `\n`; no second `\0` means no
//! user id), each part decoded lossily as UTF-8.
//! Invariants: no panic; `is_valid_room_name` is the documented rule; `RoomPolicy::allows`
//! agrees with a quadratic dynamic-programming matcher written from the module's contract
//! (so it is right, and libFuzzer's `-timeout` catches anything slower than linear-ish
//! backtracking on long inputs).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardcast::rooms::glob::RoomPolicy;
use shardcast::rooms::is_valid_room_name;

/// Largest pattern × room (in chars) checked against the reference matcher.
const REFERENCE_CELLS: usize = 1 << 16;

#[derive(Clone, Copy, PartialEq)]
enum Elem {
    Star,
    One,
    Lit(char),
}

/// The pattern as the contract reads it, `{userId}` replaced by `user`'s characters.
fn expand(pattern: &str, user: &str) -> Vec<Elem> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{userId}") {
            out.extend(user.chars().map(Elem::Lit));
            rest = after;
            continue;
        }
        out.push(match c {
            '*' => Elem::Star,
            '?' => Elem::One,
            c => Elem::Lit(c),
        });
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Textbook glob DP: `row[j]` is whether the pattern so far matches `room[..j]`.
fn reference(pattern: &[Elem], room: &[char]) -> bool {
    let mut row = vec![false; room.len() + 1];
    row[0] = true;
    for elem in pattern {
        let mut next = vec![false; room.len() + 1];
        for j in 0..=room.len() {
            next[j] = match elem {
                Elem::Star => row[j] || (j > 0 && next[j - 1]),
                Elem::One => j > 0 && row[j - 1],
                Elem::Lit(c) => j > 0 && row[j - 1] && room[j - 1] == *c,
            };
        }
        row = next;
    }
    row[room.len()]
}

fn check_name(room: &str) {
    let expected = !room.is_empty()
        && !room.starts_with("ws:")
        && room.encode_utf16().count() <= shardcast::rooms::MAX_ROOM_NAME;
    assert_eq!(is_valid_room_name(room), expected, "{room:?}");
}

fn check_policy(patterns: &[&str], room: &str, user: Option<&str>) {
    let Ok(policy) = RoomPolicy::new(patterns) else {
        return;
    };
    let allowed = policy.allows(room, user);
    let room_chars: Vec<char> = room.chars().collect();
    let user = user.unwrap_or("");
    let mut expected = false;
    for pattern in patterns {
        let elems = expand(pattern, user);
        if elems.len().saturating_mul(room_chars.len() + 1) > REFERENCE_CELLS {
            return;
        }
        let needs_user = pattern.contains("{userId}");
        expected |= !(needs_user && user.is_empty()) && reference(&elems, &room_chars);
    }
    assert_eq!(allowed, expected, "{patterns:?} / {room:?} / {user:?}");
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let patterns = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let room = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let user = parts.next().map(String::from_utf8_lossy);
    let patterns: Vec<&str> = patterns.split('\n').collect();
    check_name(&room);
    check_policy(&patterns, &room, user.as_deref());
});

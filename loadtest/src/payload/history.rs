//! The realistic body of `--payload json`: a chat room's history update as a chat app's
//! WebSocket would push it (the room, a page cursor, the latest messages with their
//! author, text, time, edit flag and reactions), sized to a byte budget.
//!
//! Why it exists: permessage-deflate on a run of one repeated character compresses 100×
//! or more and says nothing about real traffic. This object compresses like real JSON
//! (about 2.4× at 1 KB with a fresh DEFLATE context per message, as shardcast and Bun
//! use; real JSON of that size ranges from 2× to 6×): repeated keys and authors, the
//! text twice as chat APIs send it, English-like words from a small vocabulary, ids and
//! times that run on, counts that vary.
//!
//! Every value is derived from the sequence number and the send time (no state, no
//! allocation beyond `out`), so consecutive messages differ like real updates. Numbers
//! are integers and strings need no escaping, so a server that parses and re-serializes
//! the data (the Ignis helper, with `JSON.stringify`) delivers the same bytes as one
//! that forwards it untouched.

use std::io::Write as _;

/// Authors: id, display name.
const USERS: [(&str, &str); 8] = [
    ("u1842", "Maria Chen"),
    ("u2071", "Tomasz Nowak"),
    ("u0413", "Aisha Bello"),
    ("u3390", "Kenji Watanabe"),
    ("u1177", "Lucas Oliveira"),
    ("u2958", "Priya Raman"),
    ("u0806", "Jonas Berg"),
    ("u3621", "Sofia Rossi"),
];
const ROOMS: [&str; 6] = [
    "public-eng-platform",
    "public-release-train",
    "public-oncall",
    "public-design-review",
    "public-support-emea",
    "public-random",
];
/// The rooms' channel ids, as [`ROOMS`].
const CHANNELS: [&str; 6] = [
    "C024BE91L",
    "C02AX7Q3M",
    "C03K1ZP8R",
    "C04HD2W6T",
    "C05NB8E1V",
    "C06QF4J9X",
];
const EMOJI: [&str; 6] = [
    "thumbsup",
    "eyes",
    "rocket",
    "tada",
    "white_check_mark",
    "pray",
];
const WORDS: [&str; 48] = [
    "the",
    "deploy",
    "of",
    "payments",
    "is",
    "done",
    "and",
    "we",
    "are",
    "watching",
    "error",
    "rate",
    "on",
    "canary",
    "can",
    "someone",
    "review",
    "my",
    "pull",
    "request",
    "for",
    "new",
    "retry",
    "logic",
    "looks",
    "good",
    "to",
    "me",
    "merging",
    "after",
    "tests",
    "pass",
    "latency",
    "dashboard",
    "shows",
    "a",
    "spike",
    "in",
    "region",
    "rolling",
    "back",
    "now",
    "thanks",
    "will",
    "check",
    "tomorrow",
    "morning",
    "standup",
];

/// splitmix64: a few cycles per value, deterministic per sequence number.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Room kept by the first members for the topic that fills the object when no message
/// fits: `,"topic":""`.
const TOPIC_MIN: usize = 11;

/// Appends one JSON object of `budget` bytes (one less when the last byte cannot be
/// filled; `budget` at least 12; below that at most `budget`, and `{}` at least);
/// `seq` and `t_us` (the send time) seed its values.
pub fn write(seq: u64, t_us: u64, budget: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let mut w = Builder {
        out,
        start,
        budget: budget.max(2),
        rng: Rng(seq.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed),
        first: true,
    };
    let room = ROOMS[(seq % ROOMS.len() as u64) as usize];
    w.out.push(b'{');
    w.member(|o, _| {
        let _ = write!(o, r#""type":"room.history","room":"{room}""#);
    });
    w.member(|o, r| {
        let more = r.below(4) != 0;
        let _ = write!(o, r#""cursor":"c{}","hasMore":{more}"#, 4_000_000 + seq);
    });
    let page = Page {
        first_id: 9_000_000_000 + seq * 8,
        sent_ms: t_us / 1000,
        channel: CHANNELS[(seq % ROOMS.len() as u64) as usize],
    };
    if !w.messages(&page) {
        w.fill_topic();
    }
    w.out.push(b'}');
}

/// Builds the object: members are written in place and taken back when they would not fit.
struct Builder<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    budget: usize,
    rng: Rng,
    first: bool,
}

impl Builder<'_> {
    /// Room left before the closing `}`.
    fn room(&self) -> usize {
        (self.budget - 1).saturating_sub(self.out.len() - self.start)
    }

    /// Writes `,member` (no comma first); takes it back when it overflows or leaves no
    /// room for the topic that may have to fill the object.
    fn member(&mut self, f: impl FnOnce(&mut Vec<u8>, &mut Rng)) -> bool {
        let mark = self.out.len();
        let room = self.room().saturating_sub(TOPIC_MIN);
        if !self.first {
            self.out.push(b',');
        }
        f(self.out, &mut self.rng);
        if self.out.len() - mark > room {
            self.out.truncate(mark);
            return false;
        }
        self.first = false;
        true
    }

    /// `"messages":[…]`: as many messages as fit, their texts then lengthened evenly to
    /// fill what is left. False when not even one fits (nothing written).
    fn messages(&mut self, page: &Page) -> bool {
        let (mark, was_first) = (self.out.len(), self.first);
        if !self.member(|o, _| o.extend_from_slice(br#""messages":["#)) {
            return false;
        }
        let first_at = self.out.len();
        let mut fitted: Vec<(Rng, usize)> = Vec::new();
        loop {
            let (at, saved) = (self.out.len(), self.rng.clone());
            let room = self.room().saturating_sub(1); // the closing `]`
            let k = fitted.len() as u64;
            if k > 0 {
                self.out.push(b',');
            }
            let text = message(self.out, &mut self.rng, page, k, None);
            if self.out.len() - at > room {
                self.out.truncate(at);
                self.rng = saved;
                break;
            }
            fitted.push((saved, text));
        }
        if fitted.is_empty() {
            self.out.truncate(mark);
            self.first = was_first;
            return false;
        }
        // Each byte more of text is written twice (plain and in the blocks).
        let extra = self.room().saturating_sub(1) / 2;
        let n = fitted.len();
        self.out.truncate(first_at);
        for (k, (saved, text)) in fitted.into_iter().enumerate() {
            if k > 0 {
                self.out.push(b',');
            }
            let len = text + extra / n + usize::from(k < extra % n);
            message(self.out, &mut saved.clone(), page, k as u64, Some(len));
        }
        self.out.push(b']');
        true
    }

    /// `"topic":"…"` of words filling the budget exactly, when no message fits but at
    /// least the empty member does.
    fn fill_topic(&mut self) {
        let empty = br#""topic":"""#.len() + usize::from(!self.first);
        let Some(left) = self.room().checked_sub(empty) else {
            return;
        };
        if !self.first {
            self.out.push(b',');
        }
        self.out.extend_from_slice(br#""topic":""#);
        words(self.out, &mut self.rng, left);
        self.out.push(b'"');
        self.first = false;
    }
}

/// Exactly `len` bytes of words separated by blanks (the last word cut to fit; a last
/// single byte is a full stop).
fn words(o: &mut Vec<u8>, r: &mut Rng, mut len: usize) {
    let mut first = true;
    while len > 0 {
        if !first {
            if len == 1 {
                o.push(b'.');
                return;
            }
            o.push(b' ');
            len -= 1;
        }
        let word = r.pick(&WORDS).as_bytes();
        let take = word.len().min(len);
        o.extend_from_slice(&word[..take]);
        len -= take;
        first = false;
    }
}

/// What the messages of one update share.
struct Page {
    first_id: u64,
    sent_ms: u64,
    channel: &'static str,
}

/// Message `k` of an update (newest first): ids and times run on, as a room's do. As in
/// Slack's or Mattermost's API, the text comes twice: plain, and as rich-text blocks.
/// `text_len`: the text's exact length (default: 3 to 9 words). Returns its length. The
/// text draws from a generator of its own, so its length leaves every other value as it
/// was.
fn message(o: &mut Vec<u8>, r: &mut Rng, p: &Page, k: u64, text_len: Option<usize>) -> usize {
    let mut tr = Rng(r.next());
    let (user, name) = USERS[r.below(USERS.len() as u64) as usize];
    let _ = write!(
        o,
        r#"{{"id":"m{}","type":"message","channel":"{}","user":"{user}","name":"{name}","text":""#,
        p.first_id - k,
        p.channel,
    );
    let text_at = o.len();
    match text_len {
        Some(len) => words(o, &mut tr, len),
        None => {
            for i in 0..3 + tr.below(7) {
                if i > 0 {
                    o.push(b' ');
                }
                o.extend_from_slice(tr.pick(&WORDS).as_bytes());
            }
        }
    }
    let text = text_at..o.len();
    let len = text.len();
    o.extend_from_slice(br#"","blocks":[{"type":"rich_text","elements":[{"type":"text","text":""#);
    o.extend_from_within(text);
    let edited = r.below(5) == 0;
    let sent = p.sent_ms.saturating_sub(k * 45_000 + r.below(30_000));
    let _ = write!(
        o,
        r#""}}]}}],"sentAt":{sent},"edited":{edited},"reactions":["#
    );
    for i in 0..r.below(3) {
        if i > 0 {
            o.push(b',');
        }
        let _ = write!(
            o,
            r#"{{"emoji":"{}","count":{}}}"#,
            r.pick(&EMOJI),
            1 + r.below(3)
        );
    }
    o.extend_from_slice(b"]}");
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    fn body(seq: u64, budget: usize) -> Vec<u8> {
        let mut v = Vec::new();
        write(seq, 1_764_608_053_123_456, budget, &mut v);
        v
    }

    fn deflated_len(msg: &[u8]) -> usize {
        let mut z = Compress::new(Compression::new(6), false);
        let mut out = Vec::with_capacity(msg.len() * 2 + 64);
        z.compress_vec(msg, &mut out, FlushCompress::Sync).unwrap();
        out.len() - 4
    }

    #[test]
    fn bodies_are_valid_json_of_exactly_the_budget() {
        for budget in [2, 3, 11, 12, 20, 60, 100, 150, 400, 1000, 1024, 4096] {
            for seq in [0, 1, 7, 99_999, 1 << 40] {
                let b = body(seq, budget);
                let text = String::from_utf8_lossy(&b);
                let v: serde_json::Value = serde_json::from_slice(&b)
                    .unwrap_or_else(|e| panic!("{budget}/{seq}: {e}: {text}"));
                assert!(v.is_object());
                if budget >= 12 {
                    assert!(
                        b.len() == budget || b.len() + 1 == budget,
                        "{budget}: {text}"
                    );
                } else {
                    assert!(b.len() <= budget.max(2), "{text}");
                }
            }
        }
    }

    #[test]
    fn bodies_vary_and_read_back_as_javascript_would_write_them() {
        assert_ne!(body(1, 1000), body(2, 1000));
        assert_eq!(body(5, 1000), body(5, 1000));
        for seq in 0..200 {
            let b = body(seq, 1000);
            // serde_json writes these integers, booleans and strings as JSON.stringify does.
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert_eq!(serde_json::to_vec(&v).unwrap(), b, "seq {seq}");
            assert!(v["messages"].as_array().is_some_and(|m| m.len() >= 2));
        }
    }

    #[test]
    fn one_kilobyte_compresses_like_real_json() {
        let total: usize = (0..100).map(|s| body(s, 1000).len()).sum();
        let packed: usize = (0..100).map(|s| deflated_len(&body(s, 1000))).sum();
        let ratio = total as f64 / packed as f64;
        println!("1 KB bodies deflate {ratio:.2}x");
        assert!((2.2..=3.0).contains(&ratio), "ratio {ratio:.2}");
    }

    #[test]
    fn the_stamp_keys_never_appear_in_a_body() {
        for seq in 0..100 {
            let b = body(seq, 1000);
            for key in [
                &b"\"t\":"[..],
                b"\"s\":",
                b"bench-warmup",
                br#""event":"error""#,
            ] {
                assert!(memchr::memmem::find(&b, key).is_none());
            }
        }
    }
}

//! The bench payload: what publishers and chat clients stamp, and what readers scan.
//!
//! A bench message's `data` is `{"t":<µs since the Unix epoch>,"s":<sequence>,"p":…}`,
//! where `p` fills the message to the size asked for: a string of `x` (`--payload pad`,
//! the default), or a realistic JSON object ([`history`], `--payload json`) for runs where
//! the bytes themselves matter, e.g. compression.
//! Readers never parse JSON on the hot path: [`scan`] finds `"t":` with a prebuilt
//! `memmem` finder and reads the digits, then expects `"s":` right after (falling back to
//! a second search). `t` uses the wall clock, so stamper and reader must share one host.

pub mod history;

use clap::ValueEnum;
use memchr::memmem::Finder;
use serde::Serialize;
use std::io::Write as _;
use std::sync::LazyLock;

/// Event name of measured messages.
pub const BENCH_EVENT: &str = "bench";
/// Event name of warm-up messages (they prove room membership before measuring).
pub const WARMUP_EVENT: &str = "bench-warmup";

static T_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"t\":"));
static S_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"s\":"));
static WARMUP_KEY: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(WARMUP_EVENT.as_bytes()));
static ERROR_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""event":"error""#));

/// Timestamp and sequence number found in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Send time, µs since the Unix epoch.
    pub t: u64,
    /// Sequence number (per room for fan-out, per client for chat).
    pub s: u64,
}

/// Finds the bench stamp in a message, or `None` if it carries none.
pub fn scan(msg: &[u8]) -> Option<Stamp> {
    let at = T_KEY.find(msg)? + 4;
    let (t, used) = parse_u64(&msg[at..])?;
    let rest = &msg[at + used..];
    let s_at = if rest.starts_with(b",\"s\":") {
        5
    } else {
        S_KEY.find(rest)? + 4
    };
    let (s, _) = parse_u64(&rest[s_at..])?;
    Some(Stamp { t, s })
}

/// Whether a message is a warm-up message.
pub fn is_warmup(msg: &[u8]) -> bool {
    WARMUP_KEY.find(msg).is_some()
}

/// Whether a message is the server's `error` event (`{"event":"error",…}`).
pub fn is_error_event(msg: &[u8]) -> bool {
    ERROR_KEY.find(msg).is_some()
}

/// Parses leading ASCII digits (after optional spaces); returns the value and bytes used.
fn parse_u64(b: &[u8]) -> Option<(u64, usize)> {
    let skip = b.iter().take_while(|&&c| c == b' ').count();
    let mut v: u64 = 0;
    let mut n = 0;
    for &c in &b[skip..] {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        n += 1;
    }
    (n > 0).then_some((v, skip + n))
}

/// What fills a bench message up to its size (`--payload`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// `"p":"xxx…"`: one repeated character (cheapest to build; compresses absurdly well).
    #[default]
    Pad,
    /// `"p":{…}`: a realistic chat-history update (a room's latest messages with their
    /// authors, texts, times and reactions; values vary per message), which compresses
    /// like real JSON. `--payload json --frame-bytes 1024` is the ~1 KB message of the
    /// compression comparison.
    Json,
}

/// Builds bench `data` objects filled so the server's frame has a chosen size.
#[derive(Debug, Clone)]
pub struct PayloadShape {
    fill: Fill,
}

#[derive(Debug, Clone)]
enum Fill {
    /// The `x` padding, built once.
    Pad(String),
    /// A [`history`] object of this many bytes, built per message.
    Json(usize),
}

/// Digits assumed for the sequence number when sizing the padding.
const TYPICAL_SEQ_DIGITS: usize = 5;
/// Digits of a µs timestamp (until the year 2286).
const T_DIGITS: usize = 16;

impl PayloadShape {
    /// Padding chosen so that the frame `{"event":"<event>","data":<data>}` plus its
    /// WebSocket header (server side, unmasked) is about `frame_bytes` long; a client frame
    /// carrying the same JSON is 4 bytes (mask key) longer.
    pub fn for_frame(event: &str, frame_bytes: usize) -> Self {
        Self::new(PayloadKind::Pad, event, frame_bytes)
    }

    /// As [`for_frame`](Self::for_frame), filled with `kind`. A JSON fill takes the place
    /// of the padding string and its quotes (possibly one byte shorter); below 12 bytes of
    /// room it is `{}`.
    pub fn new(kind: PayloadKind, event: &str, frame_bytes: usize) -> Self {
        let bare = data_len(T_DIGITS, TYPICAL_SEQ_DIGITS, 0);
        let fixed = envelope_len(event, bare);
        let pad = frame_bytes.saturating_sub(fixed);
        // A header grows by 2 bytes at 126: recompute once so the target stays close.
        let pad = if envelope_len(event, bare + pad) > frame_bytes {
            pad.saturating_sub(2)
        } else {
            pad
        };
        let fill = match kind {
            PayloadKind::Pad => Fill::Pad("x".repeat(pad)),
            PayloadKind::Json => Fill::Json(pad + 2),
        };
        PayloadShape { fill }
    }

    /// Appends `{"t":t,"s":s,"p":…}` to `out`.
    pub fn write_data(&self, t: u64, s: u64, out: &mut Vec<u8>) {
        let _ = write!(out, "{{\"t\":{t},\"s\":{s},\"p\":");
        match &self.fill {
            Fill::Pad(pad) => {
                out.push(b'"');
                out.extend_from_slice(pad.as_bytes());
                out.push(b'"');
            }
            Fill::Json(len) => history::write(s, t, *len, out),
        }
        out.push(b'}');
    }

    fn fill_len(&self) -> usize {
        match &self.fill {
            Fill::Pad(pad) => pad.len() + 2,
            Fill::Json(len) => *len,
        }
    }

    /// The `data` object as a string.
    pub fn data(&self, t: u64, s: u64) -> String {
        let mut v = Vec::with_capacity(self.fill_len() + 48);
        self.write_data(t, s, &mut v);
        String::from_utf8(v).unwrap_or_default()
    }
}

/// Length of `{"t":…,"s":…,"p":"<pad>"}`.
fn data_len(t_digits: usize, s_digits: usize, pad: usize) -> usize {
    r#"{"t":,"s":,"p":""}"#.len() + t_digits + s_digits + pad
}

/// Length of the server frame carrying `{"event":"<event>","data":<data>}`.
pub fn envelope_len(event: &str, data_len: usize) -> usize {
    let json = r#"{"event":"","data":}"#.len() + event.len() + data_len;
    json + if json < 126 {
        2
    } else if json < 65536 {
        4
    } else {
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_stamp_from_server_frame() {
        let msg = br#"{"event":"bench","data":{"t":1732236060123456,"s":42,"p":"xxxx"}}"#;
        assert_eq!(
            scan(msg),
            Some(Stamp {
                t: 1732236060123456,
                s: 42
            })
        );
    }

    #[test]
    fn scans_stamp_in_other_layouts() {
        let spaced = br#"{"event": "bench", "data": {"t": 17, "p": "x", "s": 3}}"#;
        assert_eq!(scan(spaced), Some(Stamp { t: 17, s: 3 }));
        let inbound = br#"{"serverId":"a","clientId":"b","userId":"load-1","event":"chat","data":{"t":5,"s":6,"p":""}}"#;
        assert_eq!(scan(inbound), Some(Stamp { t: 5, s: 6 }));
    }

    #[test]
    fn no_stamp_in_other_messages() {
        assert_eq!(
            scan(br#"{"event":"connected","data":{"id":"x","time":"2024"}}"#),
            None
        );
        assert_eq!(scan(br#"{"event":"bench","data":{"t":"str","s":1}}"#), None);
        assert_eq!(scan(br#"{"event":"bench","data":{"t":1}}"#), None);
        assert_eq!(
            scan(br#"{"t":99999999999999999999999,"s":1}"#),
            None,
            "overflow"
        );
        assert_eq!(scan(b""), None);
    }

    #[test]
    fn warmup_is_recognised() {
        assert!(is_warmup(br#"{"event":"bench-warmup","data":{}}"#));
        assert!(!is_warmup(br#"{"event":"bench","data":{"t":1,"s":2}}"#));
    }

    #[test]
    fn error_events_are_recognised() {
        assert!(is_error_event(
            br#"{"event":"error","data":{"message":"Not authenticated"}}"#
        ));
        assert!(!is_error_event(
            br#"{"event":"bench","data":{"p":"error"}}"#
        ));
    }

    #[test]
    fn built_data_scans_back_and_sizes_the_frame() {
        let shape = PayloadShape::for_frame(BENCH_EVENT, 165);
        let data = shape.data(1732236060123456, 12345);
        let frame = format!(r#"{{"event":"{BENCH_EVENT}","data":{data}}}"#);
        assert_eq!(
            scan(frame.as_bytes()),
            Some(Stamp {
                t: 1732236060123456,
                s: 12345
            })
        );
        assert_eq!(
            frame.len() + 4,
            165,
            "4-byte header since the JSON is over 125 bytes"
        );
        assert_eq!(envelope_len(BENCH_EVENT, data.len()), 165);
    }

    #[test]
    fn json_fill_sizes_the_frame_and_scans_back() {
        for frame_bytes in [165, 1024, 4000] {
            let shape = PayloadShape::new(PayloadKind::Json, BENCH_EVENT, frame_bytes);
            let data = shape.data(1732236060123456, 12345);
            let frame = format!(r#"{{"event":"{BENCH_EVENT}","data":{data}}}"#);
            let v: serde_json::Value = serde_json::from_str(&frame).expect("valid JSON");
            assert!(v["data"]["p"].is_object());
            assert_eq!(
                scan(frame.as_bytes()),
                Some(Stamp {
                    t: 1732236060123456,
                    s: 12345
                })
            );
            // The JSON fill may end one byte short (an odd byte no text can take).
            let len = envelope_len(BENCH_EVENT, data.len());
            assert!(len == frame_bytes || len + 1 == frame_bytes, "{len}");
        }
        let pad = PayloadShape::new(PayloadKind::Pad, BENCH_EVENT, 1024).data(1, 2);
        let json = PayloadShape::new(PayloadKind::Json, BENCH_EVENT, 1024).data(1, 2);
        assert!(pad.len() - json.len() <= 1);
    }

    #[test]
    fn tiny_targets_get_no_padding() {
        let shape = PayloadShape::for_frame(BENCH_EVENT, 10);
        assert_eq!(shape.data(1, 2), r#"{"t":1,"s":2,"p":""}"#);
    }
}

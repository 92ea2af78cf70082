//! permessage-deflate, receive side (RFC 7692 §7.2.2): a compressed message is its
//! frames' payloads joined, with `0x00 0x00 0xff 0xff` appended, raw-inflated.
//!
//! Ownership and memory, chosen by what the server's answer said:
//!
//! - **Context reset per message** (`server_no_context_takeover`, what shardcast and Bun
//!   answer): a connection holds nothing. One inflater per worker thread (`SCRATCH`) is
//!   reset before each message and shared by every connection of the thread.
//! - **Context kept**: a message may copy from earlier ones, so the connection owns its
//!   own [`flate2::Decompress`] (about 40 KiB with its 32 KiB window), made at its first
//!   compressed message and never reset, except after a final block (BFINAL), which ends
//!   the stream.
//!
//! Either way the inflated bytes land in one per-thread output buffer, borrowed only while
//! the caller's callback runs (it must not inflate again from inside). A message that
//! would inflate past the caller's limit is an error, not an allocation.
//!
//! Fan-out memo: a server compresses a room message once (shardcast) or identically for
//! every recipient (Bun), so a worker reads the same compressed bytes many times in a
//! row. Reset per message, the same bytes always inflate to the same message, so each
//! worker remembers its last [`MEMO_ENTRIES`] messages (compressed and inflated, up to
//! [`MEMO_MAX`] bytes each) and hands a repeat the remembered bytes after a byte-for-byte
//! comparison instead of inflating again (~6 µs per 1 KB message on the two-core
//! development VM, about the cost of reading it). Exact, and never used for a kept
//! context, where the same bytes may mean something else.

use flate2::{Decompress, FlushDecompress, Status};
use std::cell::RefCell;
use thiserror::Error;

/// What RFC 7692 strips from the end of every compressed message and the receiver
/// appends back.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output space kept free before each inflate call.
const MIN_ROOM: usize = 4096;
/// Messages remembered per worker thread (see the module docs).
pub const MEMO_ENTRIES: usize = 8;
/// Largest message remembered, compressed or inflated.
pub const MEMO_MAX: usize = 16 * 1024;

/// Why a compressed message could not be inflated; the connection cannot continue.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InflateError {
    /// Not valid DEFLATE data (or it references a window the inflater no longer has:
    /// the server kept context although it promised not to).
    #[error("corrupt compressed message: {0}")]
    Corrupt(String),
    /// The message inflates past the limit (a decompression bomb, or a server bug).
    #[error("compressed message inflates past {0} bytes")]
    TooLarge(usize),
}

/// The inflate window of one connection.
#[derive(Default)]
pub enum Window {
    /// The server resets its context per message: the worker's shared inflater, reset
    /// before each message.
    #[default]
    PerMessage,
    /// The server keeps its context: this connection's own inflater (made at the first
    /// compressed message).
    Kept(Option<Box<Decompress>>),
}

impl Window {
    /// The window a connection needs: its own only when the server keeps context.
    pub fn for_server(keeps_context: bool) -> Window {
        if keeps_context {
            Window::Kept(None)
        } else {
            Window::PerMessage
        }
    }
}

struct Scratch {
    shared: Option<Decompress>,
    out: Vec<u8>,
    memo: Memo,
}

/// The last messages inflated reset per message: compressed → inflated.
#[derive(Default)]
struct Memo {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    next: usize,
}

impl Memo {
    fn find(&self, compressed: &[u8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(c, _)| c.as_slice() == compressed)
            .map(|(_, inflated)| inflated.as_slice())
    }

    fn keep(&mut self, compressed: &[u8], inflated: &[u8]) {
        if compressed.len() > MEMO_MAX || inflated.len() > MEMO_MAX {
            return;
        }
        if self.entries.len() < MEMO_ENTRIES {
            self.entries.push((compressed.to_vec(), inflated.to_vec()));
            return;
        }
        let (c, i) = &mut self.entries[self.next];
        c.clear();
        c.extend_from_slice(compressed);
        i.clear();
        i.extend_from_slice(inflated);
        self.next = (self.next + 1) % MEMO_ENTRIES;
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        shared: None,
        out: Vec::new(),
        memo: Memo::default(),
    });
}

fn raw_inflater() -> Decompress {
    Decompress::new(false)
}

/// Inflates one message (`compressed`: its payload bytes as received, without the tail)
/// and hands the result to `deliver`. At most `limit` inflated bytes.
pub fn inflate<R>(
    window: &mut Window,
    compressed: &[u8],
    limit: usize,
    deliver: impl FnOnce(&[u8]) -> R,
) -> Result<R, InflateError> {
    SCRATCH.with_borrow_mut(|s| {
        let Scratch { shared, out, memo } = s;
        let per_message = matches!(window, Window::PerMessage);
        if per_message && let Some(m) = memo.find(compressed) {
            return Ok(deliver(m));
        }
        let z = match window {
            Window::PerMessage => {
                let z = shared.get_or_insert_with(raw_inflater);
                z.reset(false);
                z
            }
            Window::Kept(own) => &mut **own.get_or_insert_with(|| Box::new(raw_inflater())),
        };
        out.clear();
        let ended = feed(z, compressed, out, limit)? || feed(z, &TAIL, out, limit)?;
        if ended {
            // A final block ends the DEFLATE stream: the next message starts a new one.
            z.reset(false);
        }
        if per_message {
            memo.keep(compressed, out);
        }
        Ok(deliver(out))
    })
}

/// Inflates all of `input` into `out`; `true` when the stream ended (final block).
fn feed(
    z: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, InflateError> {
    loop {
        if out.capacity() - out.len() < MIN_ROOM {
            if out.len() > limit {
                return Err(InflateError::TooLarge(limit));
            }
            out.reserve(out.len().max(MIN_ROOM));
        }
        let (in0, out0) = (z.total_in(), z.total_out());
        let status = z
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|e| InflateError::Corrupt(e.to_string()))?;
        let used = (z.total_in() - in0) as usize;
        input = &input[used..];
        if out.len() > limit {
            return Err(InflateError::TooLarge(limit));
        }
        if status == Status::StreamEnd {
            return Ok(true);
        }
        let room_left = out.len() < out.capacity();
        if input.is_empty() && room_left {
            return Ok(false);
        }
        if used == 0 && z.total_out() == out0 && room_left {
            return Err(InflateError::Corrupt("inflate made no progress".into()));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// A permessage-deflate sender: raw DEFLATE, sync flush, the 4-byte tail stripped;
    /// `keep_context`: no reset between messages.
    pub(crate) struct Sender {
        z: Compress,
        keep_context: bool,
    }

    impl Sender {
        pub(crate) fn new(keep_context: bool) -> Sender {
            Sender {
                z: Compress::new(Compression::new(6), false),
                keep_context,
            }
        }

        pub(crate) fn message(&mut self, msg: &[u8]) -> Vec<u8> {
            if !self.keep_context {
                self.z.reset();
            }
            let mut out = Vec::with_capacity(msg.len() + 64);
            let mut input = msg;
            loop {
                out.reserve(256);
                let before = self.z.total_in();
                self.z
                    .compress_vec(input, &mut out, FlushCompress::Sync)
                    .expect("compress");
                input = &input[(self.z.total_in() - before) as usize..];
                if input.is_empty() && out.len() < out.capacity() {
                    break;
                }
            }
            assert_eq!(
                out[out.len() - 4..],
                TAIL,
                "a sync flush ends with the tail"
            );
            out.truncate(out.len() - 4);
            out
        }
    }

    fn inflated(window: &mut Window, compressed: &[u8]) -> Result<Vec<u8>, InflateError> {
        inflate(window, compressed, 1 << 20, <[u8]>::to_vec)
    }

    fn text(i: usize) -> Vec<u8> {
        format!(
            r#"{{"event":"bench","data":{{"n":{i},"pad":"{}"}}}}"#,
            "abcdefgh".repeat(40)
        )
        .into_bytes()
    }

    #[test]
    fn inflates_messages_reset_per_message_through_the_shared_inflater() {
        let mut tx = Sender::new(false);
        let mut window = Window::for_server(false);
        for i in 0..3 {
            let c = tx.message(&text(i));
            assert!(c.len() < text(i).len() / 3, "compressed {} bytes", c.len());
            assert_eq!(inflated(&mut window, &c).unwrap(), text(i));
        }
        assert!(
            matches!(window, Window::PerMessage),
            "the connection holds nothing"
        );
    }

    #[test]
    fn a_kept_context_needs_the_connections_own_window() {
        let mut tx = Sender::new(true);
        let (first, second) = (tx.message(&text(1)), tx.message(&text(1)));
        assert!(
            second.len() < first.len() / 2,
            "the second copies from the first"
        );
        let mut kept = Window::for_server(true);
        assert_eq!(inflated(&mut kept, &first).unwrap(), text(1));
        assert_eq!(inflated(&mut kept, &second).unwrap(), text(1));
        assert!(matches!(kept, Window::Kept(Some(_))));
        // Reset per message, the back reference points before the window's start.
        let mut reset = Window::PerMessage;
        assert_eq!(inflated(&mut reset, &first).unwrap(), text(1));
        assert!(matches!(
            inflated(&mut reset, &second),
            Err(InflateError::Corrupt(_))
        ));
    }

    #[test]
    fn kept_windows_of_two_connections_stay_apart() {
        let (mut tx_a, mut tx_b) = (Sender::new(true), Sender::new(true));
        let (mut a, mut b) = (Window::for_server(true), Window::for_server(true));
        for i in 0..4 {
            let (ma, mb) = (text(i), text(100 + i));
            assert_eq!(inflated(&mut a, &tx_a.message(&ma)).unwrap(), ma);
            assert_eq!(inflated(&mut b, &tx_b.message(&mb)).unwrap(), mb);
        }
    }

    #[test]
    fn large_messages_grow_the_output_and_the_limit_holds() {
        let big: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let c = Sender::new(false).message(&big);
        assert_eq!(inflated(&mut Window::PerMessage, &c).unwrap(), big);
        let err = inflate(&mut Window::PerMessage, &c, 100_000, |_| ()).unwrap_err();
        assert_eq!(err, InflateError::TooLarge(100_000));
    }

    #[test]
    fn a_final_block_ends_the_stream_and_the_next_message_starts_anew() {
        // "Hello" as one stored final block (BFINAL=1, BTYPE=00): RFC 7692 §7.2.3.3.
        let stored = [0x01, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o'];
        let mut kept = Window::for_server(true);
        assert_eq!(inflated(&mut kept, &stored).unwrap(), b"Hello");
        assert_eq!(inflated(&mut kept, &stored).unwrap(), b"Hello");
    }

    #[test]
    fn repeats_come_from_the_memo_and_stay_exact() {
        let mut tx = Sender::new(false);
        let msgs: Vec<(Vec<u8>, Vec<u8>)> = (0..MEMO_ENTRIES + 3)
            .map(|i| (tx.message(&text(i)), text(i)))
            .collect();
        let mut w = Window::PerMessage;
        // Every message twice in a row, then all of them again (the oldest were
        // replaced): the same bytes every time.
        for (c, plain) in msgs.iter().chain(msgs.iter()) {
            for _ in 0..2 {
                assert_eq!(&inflated(&mut w, c).unwrap(), plain);
            }
        }
        let hit = SCRATCH.with_borrow(|s| s.memo.find(&msgs[MEMO_ENTRIES + 2].0).is_some());
        assert!(hit, "the latest are remembered");
        // Garbage is never remembered as good.
        let bad = [0xff, 0xff, 0xff, 0x00];
        assert!(inflated(&mut w, &bad).is_err());
        assert!(inflated(&mut w, &bad).is_err());
    }

    #[test]
    fn garbage_is_corrupt() {
        let err = inflated(&mut Window::PerMessage, &[0xff, 0xff, 0xff, 0x00]).unwrap_err();
        assert!(matches!(err, InflateError::Corrupt(_)), "{err:?}");
    }
}

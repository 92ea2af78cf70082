//! permessage-deflate's payload transforms (RFC 7692 §7.2), without context takeover:
//! every message is compressed, and inflated, on its own.
//!
//! - [`Deflater`] turns a payload into a complete compressed frame (RSV1 set), with the
//!   full 32 KiB window or a smaller one a client asked for. A shard keeps one and reuses
//!   its state (one per window size used) for every message.
//! - [`Inflater`] turns a client's compressed message back into its payload, into a
//!   scratch buffer it keeps, never past a bound: a message that would inflate beyond it
//!   is refused as soon as the bound is passed ([`InflateError::TooBig`]), whatever its
//!   compressed size. A shard keeps one for all its connections (one message at a time).
//!
//! Neither keeps anything of a message once the next one starts, which is what
//! `server_no_context_takeover` and `client_no_context_takeover` promise the peer.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::{MAX_HEADER_LEN, OpCode, write_header};

/// What a sync flush ends with: removed after compressing, put back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The level a [`Deflater::default`] compresses at: zlib's own default.
const DEFAULT_LEVEL: u32 = 6;

/// Scratch output a shard keeps between messages; a larger one is released after use.
const KEEP_SCRATCH: usize = 256 * 1024;

/// The smallest window zlib compresses with (2^9 bytes; RFC 7692 allows 2^8, which a
/// client may ask for and then gets its messages uncompressed).
pub const MIN_WINDOW_BITS: u8 = 9;
/// The full window (2^15 bytes): what shared frames are compressed with.
pub const FULL_WINDOW_BITS: u8 = 15;

/// Compresses payloads into complete frames; see the module docs.
pub struct Deflater {
    /// The DEFLATE level, 1 to 9.
    level: u32,
    /// One state per window size (9..=15 bits), each created on first use: a full
    /// window's state takes a few hundred KiB.
    states: [Option<Box<Compress>>; 7],
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater::new(DEFAULT_LEVEL)
    }
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ready = self.states.iter().filter(|s| s.is_some()).count();
        f.debug_struct("Deflater").field("states", &ready).finish()
    }
}

impl Deflater {
    /// A deflater at `level` (clamped to 1..=9: 1 fastest, 9 smallest).
    pub fn new(level: u32) -> Self {
        Deflater {
            level: level.clamp(1, 9),
            states: Default::default(),
        }
    }

    /// A complete, final frame (`opcode`, RSV1 set) carrying `payload` compressed with
    /// the full window; `None` when that would not be smaller (the caller sends the
    /// plain frame, which permessage-deflate allows for any message).
    pub fn frame(&mut self, opcode: OpCode, payload: &[u8]) -> Option<Bytes> {
        self.compress(opcode, payload, FULL_WINDOW_BITS, true)
    }

    /// A compressed frame (RSV1 set) of `payload` with a window of `2^window_bits`
    /// bytes (9..=15; `None` for any other size). With `only_if_smaller`, `None` too
    /// when the result would not be smaller than the payload; without it, the result
    /// may be a few bytes larger (what a peer that compresses everything sends).
    pub fn compress(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        window_bits: u8,
        only_if_smaller: bool,
    ) -> Option<Bytes> {
        let slot = window_bits.checked_sub(MIN_WINDOW_BITS)?;
        let level = Compression::new(self.level);
        let state = self
            .states
            .get_mut(usize::from(slot))?
            .get_or_insert_with(|| {
                Box::new(Compress::new_with_window_bits(level, false, window_bits))
            });
        state.reset();
        let mut out = Vec::with_capacity(MAX_HEADER_LEN + payload.len() / 2 + 64);
        out.resize(MAX_HEADER_LEN, 0);
        // Give up as soon as the output reaches the plain size (incompressible data).
        let give_up = match only_if_smaller {
            true => MAX_HEADER_LEN + payload.len() + TAIL.len(),
            false => usize::MAX,
        };
        let start_in = state.total_in();
        loop {
            let consumed = (state.total_in() - start_in) as usize;
            if out.len() == out.capacity() {
                out.reserve((out.capacity() / 2).max(64));
            }
            state
                .compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
                .ok()?;
            let done = (state.total_in() - start_in) as usize == payload.len();
            // A sync flush is complete when it left room in the output.
            if done && out.len() < out.capacity() {
                break;
            }
            if out.len() >= give_up {
                return None;
            }
        }
        if !out.ends_with(&TAIL) {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        let compressed_len = out.len() - MAX_HEADER_LEN;
        if only_if_smaller && compressed_len >= payload.len() {
            return None;
        }
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = write_header(&mut header, opcode, compressed_len as u64);
        header[0] |= RSV1;
        let start = MAX_HEADER_LEN - header_len;
        out[start..MAX_HEADER_LEN].copy_from_slice(&header[..header_len]);
        // A frame may be kept (a room's history): drop large slack.
        if out.capacity() - out.len() > out.len() / 4 {
            out.shrink_to_fit();
        }
        Some(Bytes::from(out).slice(start..))
    }
}

/// The RSV1 bit of a frame's first byte: "this message is compressed".
pub const RSV1: u8 = 0x40;

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// It inflates past the bound (close 1009).
    #[error("the message inflates past the maximum payload length")]
    TooBig,
    /// It is not valid DEFLATE data, or refers to a window it may not use (close 1007).
    #[error("the message is not valid permessage-deflate data")]
    Invalid,
}

/// Inflates compressed messages; see the module docs.
#[derive(Default)]
pub struct Inflater {
    /// Created on first use.
    state: Option<Box<Decompress>>,
    /// The last message's payload.
    out: Vec<u8>,
    /// Messages inflated so far (the caller counts them in its metrics).
    inflated: u64,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("ready", &self.state.is_some())
            .field("scratch", &self.out.capacity())
            .finish()
    }
}

impl Inflater {
    /// Messages inflated since this inflater was made.
    pub fn inflated(&self) -> u64 {
        self.inflated
    }

    /// Inflates one message's payload (as received, without the 4-byte tail) to at most
    /// `max` bytes; the result is borrowed until the next call. The full window is
    /// used, which inflates what a client compressed with any smaller one.
    pub fn inflate(&mut self, compressed: &[u8], max: usize) -> Result<&[u8], InflateError> {
        if self.out.capacity() > KEEP_SCRATCH {
            self.out = Vec::new();
        }
        self.out.clear();
        self.inflated += 1;
        let state = self
            .state
            .get_or_insert_with(|| Box::new(Decompress::new(false)));
        state.reset(false);
        // One byte past the bound tells "exactly max" from "more than max".
        let bound = max.saturating_add(1);
        let hint = compressed.len().saturating_mul(4).max(256);
        for input in [compressed, &TAIL[..]] {
            let mut at = 0;
            loop {
                if self.out.len() == self.out.capacity() {
                    if self.out.len() >= bound {
                        return Err(InflateError::TooBig);
                    }
                    let grow = self.out.capacity().max(hint).min(bound - self.out.len());
                    self.out.reserve_exact(grow);
                }
                let (before_in, before_out) = (state.total_in(), state.total_out());
                let status = state
                    .decompress_vec(&input[at..], &mut self.out, FlushDecompress::None)
                    .map_err(|_| InflateError::Invalid)?;
                if self.out.len() > max {
                    return Err(InflateError::TooBig);
                }
                at += (state.total_in() - before_in) as usize;
                if status == Status::StreamEnd {
                    // A final block: whatever follows it (our tail) is not data.
                    return Ok(&self.out);
                }
                let progressed = state.total_in() != before_in || state.total_out() != before_out;
                let room_left = self.out.len() < self.out.capacity();
                if at == input.len() && room_left {
                    break;
                }
                if !progressed && room_left {
                    return Err(InflateError::Invalid);
                }
            }
        }
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload of a compressed frame (its header skipped).
    fn body(frame: &[u8]) -> &[u8] {
        let skip = match frame[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        &frame[skip..]
    }

    #[test]
    fn a_message_round_trips_and_the_frame_says_it_is_compressed() {
        let payload = br#"{"event":"tick","data":{"price":1,"symbol":"BTC"}}"#.repeat(20);
        let mut deflater = Deflater::default();
        let frame = deflater.frame(OpCode::Text, &payload).unwrap();
        assert_eq!(frame[0], 0x80 | RSV1 | 0x1, "FIN, RSV1, text");
        assert!(frame.len() < payload.len() / 5, "{} bytes", frame.len());
        let mut inflater = Inflater::default();
        let plain = inflater.inflate(body(&frame), payload.len()).unwrap();
        assert_eq!(plain, &payload[..]);
        // The state is reset per message: the same message compresses the same way.
        assert_eq!(deflater.frame(OpCode::Text, &payload).unwrap(), frame);
    }

    #[test]
    fn what_does_not_shrink_is_left_plain() {
        let mut deflater = Deflater::default();
        assert_eq!(deflater.frame(OpCode::Text, b"{}"), None);
        // xorshift64: bytes without repeats worth a back-reference.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert_eq!(deflater.frame(OpCode::Binary, &noise), None);
        // Unless asked for anyway.
        let forced = deflater.compress(OpCode::Text, b"{}", FULL_WINDOW_BITS, false);
        let forced = forced.unwrap();
        assert_eq!(
            Inflater::default().inflate(body(&forced), 10).unwrap(),
            b"{}"
        );
    }

    #[test]
    fn a_smaller_window_is_honoured_and_eight_bits_is_refused() {
        // Repeats 1,000 bytes apart: a 512-byte window cannot reach them.
        let block: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let payload = block.repeat(8);
        let mut deflater = Deflater::default();
        let full = deflater
            .compress(OpCode::Binary, &payload, 15, true)
            .unwrap();
        let small = deflater
            .compress(OpCode::Binary, &payload, 9, false)
            .unwrap();
        assert!(
            full.len() * 4 < small.len(),
            "{} vs {}",
            full.len(),
            small.len()
        );
        let mut inflater = Inflater::default();
        assert_eq!(
            inflater.inflate(body(&small), payload.len()).unwrap(),
            &payload[..]
        );
        assert_eq!(deflater.compress(OpCode::Binary, &payload, 8, false), None);
        assert_eq!(deflater.compress(OpCode::Binary, &payload, 16, false), None);
    }

    #[test]
    fn a_bomb_is_refused_at_the_bound_and_garbage_is_invalid() {
        let zeros = vec![0u8; 1 << 20];
        let frame = Deflater::default().frame(OpCode::Binary, &zeros).unwrap();
        assert!(frame.len() < 2048);
        let mut inflater = Inflater::default();
        assert_eq!(
            inflater.inflate(body(&frame), 64 * 1024),
            Err(InflateError::TooBig)
        );
        assert!(
            inflater.out.capacity() <= 64 * 1024 + 1,
            "never past the bound"
        );
        assert_eq!(
            inflater.inflate(body(&frame), 1 << 20).unwrap().len(),
            1 << 20
        );
        assert_eq!(
            inflater.inflate(&[0xff, 0xff, 0xff], 100),
            Err(InflateError::Invalid)
        );
        // An empty message is the empty stored block alone.
        assert_eq!(inflater.inflate(&[0x00], 10).unwrap(), b"");
    }
}

//! WebSocket frame codec (RFC 6455 §5), client side.
//!
//! Decoding borrows the payload from the caller's read buffer: nothing is copied and
//! nothing is allocated per frame. Server frames must be unmasked. RSV2 and RSV3 are
//! always refused (no extension we offer defines them); RSV1 is permessage-deflate's
//! "compressed" bit (RFC 7692 §6): allowed only when the upgrade agreed the extension
//! ([`Rules::deflate`]), and then only on the first frame of a data message, never on a
//! continuation or a control frame. Encoding writes one masked frame (header, mask key,
//! masked payload) into a caller-owned `Vec`, so a connection reuses one scratch buffer;
//! the client never compresses what it sends (RFC 7692 allows it), so RSV1 is never set.

use thiserror::Error;

/// Continuation frame opcode.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text frame opcode.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const OP_BINARY: u8 = 0x2;
/// Close frame opcode.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const OP_PING: u8 = 0x9;
/// Pong frame opcode.
pub const OP_PONG: u8 = 0xA;

/// What a decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Largest payload length accepted ([`FrameError::TooLarge`] above it).
    pub max_payload: u64,
    /// permessage-deflate was agreed: RSV1 marks a compressed message.
    pub deflate: bool,
}

impl Rules {
    /// No extension: every reserved bit is an error.
    pub fn plain(max_payload: u64) -> Rules {
        Rules {
            max_payload,
            deflate: false,
        }
    }
}

/// One decoded frame borrowing its payload from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// FIN bit: last fragment of a message.
    pub fin: bool,
    /// RSV1 (only with [`Rules::deflate`], only on a message's first frame): the message
    /// is compressed.
    pub compressed: bool,
    /// Opcode (one of the `OP_*` constants).
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: &'a [u8],
}

/// A protocol violation in a server frame; the connection cannot continue.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The server masked a frame (servers must not).
    #[error("server frame is masked")]
    Masked,
    /// RSV2 or RSV3 set, or RSV1 although permessage-deflate was not agreed.
    #[error("reserved bits set in a server frame")]
    Reserved,
    /// RSV1 on a continuation or a control frame (RFC 7692 §6.1: only a data message's
    /// first frame carries it).
    #[error("compressed bit on a continuation or control frame")]
    CompressedBit,
    /// Opcode outside the RFC 6455 set.
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
    /// Payload length above the configured limit.
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(u64),
    /// A control frame that is fragmented or longer than 125 bytes.
    #[error("fragmented or oversized control frame")]
    BadControl,
    /// A continuation without a message in progress, or a new message inside one.
    #[error("unexpected continuation or interleaved data frame")]
    Fragmentation,
}

/// Decodes the first frame of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole frame, or the frame and the
/// number of bytes it occupies.
pub fn decode(buf: &[u8], rules: Rules) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    check_first_byte(b0, rules.deflate)?;
    if b1 & 0x80 != 0 {
        return Err(FrameError::Masked);
    }
    let Some((len, header)) = payload_len(buf, b1 & 0x7f) else {
        return Ok(None);
    };
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0f);
    if opcode >= OP_CLOSE && (len > 125 || !fin) {
        return Err(FrameError::BadControl);
    }
    if len > rules.max_payload {
        return Err(FrameError::TooLarge(len));
    }
    let total = header + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let frame = Frame {
        fin,
        compressed: b0 & RSV1 != 0,
        opcode,
        payload: &buf[header..total],
    };
    Ok(Some((frame, total)))
}

/// RSV1: permessage-deflate's "Per-Message Compressed" bit.
const RSV1: u8 = 0x40;
/// RSV2 and RSV3: no extension we offer uses them.
const RSV23: u8 = 0x30;

fn check_first_byte(b0: u8, deflate: bool) -> Result<(), FrameError> {
    if b0 & RSV23 != 0 || (b0 & RSV1 != 0 && !deflate) {
        return Err(FrameError::Reserved);
    }
    let opcode = b0 & 0x0f;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
        other => return Err(FrameError::Opcode(other)),
    }
    if b0 & RSV1 != 0 && !matches!(opcode, OP_TEXT | OP_BINARY) {
        return Err(FrameError::CompressedBit);
    }
    Ok(())
}

/// Payload length and header size, or `None` when the extended length is not buffered yet.
fn payload_len(buf: &[u8], len7: u8) -> Option<(u64, usize)> {
    match len7 {
        126 => buf
            .get(2..4)
            .map(|b| (u16::from_be_bytes([b[0], b[1]]) as u64, 4)),
        127 => buf
            .get(2..10)
            .map(|b| (u64::from_be_bytes(b.try_into().unwrap()), 10)),
        n => Some((n as u64, 2)),
    }
}

/// Appends one masked client frame (FIN set) to `out`.
pub fn encode_masked(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    push_header(opcode, payload.len(), 0x80, out);
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// Appends one unmasked frame (FIN set), as a server would send it. Used by tests and
/// by the in-process client benchmark.
pub fn encode_unmasked(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    encode_server(0x80 | opcode, payload, out);
}

/// Appends one unmasked frame whose first byte (FIN, RSV bits, opcode) is `b0`, as a
/// server would send a fragment or a compressed frame. Used by tests and benchmarks.
pub fn encode_server(b0: u8, payload: &[u8], out: &mut Vec<u8>) {
    push_first(b0, payload.len(), 0, out);
    out.extend_from_slice(payload);
}

fn push_header(opcode: u8, len: usize, mask_bit: u8, out: &mut Vec<u8>) {
    push_first(0x80 | opcode, len, mask_bit, out);
}

fn push_first(b0: u8, len: usize, mask_bit: u8, out: &mut Vec<u8>) {
    out.push(b0);
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// XORs `buf` with the repeating 4-byte `mask` (masking and unmasking are the same).
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = buf.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// The status code of a close frame payload (`None` for an empty payload).
pub fn close_code(payload: &[u8]) -> Option<u16> {
    payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// A close frame payload: the status code followed by a UTF-8 reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Rules = Rules {
        max_payload: 1 << 20,
        deflate: false,
    };
    const DEFLATE: Rules = Rules {
        deflate: true,
        ..MAX
    };

    fn unmasked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_unmasked(opcode, payload, &mut v);
        v
    }

    #[test]
    fn decodes_small_medium_and_large_lengths() {
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload = vec![b'a'; len];
            let bytes = unmasked(OP_TEXT, &payload);
            let (frame, used) = decode(&bytes, MAX).unwrap().unwrap();
            assert_eq!(
                (frame.opcode, frame.fin, frame.payload.len(), used),
                (OP_TEXT, true, len, bytes.len())
            );
        }
    }

    #[test]
    fn incomplete_frames_wait_for_more_bytes() {
        let bytes = unmasked(OP_TEXT, &[b'x'; 300]);
        for cut in [0, 1, 2, 3, 10, bytes.len() - 1] {
            assert_eq!(decode(&bytes[..cut], MAX), Ok(None), "cut at {cut}");
        }
        let big = unmasked(OP_BINARY, &vec![0; 70000]);
        assert_eq!(decode(&big[..9], MAX), Ok(None));
    }

    #[test]
    fn decodes_back_to_back_frames() {
        let mut bytes = unmasked(OP_TEXT, b"one");
        encode_unmasked(OP_PING, b"p", &mut bytes);
        encode_unmasked(OP_TEXT, b"three", &mut bytes);
        let mut pos = 0;
        let mut seen = Vec::new();
        while let Some((f, used)) = decode(&bytes[pos..], MAX).unwrap() {
            seen.push((f.opcode, f.payload.to_vec()));
            pos += used;
        }
        assert_eq!(
            seen,
            vec![
                (OP_TEXT, b"one".to_vec()),
                (OP_PING, b"p".to_vec()),
                (OP_TEXT, b"three".to_vec())
            ]
        );
    }

    #[test]
    fn rejects_protocol_violations() {
        assert_eq!(
            decode(&[0x81, 0x81, 0, 0, 0, 0, 0], MAX),
            Err(FrameError::Masked)
        );
        assert_eq!(decode(&[0xC1, 0x00], MAX), Err(FrameError::Reserved));
        assert_eq!(decode(&[0x83, 0x00], MAX), Err(FrameError::Opcode(3)));
        assert_eq!(decode(&[0x09, 0x00], MAX), Err(FrameError::BadControl));
        assert_eq!(
            decode(&[0x89, 126, 0, 200], MAX),
            Err(FrameError::BadControl)
        );
        assert_eq!(
            decode(&unmasked(OP_TEXT, &[0; 200]), Rules::plain(100)),
            Err(FrameError::TooLarge(200))
        );
    }

    #[test]
    fn rsv1_marks_compressed_messages_only_when_deflate_was_agreed() {
        let mut bytes = Vec::new();
        encode_server(0x80 | RSV1 | OP_TEXT, b"zz", &mut bytes);
        assert_eq!(decode(&bytes, MAX), Err(FrameError::Reserved), "not agreed");
        let (f, used) = decode(&bytes, DEFLATE).unwrap().unwrap();
        assert_eq!(
            (f.compressed, f.fin, f.payload, used),
            (true, true, &b"zz"[..], 4)
        );
        // First fragment of a compressed message: RSV1 without FIN.
        assert!(
            decode(&[RSV1 | OP_BINARY, 0], DEFLATE)
                .unwrap()
                .unwrap()
                .0
                .compressed
        );
        assert!(
            !decode(&unmasked(OP_TEXT, b"a"), DEFLATE)
                .unwrap()
                .unwrap()
                .0
                .compressed
        );
    }

    #[test]
    fn rsv1_is_refused_on_continuations_and_control_frames_and_rsv23_always() {
        for b0 in [
            0x80 | RSV1 | OP_CONTINUATION,
            RSV1 | OP_CONTINUATION,
            0x80 | RSV1 | OP_PING,
            0x80 | RSV1 | OP_CLOSE,
        ] {
            assert_eq!(
                decode(&[b0, 0], DEFLATE),
                Err(FrameError::CompressedBit),
                "{b0:#x}"
            );
        }
        for b0 in [0xA1, 0x91, 0xE1] {
            assert_eq!(
                decode(&[b0, 0], DEFLATE),
                Err(FrameError::Reserved),
                "{b0:#x}"
            );
        }
    }

    #[test]
    fn masked_encoding_round_trips() {
        for len in [0usize, 3, 4, 5, 125, 126, 1000, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mask = [0x12, 0x34, 0x56, 0x78];
            let mut out = Vec::new();
            encode_masked(OP_TEXT, &payload, mask, &mut out);
            assert_eq!(out[0], 0x81);
            assert_eq!(out[1] & 0x80, 0x80, "mask bit");
            let header = out.len() - len - 4;
            assert_eq!(&out[header..header + 4], &mask);
            let mut body = out[header + 4..].to_vec();
            apply_mask(&mut body, mask);
            assert_eq!(body, payload);
            // Unmasking the header bit gives a frame our decoder accepts.
            let mut plain = out[..header].to_vec();
            plain[1] &= 0x7f;
            plain.extend_from_slice(&payload);
            assert_eq!(
                decode(&plain, MAX).unwrap().unwrap().0.payload,
                &payload[..]
            );
        }
    }

    #[test]
    fn close_payload_round_trips() {
        let p = close_payload(4001, "Authentication timeout");
        assert_eq!(close_code(&p), Some(4001));
        assert_eq!(&p[2..], b"Authentication timeout");
        assert_eq!(close_code(&[]), None);
    }
}

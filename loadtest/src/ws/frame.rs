//! WebSocket frame codec (RFC 6455 §5), client side.
//!
//! Decoding borrows the payload from the caller's read buffer: nothing is copied and
//! nothing is allocated per frame. Server frames must be unmasked and use no reserved bits
//! (no extension is ever negotiated). Encoding writes one masked frame (header, mask key,
//! masked payload) into a caller-owned `Vec`, so a connection reuses one scratch buffer.

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

/// One decoded frame borrowing its payload from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// FIN bit: last fragment of a message.
    pub fin: bool,
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
    /// RSV1..3 set although no extension was negotiated.
    #[error("reserved bits set in a server frame")]
    Reserved,
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
pub fn decode(buf: &[u8], max_payload: u64) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    check_first_byte(b0)?;
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
    if len > max_payload {
        return Err(FrameError::TooLarge(len));
    }
    let total = header + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let frame = Frame {
        fin,
        opcode,
        payload: &buf[header..total],
    };
    Ok(Some((frame, total)))
}

fn check_first_byte(b0: u8) -> Result<(), FrameError> {
    if b0 & 0x70 != 0 {
        return Err(FrameError::Reserved);
    }
    match b0 & 0x0f {
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => Ok(()),
        other => Err(FrameError::Opcode(other)),
    }
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
    push_header(opcode, payload.len(), 0, out);
    out.extend_from_slice(payload);
}

fn push_header(opcode: u8, len: usize, mask_bit: u8, out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
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

    const MAX: u64 = 1 << 20;

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
            decode(&unmasked(OP_TEXT, &[0; 200]), 100),
            Err(FrameError::TooLarge(200))
        );
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

//! Server frames out: headers, control frames, close frames, and the client mask.
//! (Client frames in: [`super::decode`].)

use bytes::Bytes;

/// The largest server frame header: 2 bytes + 8 bytes of extended length (no mask).
pub const MAX_HEADER_LEN: usize = 10;

/// Opcodes the server writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// A text frame (every server message).
    Text,
    /// A binary frame (echoed binary messages of the conformance server).
    Binary,
    /// A close frame.
    Close,
    /// A transport ping.
    Ping,
    /// A transport pong (answer to a client ping).
    Pong,
}

impl OpCode {
    const fn bits(self) -> u8 {
        match self {
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }
}

/// Writes a final, unmasked frame header for `len` payload bytes; returns its length.
pub fn write_header(out: &mut [u8; MAX_HEADER_LEN], opcode: OpCode, len: u64) -> usize {
    out[0] = 0x80 | opcode.bits();
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= u64::from(u16::MAX) {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&len.to_be_bytes());
        10
    }
}

/// A complete control frame (close, ping or pong) with a payload of at most 125 bytes.
pub fn control_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    data_frame(opcode, &payload[..payload.len().min(125)])
}

/// A close frame carrying `code` and a UTF-8 `reason` (truncated to fit 125 bytes).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    control_frame(OpCode::Close, &payload)
}

/// A complete, final data frame carrying `payload` (a copy: for one recipient).
pub fn data_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = write_header(&mut header, opcode, payload.len() as u64);
    let mut out = Vec::with_capacity(n + payload.len());
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// XORs `buf` with the client's masking key, in place, as if `buf` started `offset`
/// bytes into the masked payload.
pub fn apply_mask_at(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let shift = offset % 4;
    let rotated = [0, 1, 2, 3].map(|i| mask[(i + shift) % 4]);
    apply_mask(buf, rotated);
}

/// XORs `buf` with the client's masking key, in place.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = buf.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_close_frames() {
        let mut h = [0u8; MAX_HEADER_LEN];
        assert_eq!(write_header(&mut h, OpCode::Text, 125), 2);
        assert_eq!(write_header(&mut h, OpCode::Text, 126), 4);
        assert_eq!(write_header(&mut h, OpCode::Text, 1 << 16), 10);
        let close = close_frame(4001, "Authentication timeout");
        assert_eq!(&close[..4], &[0x88, 24, 0x0f, 0xa1]);
        assert_eq!(
            &data_frame(OpCode::Binary, b"ab")[..],
            &[0x82, 2, b'a', b'b']
        );
    }

    #[test]
    fn masking_at_an_offset_continues_the_key() {
        let mask = [1, 2, 3, 4];
        let mut whole = *b"abcdefghij";
        apply_mask(&mut whole, mask);
        let mut split = *b"abcdefghij";
        let (head, tail) = split.split_at_mut(3);
        apply_mask_at(head, mask, 0);
        apply_mask_at(tail, mask, 3);
        assert_eq!(whole, split);
    }
}

//! WebSocket framing: server frames out, client frames in.
//!
//! [`FrameDecoder`] is a sans-I/O state machine. The connection task reads socket bytes
//! into a shard-wide scratch buffer and feeds them here; the decoder unmasks complete
//! frames in place and hands each message to a callback, borrowing it. Only an incomplete
//! tail (or a fragmented message) is copied into the connection's own buffer, so an idle
//! connection owns no read buffer at all.

use std::io::Cursor;

use bytes::Bytes;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode as WireOpCode};

/// The largest server frame header: 2 bytes + 8 bytes of extended length (no mask).
pub const MAX_HEADER_LEN: usize = 10;

/// Opcodes the server writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// A text frame (every server message).
    Text,
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
    let payload = &payload[..payload.len().min(125)];
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = write_header(&mut header, opcode, payload.len() as u64);
    let mut out = Vec::with_capacity(n + payload.len());
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(payload);
    Bytes::from(out)
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

/// One decoded client event, borrowing from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// A complete text or binary message (both are handled alike).
    Message(&'a [u8]),
    /// A ping; the server answers with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong (answer to a server ping).
    Pong,
    /// The client closes; the code it sent, if any.
    Close(Option<u16>),
}

/// Why decoding stopped the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The client broke RFC 6455 (unmasked frame, reserved bits or opcode, bad control
    /// frame, continuation out of place): close 1002.
    #[error("websocket protocol violation: {0}")]
    Protocol(&'static str),
    /// A frame or reassembled message exceeds `max_payload_length`: close 1009.
    #[error("message exceeds the maximum payload length")]
    TooBig,
}

/// Whether the callback wants more events from the same input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep decoding.
    Continue,
    /// Stop: the connection is closing; remaining input is discarded.
    Stop,
}

/// Reassembles client frames into messages; see the module docs for buffer ownership.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    max_payload: usize,
    partial: Vec<u8>,
    fragments: Option<Vec<u8>>,
}

impl FrameDecoder {
    /// A decoder refusing messages larger than `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        FrameDecoder {
            max_payload,
            partial: Vec::new(),
            fragments: None,
        }
    }

    /// Bytes held between reads (an incomplete frame or fragmented message).
    pub fn buffered(&self) -> usize {
        self.partial.capacity() + self.fragments.as_ref().map_or(0, Vec::capacity)
    }

    /// Decodes everything complete in `input` (plus what was buffered), calling
    /// `on_event` per event; keeps an incomplete tail for the next call.
    pub fn feed(
        &mut self,
        input: &mut [u8],
        mut on_event: impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<Flow, DecodeError> {
        if self.partial.is_empty() {
            let (consumed, flow) = self.process(input, &mut on_event)?;
            if flow == Flow::Continue && consumed < input.len() {
                self.partial.extend_from_slice(&input[consumed..]);
            }
            return Ok(flow);
        }
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(input);
        let (consumed, flow) = self.process(&mut data, &mut on_event)?;
        if flow == Flow::Continue && consumed < data.len() {
            // Keep the tail alone: after consumed frames, `data`'s capacity is a whole
            // read's worth, which an idle connection must not hold on to.
            self.partial = if consumed == 0 {
                data
            } else {
                data[consumed..].to_vec()
            };
        }
        Ok(flow)
    }

    fn process(
        &mut self,
        buf: &mut [u8],
        on_event: &mut impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<(usize, Flow), DecodeError> {
        let mut pos = 0;
        loop {
            let mut cursor = Cursor::new(&buf[pos..]);
            let parsed = FrameHeader::parse(&mut cursor)
                .map_err(|_| DecodeError::Protocol("reserved opcode"))?;
            let Some((header, len)) = parsed else {
                return Ok((pos, Flow::Continue));
            };
            let header_len = cursor.position() as usize;
            self.check_header(&header, len)?;
            let len = len as usize;
            if buf.len() - pos - header_len < len {
                return Ok((pos, Flow::Continue));
            }
            let start = pos + header_len;
            pos = start + len;
            let payload = &mut buf[start..pos];
            if let Some(mask) = header.mask {
                apply_mask(payload, mask);
            }
            if self.dispatch(&header, payload, on_event)? == Flow::Stop {
                return Ok((pos, Flow::Stop));
            }
        }
    }

    fn check_header(&self, header: &FrameHeader, len: u64) -> Result<(), DecodeError> {
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(DecodeError::Protocol(
                "reserved bits set without an extension",
            ));
        }
        if header.mask.is_none() {
            return Err(DecodeError::Protocol("client frames must be masked"));
        }
        if let WireOpCode::Control(_) = header.opcode {
            if !header.is_final || len > 125 {
                return Err(DecodeError::Protocol("malformed control frame"));
            }
            return Ok(());
        }
        let already = self.fragments.as_ref().map_or(0, Vec::len) as u64;
        if already.saturating_add(len) > self.max_payload as u64 {
            return Err(DecodeError::TooBig);
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
        on_event: &mut impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<Flow, DecodeError> {
        match header.opcode {
            WireOpCode::Data(Data::Text | Data::Binary) => {
                if self.fragments.is_some() {
                    return Err(DecodeError::Protocol("new message inside a fragmented one"));
                }
                if header.is_final {
                    return Ok(on_event(WsEvent::Message(payload)));
                }
                self.fragments = Some(payload.to_vec());
                Ok(Flow::Continue)
            }
            WireOpCode::Data(Data::Continue) => {
                let Some(mut message) = self.fragments.take() else {
                    return Err(DecodeError::Protocol("continuation without a message"));
                };
                message.extend_from_slice(payload);
                if !header.is_final {
                    self.fragments = Some(message);
                    return Ok(Flow::Continue);
                }
                Ok(on_event(WsEvent::Message(&message)))
            }
            WireOpCode::Control(Control::Ping) => Ok(on_event(WsEvent::Ping(payload))),
            WireOpCode::Control(Control::Pong) => Ok(on_event(WsEvent::Pong)),
            WireOpCode::Control(Control::Close) => {
                let code = match payload.len() {
                    0 => None,
                    1 => return Err(DecodeError::Protocol("close payload of one byte")),
                    _ => Some(u16::from_be_bytes([payload[0], payload[1]])),
                };
                on_event(WsEvent::Close(code));
                Ok(Flow::Stop)
            }
            _ => Err(DecodeError::Protocol("reserved opcode")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        let mut body = payload.to_vec();
        apply_mask(&mut body, mask);
        out.extend_from_slice(&body);
        out
    }

    fn decode_all(decoder: &mut FrameDecoder, input: &[u8]) -> Result<Vec<String>, DecodeError> {
        let mut seen = Vec::new();
        let mut buf = input.to_vec();
        decoder.feed(&mut buf, |ev| {
            seen.push(match ev {
                WsEvent::Message(m) => String::from_utf8_lossy(m).into_owned(),
                WsEvent::Ping(p) => format!("ping:{}", String::from_utf8_lossy(p)),
                WsEvent::Pong => "pong".into(),
                WsEvent::Close(c) => format!("close:{c:?}"),
            });
            Flow::Continue
        })?;
        Ok(seen)
    }

    #[test]
    fn decodes_masked_text_and_binary_alike() {
        let mut d = FrameDecoder::new(1024);
        let mut input = client_frame(0x81, b"hello");
        input.extend(client_frame(0x82, b"bin"));
        assert_eq!(decode_all(&mut d, &input).unwrap(), ["hello", "bin"]);
    }

    #[test]
    fn byte_by_byte_input_is_reassembled() {
        let mut d = FrameDecoder::new(1 << 20);
        let payload = "z".repeat(70_000);
        let input = client_frame(0x81, payload.as_bytes());
        let mut seen = Vec::new();
        for chunk in input.chunks(1000) {
            seen.extend(decode_all(&mut d, chunk).unwrap());
        }
        assert_eq!(seen, [payload]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn fragments_and_interleaved_ping() {
        let mut d = FrameDecoder::new(1024);
        let mut input = client_frame(0x01, b"he");
        input.extend(client_frame(0x89, b"p"));
        input.extend(client_frame(0x80, b"llo"));
        assert_eq!(decode_all(&mut d, &input).unwrap(), ["ping:p", "hello"]);
    }

    #[test]
    fn oversize_is_refused_before_the_body_arrives() {
        let mut d = FrameDecoder::new(10);
        let input = client_frame(0x81, &[b'a'; 11]);
        assert_eq!(decode_all(&mut d, &input[..6]), Err(DecodeError::TooBig));
        let mut d = FrameDecoder::new(4);
        let mut input = client_frame(0x01, b"abc");
        input.extend(client_frame(0x80, b"de"));
        assert_eq!(decode_all(&mut d, &input), Err(DecodeError::TooBig));
    }

    #[test]
    fn protocol_violations() {
        let unmasked = [0x81, 0x01, b'a'];
        let cases: [&[u8]; 4] = [
            &unmasked,
            &client_frame(0xC1, b"rsv"),
            &client_frame(0x83, b"op3"),
            &client_frame(0x80, b"orphan"),
        ];
        for input in cases {
            let mut d = FrameDecoder::new(1024);
            assert!(matches!(
                decode_all(&mut d, input),
                Err(DecodeError::Protocol(_))
            ));
        }
        let mut d = FrameDecoder::new(1024);
        assert!(decode_all(&mut d, &client_frame(0x09, b"x")).is_err());
    }

    #[test]
    fn close_stops_decoding() {
        let mut d = FrameDecoder::new(1024);
        let mut input = client_frame(0x88, &1000u16.to_be_bytes());
        input.extend(client_frame(0x81, b"after"));
        assert_eq!(decode_all(&mut d, &input).unwrap(), ["close:Some(1000)"]);
    }

    /// Found by `fuzz/fuzz_targets/ws_frame_decoder.rs`: with a tail already buffered, a
    /// read of many complete frames left their capacity in the buffer kept between reads.
    #[test]
    fn fuzz_regression_partial_keeps_only_the_tail() {
        let mut d = FrameDecoder::new(16);
        let frame = client_frame(0x82, b"ab");
        decode_all(&mut d, &frame[..1]).unwrap();
        let mut input = frame[1..].to_vec();
        for _ in 0..500 {
            input.extend(client_frame(0x82, b"ab"));
        }
        input.push(0x82);
        assert_eq!(decode_all(&mut d, &input).unwrap().len(), 501);
        assert!(
            d.buffered() <= 8,
            "holds {} bytes for a 1-byte tail",
            d.buffered()
        );
    }

    #[test]
    fn headers_and_close_frames() {
        let mut h = [0u8; MAX_HEADER_LEN];
        assert_eq!(write_header(&mut h, OpCode::Text, 125), 2);
        assert_eq!(write_header(&mut h, OpCode::Text, 126), 4);
        assert_eq!(write_header(&mut h, OpCode::Text, 1 << 16), 10);
        let close = close_frame(4001, "Authentication timeout");
        assert_eq!(&close[..4], &[0x88, 24, 0x0f, 0xa1]);
    }
}

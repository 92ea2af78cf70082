//! Decoding client frames: a sans-I/O state machine that turns socket bytes into
//! messages and control events, enforcing RFC 6455 as it goes.
//!
//! # Buffers
//!
//! The connection task reads socket bytes into a shard-wide scratch buffer and feeds them
//! here; complete frames are unmasked in place and handed to a callback, borrowed. Only an
//! incomplete frame (reserved at its exact size once its header is known) or a fragmented
//! message is kept in the decoder's own buffers, so an idle connection owns no read
//! buffer at all.
//!
//! # Rules
//!
//! Client frames must be masked; reserved bits and opcodes, fragmented or oversized
//! control frames, and continuations out of place are protocol errors (1002). A message
//! over `max_payload` bytes, or in more than `max_fragments` frames, is refused as soon as
//! a header announces it (1009). Text is checked as it arrives — across fragments and
//! across reads of an unfinished frame — and the first byte that cannot be UTF-8 fails
//! the connection (1007), as does a close reason that is not UTF-8.
//!
//! # permessage-deflate
//!
//! A decoder built [`FrameDecoder::with_permessage_deflate`] accepts RSV1 on the first
//! frame of a data message: the message is compressed. It is reassembled compressed
//! (`max_payload` bounds the compressed bytes too), then inflated by the caller's
//! [`Inflater`] to at most `max_payload` bytes (past that: 1009; data that does not
//! inflate: 1007); its text is checked once inflated. RSV1 elsewhere is a protocol error.

use std::io::Cursor;

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data as WireData, OpCode as WireOpCode};

use super::deflate::{InflateError, Inflater};
use super::frame::apply_mask_at;
use super::utf8::Utf8Stream;

/// A data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data<'a> {
    /// A text message (valid UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> Data<'a> {
    /// The payload bytes.
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Data::Text(text) => text.as_bytes(),
            Data::Binary(bytes) => bytes,
        }
    }
}

/// One decoded client event, borrowing from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// A complete message.
    Message(Data<'a>),
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
    /// A message exceeds `max_payload` bytes or `max_fragments` frames: close 1009.
    #[error("message exceeds the maximum payload length or fragment count")]
    TooBig,
    /// A text message or close reason that is not UTF-8: close 1007.
    #[error("text that is not UTF-8")]
    InvalidUtf8,
    /// A compressed message that does not inflate (permessage-deflate): close 1007.
    #[error("a compressed message that is not valid DEFLATE data")]
    InvalidCompression,
}

/// Whether the callback wants more events from the same input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep decoding.
    Continue,
    /// Stop: the connection is closing; remaining input is discarded.
    Stop,
}

/// What a connection accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in bytes (all fragments together).
    pub max_payload: usize,
    /// Most frames one message may arrive in.
    pub max_fragments: u32,
}

/// A fragmented message being reassembled.
#[derive(Debug)]
struct Fragmented {
    text: bool,
    /// Its first frame had RSV1: `data` is compressed.
    compressed: bool,
    data: Vec<u8>,
    frames: u32,
}

/// Reassembles client frames into messages; see the module docs.
///
/// It lives in every connection's task for the connection's whole life, so it is kept
/// small (the limits and counters in 32 bits).
#[derive(Debug)]
pub struct FrameDecoder {
    /// [`Limits::max_payload`], saturated to 32 bits.
    max_payload: u32,
    /// [`Limits::max_fragments`].
    max_fragments: u32,
    /// An incomplete frame: its header and the payload received so far.
    partial: Vec<u8>,
    /// Payload bytes of the frame at the end of the input already unmasked (and, for
    /// text, validated): a frame that arrives over several reads is worked on once.
    unmasked: u32,
    /// The fragmented message in progress (boxed: rare, and kept out of every idle task).
    message: Option<Box<Fragmented>>,
    /// UTF-8 state of the text message in progress.
    utf8: Utf8Stream,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    deflate: bool,
}

/// A frame header and where its payload lies in the buffer.
struct Located {
    header: FrameHeader,
    start: usize,
    len: usize,
}

impl FrameDecoder {
    /// A decoder applying `limits`.
    pub fn new(limits: Limits) -> Self {
        FrameDecoder {
            max_payload: u32::try_from(limits.max_payload).unwrap_or(u32::MAX),
            max_fragments: limits.max_fragments,
            partial: Vec::new(),
            unmasked: 0,
            message: None,
            utf8: Utf8Stream::default(),
            deflate: false,
        }
    }

    /// This decoder, accepting compressed messages (permessage-deflate was negotiated).
    pub fn with_permessage_deflate(mut self, negotiated: bool) -> Self {
        self.deflate = negotiated;
        self
    }

    /// Bytes held between reads (an incomplete frame or a fragmented message).
    pub fn buffered(&self) -> usize {
        self.partial.capacity() + self.message.as_ref().map_or(0, |m| m.data.capacity())
    }

    /// Decodes everything complete in `input` (plus what was buffered), calling
    /// `on_event` per event; keeps an incomplete tail for the next call. Compressed
    /// messages are inflated by `inflater` (only a decoder
    /// [`with_permessage_deflate`](Self::with_permessage_deflate) takes them).
    pub fn feed(
        &mut self,
        input: &mut [u8],
        inflater: &mut Inflater,
        mut on_event: impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<Flow, DecodeError> {
        let on_event = &mut on_event;
        if self.partial.is_empty() {
            let (consumed, flow) = self.process(input, inflater, on_event)?;
            if flow == Flow::Continue && consumed < input.len() {
                self.partial = self.keep(&input[consumed..]);
            }
            return Ok(flow);
        }
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(input);
        let (consumed, flow) = self.process(&mut data, inflater, on_event)?;
        if flow == Flow::Continue && consumed < data.len() {
            self.partial = match data.capacity() > 2 * self.frame_size(&data[consumed..]) {
                true => self.keep(&data[consumed..]),
                false => {
                    data.drain(..consumed);
                    data
                }
            };
        }
        Ok(flow)
    }

    /// An incomplete frame, copied into a buffer of exactly its final size.
    fn keep(&self, tail: &[u8]) -> Vec<u8> {
        let mut kept = Vec::with_capacity(self.frame_size(tail).max(tail.len()));
        kept.extend_from_slice(tail);
        kept
    }

    /// The whole size of the frame starting `tail` when its header is complete (the
    /// header checks already passed), else the bytes so far.
    fn frame_size(&self, tail: &[u8]) -> usize {
        let mut cursor = Cursor::new(tail);
        match FrameHeader::parse(&mut cursor) {
            Ok(Some((_, len))) => cursor.position() as usize + len as usize,
            _ => tail.len(),
        }
    }

    fn process(
        &mut self,
        buf: &mut [u8],
        inflater: &mut Inflater,
        on_event: &mut impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<(usize, Flow), DecodeError> {
        let mut pos = 0;
        loop {
            let Some(frame) = self.locate(&buf[pos..])? else {
                return Ok((pos, Flow::Continue));
            };
            let (start, end) = (pos + frame.start, pos + frame.start + frame.len);
            if end > buf.len() {
                self.unmask_partial(&frame.header, &mut buf[start..])?;
                return Ok((pos, Flow::Continue));
            }
            pos = end;
            let payload = &mut buf[start..end];
            self.unmask_rest(&frame.header, payload)?;
            if self.dispatch(&frame.header, payload, inflater, on_event)? == Flow::Stop {
                return Ok((pos, Flow::Stop));
            }
        }
    }

    /// The next frame's header, checked; `None` while the header is incomplete.
    fn locate(&self, buf: &[u8]) -> Result<Option<Located>, DecodeError> {
        let mut cursor = Cursor::new(buf);
        let parsed = FrameHeader::parse(&mut cursor)
            .map_err(|_| DecodeError::Protocol("reserved opcode"))?;
        let Some((header, len)) = parsed else {
            return Ok(None);
        };
        self.check_header(&header, len)?;
        let start = cursor.position() as usize;
        Ok(Some(Located {
            header,
            start,
            len: len as usize,
        }))
    }

    fn check_header(&self, header: &FrameHeader, len: u64) -> Result<(), DecodeError> {
        if header.rsv2 || header.rsv3 {
            return Err(DecodeError::Protocol(
                "reserved bits set without an extension",
            ));
        }
        let first_data = matches!(
            header.opcode,
            WireOpCode::Data(WireData::Text | WireData::Binary)
        );
        if header.rsv1 && !(self.deflate && first_data) {
            return Err(DecodeError::Protocol(match self.deflate {
                true => "RSV1 set on a frame other than a message's first",
                false => "RSV1 set without permessage-deflate",
            }));
        }
        if header.mask.is_none() {
            return Err(DecodeError::Protocol("client frames must be masked"));
        }
        match header.opcode {
            WireOpCode::Control(_) if !header.is_final || len > 125 => {
                Err(DecodeError::Protocol("malformed control frame"))
            }
            WireOpCode::Control(_) => Ok(()),
            WireOpCode::Data(data) => self.check_data(data, header.is_final, len),
        }
    }

    /// Data frames: in sequence, within the size and fragment limits.
    fn check_data(&self, data: WireData, is_final: bool, len: u64) -> Result<(), DecodeError> {
        let (already, frames) = self
            .message
            .as_ref()
            .map_or((0, 0), |m| (m.data.len(), m.frames));
        match (data, &self.message) {
            (WireData::Continue, None) => {
                return Err(DecodeError::Protocol("continuation without a message"));
            }
            (WireData::Text | WireData::Binary, Some(_)) => {
                return Err(DecodeError::Protocol("new message inside a fragmented one"));
            }
            (WireData::Reserved(_), _) => return Err(DecodeError::Protocol("reserved opcode")),
            _ => {}
        }
        let too_many = !is_final && frames + 1 >= self.max_fragments;
        if too_many || (already as u64).saturating_add(len) > u64::from(self.max_payload) {
            return Err(DecodeError::TooBig);
        }
        Ok(())
    }

    /// Whether a data frame carries text to check as it arrives: a text frame, or a
    /// continuation of text, not compressed (compressed text is checked once inflated).
    fn is_text(&self, header: &FrameHeader) -> bool {
        match header.opcode {
            WireOpCode::Data(WireData::Text) => !header.rsv1,
            WireOpCode::Data(WireData::Continue) => self
                .message
                .as_ref()
                .is_some_and(|m| m.text && !m.compressed),
            _ => false,
        }
    }

    /// Unmasks (and for text, validates) the part of an unfinished frame's payload that
    /// arrived since the last read.
    fn unmask_partial(
        &mut self,
        header: &FrameHeader,
        received: &mut [u8],
    ) -> Result<(), DecodeError> {
        let done = self.unmasked as usize;
        unmask(header, &mut received[done..], done);
        if self.is_text(header) {
            self.utf8
                .feed(&received[done..])
                .map_err(|_| DecodeError::InvalidUtf8)?;
        }
        // A frame's payload is within max_payload, so within 32 bits.
        self.unmasked = u32::try_from(received.len()).unwrap_or(u32::MAX);
        Ok(())
    }

    /// Unmasks (and validates) the rest of a complete frame's payload. A whole
    /// unfragmented text frame is left to [`Self::emit`], which checks it in one go.
    fn unmask_rest(&mut self, header: &FrameHeader, payload: &mut [u8]) -> Result<(), DecodeError> {
        let done = std::mem::take(&mut self.unmasked) as usize;
        unmask(header, &mut payload[done..], done);
        let whole = done == 0 && header.is_final && self.message.is_none();
        if self.is_text(header) && !whole {
            self.utf8
                .feed(&payload[done..])
                .map_err(|_| DecodeError::InvalidUtf8)?;
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
        inflater: &mut Inflater,
        on_event: &mut impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<Flow, DecodeError> {
        match header.opcode {
            WireOpCode::Data(WireData::Continue) => {
                self.continuation(header.is_final, payload, inflater, on_event)
            }
            WireOpCode::Data(kind) => {
                let kind = Kind {
                    text: kind == WireData::Text,
                    compressed: header.rsv1,
                };
                self.data_frame(kind, header.is_final, payload, inflater, on_event)
            }
            WireOpCode::Control(Control::Ping) => Ok(on_event(WsEvent::Ping(payload))),
            WireOpCode::Control(Control::Pong) => Ok(on_event(WsEvent::Pong)),
            WireOpCode::Control(Control::Close) => {
                on_event(WsEvent::Close(close_code(payload)?));
                Ok(Flow::Stop)
            }
            WireOpCode::Control(Control::Reserved(_)) => {
                Err(DecodeError::Protocol("reserved opcode"))
            }
        }
    }

    /// The first frame of a message: a whole message, or the start of a fragmented one.
    fn data_frame(
        &mut self,
        kind: Kind,
        is_final: bool,
        payload: &[u8],
        inflater: &mut Inflater,
        on_event: &mut impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<Flow, DecodeError> {
        if !is_final {
            let data = payload.to_vec();
            self.message = Some(Box::new(Fragmented {
                text: kind.text,
                compressed: kind.compressed,
                data,
                frames: 1,
            }));
            return Ok(Flow::Continue);
        }
        self.emit(kind, payload, inflater, on_event)
    }

    /// A continuation: appended, and the message emitted on its final frame.
    fn continuation(
        &mut self,
        is_final: bool,
        payload: &[u8],
        inflater: &mut Inflater,
        on_event: &mut impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<Flow, DecodeError> {
        let Some(message) = self.message.as_mut() else {
            return Err(DecodeError::Protocol("continuation without a message"));
        };
        message.data.extend_from_slice(payload);
        message.frames += 1;
        if !is_final {
            return Ok(Flow::Continue);
        }
        let Some(message) = self.message.take() else {
            return Ok(Flow::Continue);
        };
        let kind = Kind {
            text: message.text,
            compressed: message.compressed,
        };
        self.emit(kind, &message.data, inflater, on_event)
    }

    /// Hands a complete message to the callback (inflated, and text checked to its end).
    fn emit(
        &mut self,
        kind: Kind,
        payload: &[u8],
        inflater: &mut Inflater,
        on_event: &mut impl FnMut(WsEvent<'_>) -> Flow,
    ) -> Result<Flow, DecodeError> {
        let payload = match kind.compressed {
            true => inflater
                .inflate(payload, self.max_payload as usize)
                .map_err(|error| match error {
                    InflateError::TooBig => DecodeError::TooBig,
                    InflateError::Invalid => DecodeError::InvalidCompression,
                })?,
            false => payload,
        };
        let text = kind.text;
        if !text {
            return Ok(on_event(WsEvent::Message(Data::Binary(payload))));
        }
        self.utf8.finish().map_err(|_| DecodeError::InvalidUtf8)?;
        let text = std::str::from_utf8(payload).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(on_event(WsEvent::Message(Data::Text(text))))
    }
}

/// What a data message is, from its first frame.
#[derive(Debug, Clone, Copy)]
struct Kind {
    text: bool,
    /// RSV1: compressed with permessage-deflate.
    compressed: bool,
}

/// Unmasks `bytes`, which start `offset` bytes into the frame's payload (client frames
/// are always masked: checked with the header).
fn unmask(header: &FrameHeader, bytes: &mut [u8], offset: usize) {
    if let Some(mask) = header.mask {
        apply_mask_at(bytes, mask, offset);
    }
}

/// The code of a close frame; a one-byte payload is a protocol error and a reason that
/// is not UTF-8 fails the connection (1007).
fn close_code(payload: &[u8]) -> Result<Option<u16>, DecodeError> {
    match payload {
        [] => Ok(None),
        [_] => Err(DecodeError::Protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            std::str::from_utf8(reason).map_err(|_| DecodeError::InvalidUtf8)?;
            Ok(Some(u16::from_be_bytes([*hi, *lo])))
        }
    }
}

#[cfg(test)]
mod tests;

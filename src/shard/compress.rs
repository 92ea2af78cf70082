//! Which bytes a message is on one connection's wire: its plain frame, or its
//! permessage-deflate frame for a client that negotiated compression.
//!
//! A message the router fanned out is marked ([`Frame::share_compression`]): the first
//! recipient anywhere that takes compressed messages with the full window compresses
//! it, with its shard's [`Deflater`](crate::ws::deflate::Deflater), and every other
//! such recipient on every shard gets the same compressed bytes by refcount. A frame
//! for one client alone (a reply, a message replayed from Redis), and every message to
//! a client that asked for a smaller window, is compressed for that client. Messages
//! shorter than `compression_min_size`, encrypted clients, and what compressing would
//! not shrink go plain.

use bytes::Bytes;

use super::state::Shard;
use crate::conn::Conn;
use crate::protocol::Frame;
use crate::ws::deflate::FULL_WINDOW_BITS;
use crate::ws::frame::OpCode;

impl Shard {
    /// `frame` as `conn` receives it.
    pub fn wire_bytes(&self, conn: &Conn, frame: &Frame) -> Bytes {
        match self.compressed_for(conn, frame) {
            Some(compressed) => {
                self.metrics.compressed_deliveries.inc();
                compressed
            }
            None => frame.bytes().clone(),
        }
    }

    /// `frame` compressed for `conn`, when `conn` takes compressed messages and `frame`
    /// is worth compressing (`None`: send the plain frame).
    pub fn compressed_for(&self, conn: &Conn, frame: &Frame) -> Option<Bytes> {
        match conn.compression_window()? {
            FULL_WINDOW_BITS => self.compressed_form(frame),
            // A client that asked for a smaller window: compressed for it alone.
            bits => self.compressed_alone(frame, bits),
        }
    }

    /// `frame`'s compressed form for recipients that take the full window, when it is
    /// worth compressing: shared when the frame is marked (made by the first recipient
    /// that needs it, on any shard), else made for this one use.
    fn compressed_form(&self, frame: &Frame) -> Option<Bytes> {
        if frame.payload_len() < self.config().compression_min_size {
            return None;
        }
        match frame.shares_compression() {
            true => frame.compressed(|| self.deflate(frame)).cloned(),
            false => self.deflate(frame),
        }
    }

    /// `frame` compressed for one recipient that asked for a window of `2^bits` bytes,
    /// when it is worth compressing.
    fn compressed_alone(&self, frame: &Frame, bits: u8) -> Option<Bytes> {
        if frame.payload_len() < self.config().compression_min_size {
            return None;
        }
        self.metrics.compressions.inc();
        let payload = &frame.payload();
        self.deflater
            .borrow_mut()
            .compress(OpCode::Text, payload, bits, true)
    }

    /// An echo for the conformance server: compressed for a client that takes
    /// compressed messages, every time (a peer may compress what does not shrink; the
    /// Autobahn TestSuite expects every echo compressed), else plain.
    pub fn echo_for(&self, conn: &Conn, opcode: OpCode, payload: &[u8]) -> Bytes {
        let compressed = conn.compression_window().and_then(|bits| {
            self.metrics.compressions.inc();
            self.deflater
                .borrow_mut()
                .compress(opcode, payload, bits, false)
        });
        match compressed {
            Some(frame) => {
                self.metrics.compressed_deliveries.inc();
                frame
            }
            None => crate::ws::frame::data_frame(opcode, payload),
        }
    }

    /// Compresses `frame` with this shard's deflater (counted).
    fn deflate(&self, frame: &Frame) -> Option<Bytes> {
        self.metrics.compressions.inc();
        frame.deflate(&mut self.deflater.borrow_mut())
    }
}

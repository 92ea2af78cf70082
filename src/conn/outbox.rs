//! A connection's outbound queue: shared frames waiting for the socket, bounded by
//! `backpressure_limit`, written with one vectored write per flush.
//!
//! Frames are `Bytes` shared with every other recipient; queueing one is a refcount
//! increment. The queue never holds more than the limit (plus one close frame), so a slow
//! reader costs at most `backpressure_limit` bytes of memory.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::Bytes;

/// At most this many frames go into one `writev`.
const MAX_IOVECS: usize = 64;

/// What happened to a frame offered to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued,
    /// Refused: queueing it would pass the backpressure limit.
    OverLimit,
}

/// The result of writing as much as the socket takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Everything was written.
    Drained,
    /// The socket is full; wait for it to become writable.
    Blocked,
}

/// Frames waiting to be written to one socket.
#[derive(Debug, Default)]
pub struct Outbox {
    frames: VecDeque<Bytes>,
    /// Bytes of the front frame already written.
    written: usize,
    queued: usize,
}

impl Outbox {
    /// Queues `frame` unless the queue would pass `limit` bytes. An empty queue takes
    /// any one frame, however large: the limit bounds what waits, it does not forbid a
    /// large message to a client that keeps up.
    pub fn push(&mut self, frame: Bytes, limit: usize) -> Push {
        if !self.frames.is_empty() && self.queued + frame.len() > limit {
            return Push::OverLimit;
        }
        self.push_unbounded(frame);
        Push::Queued
    }

    /// Queues a frame regardless of the limit (a close frame must always get out).
    pub fn push_unbounded(&mut self, frame: Bytes) {
        self.queued += frame.len();
        self.frames.push_back(frame);
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.queued - self.written
    }

    /// Frames waiting (the first may be partly written).
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Drops everything queued (the connection is gone) and releases the memory.
    pub fn clear(&mut self) {
        self.frames = VecDeque::new();
        self.written = 0;
        self.queued = 0;
    }

    /// Writes as much as `write` accepts without blocking; `write` is one non-blocking
    /// vectored write (`TcpStream::try_write_vectored` on a shard).
    pub fn flush(
        &mut self,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<Flush> {
        while !self.frames.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = self.fill(&mut slices);
            match write(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flush::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.frames.capacity() > 64 {
            self.frames.shrink_to(16);
        }
        Ok(Flush::Drained)
    }

    /// Points `slices` at the unwritten frames (at most [`MAX_IOVECS`]); returns how many.
    fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_IOVECS]) -> usize {
        let mut count = 0;
        for (i, frame) in self.frames.iter().take(MAX_IOVECS).enumerate() {
            let skip = if i == 0 { self.written } else { 0 };
            slices[i] = IoSlice::new(&frame[skip..]);
            count += 1;
        }
        count
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.frames.front() else {
                break;
            };
            let left = front.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.queued -= front.len();
            self.written = 0;
            self.frames.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_queue_takes_one_frame_larger_than_the_limit() {
        let mut o = Outbox::default();
        assert_eq!(o.push(Bytes::from_static(&[0; 30]), 10), Push::Queued);
        assert_eq!(o.push(Bytes::from_static(&[0; 1]), 10), Push::OverLimit);
    }

    #[test]
    fn limit_counts_unwritten_bytes() {
        let mut o = Outbox::default();
        assert_eq!(o.push(Bytes::from_static(&[0; 6]), 10), Push::Queued);
        assert_eq!(o.push(Bytes::from_static(&[0; 6]), 10), Push::OverLimit);
        o.advance(4);
        assert_eq!(o.queued_bytes(), 2);
        o.advance(2);
        assert!(o.is_empty());
        assert_eq!(o.push(Bytes::from_static(&[0; 6]), 10), Push::Queued);
        o.push_unbounded(Bytes::from_static(&[0; 20]));
        assert_eq!(o.queued_bytes(), 26);
    }

    #[test]
    fn flush_writes_what_the_writer_takes_and_reports_blocking() {
        let mut o = Outbox::default();
        o.push_unbounded(Bytes::from_static(b"abc"));
        o.push_unbounded(Bytes::from_static(b"defg"));
        let mut wire = Vec::new();
        let mut budget = 5;
        let flushed = o.flush(|slices| {
            let take = budget.min(slices.iter().map(|s| s.len()).sum());
            if take == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let all: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
            wire.extend_from_slice(&all[..take]);
            budget -= take;
            Ok(take)
        });
        assert_eq!(flushed.unwrap(), Flush::Blocked);
        assert_eq!((wire.as_slice(), o.queued_bytes()), (&b"abcde"[..], 2));
        let flushed = o.flush(|slices| Ok(slices.iter().map(|s| s.len()).sum()));
        assert_eq!((flushed.unwrap(), o.is_empty()), (Flush::Drained, true));
        assert!(o.flush(|_| Ok(0)).is_ok(), "nothing to write");
        o.push_unbounded(Bytes::from_static(b"x"));
        assert!(o.flush(|_| Ok(0)).is_err(), "a zero write is an error");
    }
}

//! Streaming UTF-8 validation: a text message checked as its bytes arrive, across frames
//! and across reads, so invalid bytes are refused at once (RFC 6455 §8.1, "fail fast")
//! rather than when the message completes.
//!
//! The bulk of each chunk goes through `std::str::from_utf8`; only a code point split
//! between two chunks (at most 3 bytes) is carried over.

/// Validation state of one text message: the incomplete code point at the end of what
/// was seen so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Stream {
    tail: [u8; 3],
    tail_len: u8,
}

/// The bytes are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Stream {
    /// Checks the next bytes of the message; an error as soon as they cannot be UTF-8,
    /// whatever follows.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        let rest = self.complete_tail(bytes)?;
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                self.keep(&rest[e.valid_up_to()..]);
                Ok(())
            }
        }
    }

    /// The message ended: fails if it ended inside a code point. Resets the state.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.tail_len == 0;
        *self = Utf8Stream::default();
        complete.then_some(()).ok_or(InvalidUtf8)
    }

    /// Completes a carried code point with the first bytes of `bytes`; returns the rest.
    fn complete_tail<'b>(&mut self, bytes: &'b [u8]) -> Result<&'b [u8], InvalidUtf8> {
        if self.tail_len == 0 {
            return Ok(bytes);
        }
        let have = usize::from(self.tail_len);
        let take = (sequence_len(self.tail[0]) - have).min(bytes.len());
        let mut point = [0u8; 4];
        point[..have].copy_from_slice(&self.tail[..have]);
        point[have..have + take].copy_from_slice(&bytes[..take]);
        match std::str::from_utf8(&point[..have + take]) {
            Ok(_) => self.tail_len = 0,
            Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
            Err(_) => self.keep(&point[..have + take]),
        }
        Ok(&bytes[take..])
    }

    fn keep(&mut self, incomplete: &[u8]) {
        self.tail[..incomplete.len()].copy_from_slice(incomplete);
        self.tail_len = incomplete.len() as u8;
    }
}

/// The length of the sequence a leading byte starts (only called on bytes that
/// `from_utf8` accepted as the start of an incomplete sequence: 2, 3 or 4).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xF4 => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` in chunks of `n`; the index of the chunk that failed, if any.
    fn feed_in(bytes: &[u8], n: usize) -> Result<(), usize> {
        let mut s = Utf8Stream::default();
        for (i, chunk) in bytes.chunks(n.max(1)).enumerate() {
            s.feed(chunk).map_err(|_| i)?;
        }
        s.finish().map_err(|_| usize::MAX)
    }

    #[test]
    fn valid_text_passes_in_any_split() {
        let text = "κόσμε 😀 a\u{10FFFF}\u{7FF}\u{800}".as_bytes();
        for n in 1..=text.len() {
            assert_eq!(feed_in(text, n), Ok(()), "chunks of {n}");
        }
    }

    #[test]
    fn invalid_bytes_fail_in_the_chunk_that_brings_them() {
        // Autobahn 6.4.1: the third byte of a 4-byte sequence makes it > U+10FFFF.
        let mut bytes = "κόσμε".as_bytes().to_vec();
        let bad_at = bytes.len();
        bytes.extend_from_slice(&[0xF4, 0x90, 0x80, 0x80]);
        bytes.extend_from_slice(b"edited");
        for n in 1..=8 {
            let chunk = feed_in(&bytes, n).expect_err("invalid");
            assert_eq!(chunk, (bad_at + 1) / n, "chunks of {n}");
        }
    }

    #[test]
    fn a_message_ending_inside_a_code_point_is_invalid() {
        assert_eq!(feed_in(&[b'a', 0xE2, 0x82], 1), Err(usize::MAX));
        assert!(feed_in(&[0xC0, 0x80], 2).is_err(), "overlong");
        assert!(feed_in(&[0xED, 0xA0, 0x80], 1).is_err(), "surrogate");
        assert!(feed_in(&[0xFF], 1).is_err());
    }
}

//! The text layout of an outbound `encrypted` frame and its exact length.

use super::TAG_LEN;
use super::encoding::b64_len;

/// Base64 of the IV, the only fixed-size field of an encrypted frame.
pub(super) const IV_B64_LEN: usize = 16;
pub(super) const FRAME_HEAD: &[u8] = br#"{"event":"encrypted","data":{"iv":""#;
pub(super) const FRAME_MID: &[u8] = br#"","ct":""#;
pub(super) const FRAME_TAIL: &[u8] = br#""}}"#;

/// Exact length of the frame
/// [`SessionCipher::seal_event_json`](super::SessionCipher::seal_event_json) appends for a
/// plaintext of `plaintext_len` bytes; use it to size outbound buffers.
#[must_use]
pub fn sealed_frame_len(plaintext_len: usize) -> usize {
    FRAME_HEAD.len()
        + IV_B64_LEN
        + FRAME_MID.len()
        + b64_len(plaintext_len + TAG_LEN)
        + FRAME_TAIL.len()
}

//! The text layout of an outbound `encrypted` frame: its exact length, and writing it
//! around a ciphertext sealed in place past its end.

use super::encoding::{b64_len, encode_exact};
use super::{IV_LEN, TAG_LEN};

/// Base64 of the IV, the only fixed-size field of an encrypted frame.
const IV_B64_LEN: usize = 16;
/// The frame up to the IV's value.
const FRAME_HEAD: &[u8] = br#"{"event":"encrypted","data":{"iv":""#;
/// Between the IV's value and the ciphertext's.
const FRAME_MID: &[u8] = br#"","ct":""#;
/// After the ciphertext's value.
const FRAME_TAIL: &[u8] = br#""}}"#;

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

/// Appends the frame up to the ciphertext's value, with a zeroed slot for its base64,
/// and returns where that slot starts. Reserves room for the whole frame plus the
/// ciphertext that is built past its end.
pub(super) fn open_frame(out: &mut Vec<u8>, iv: &[u8; IV_LEN], plaintext_len: usize) -> usize {
    let ct_len = plaintext_len + TAG_LEN;
    out.reserve(sealed_frame_len(plaintext_len) + ct_len);
    out.extend_from_slice(FRAME_HEAD);
    let mut iv_b64 = [0u8; IV_B64_LEN];
    encode_exact(iv, &mut iv_b64);
    out.extend_from_slice(&iv_b64);
    out.extend_from_slice(FRAME_MID);
    let ct_b64_at = out.len();
    out.resize(ct_b64_at + b64_len(ct_len), 0);
    ct_b64_at
}

/// Base64-encodes the ciphertext at `ct_at..` into the slot [`open_frame`] left at
/// `ct_b64_at`, cuts the ciphertext off and closes the frame.
pub(super) fn close_frame(out: &mut Vec<u8>, ct_b64_at: usize, ct_at: usize) {
    let (frame, ct) = out.split_at_mut(ct_at);
    encode_exact(ct, &mut frame[ct_b64_at..]);
    out.truncate(ct_at);
    out.extend_from_slice(FRAME_TAIL);
}

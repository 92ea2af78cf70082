//! Standard base64 as the Ignis helper reads and writes it: the lenient decoder for
//! peer fields, and exact-size encoding into preallocated slots.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use super::CryptoError;

/// Decoder matching Ignis `ECDH.fromBase64`: standard alphabet, canonical padding, and
/// (like Node's `Buffer`) non-zero trailing bits in the last symbol are ignored.
const DECODER: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Decodes the peer's base64 `field`, naming it in the error.
pub(super) fn decode_field(b64: &str, field: &'static str) -> Result<Vec<u8>, CryptoError> {
    DECODER
        .decode(b64)
        .map_err(|_| CryptoError::InvalidBase64 { field })
}

/// Padded base64 length of `n` bytes.
pub(super) const fn b64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Encode into a slot sized with [`b64_len`]; a size mismatch is a bug here, not bad input.
pub(super) fn encode_exact(input: &[u8], slot: &mut [u8]) {
    let written = STANDARD
        .encode_slice(input, slot)
        .expect("slot sized by b64_len");
    debug_assert_eq!(written, slot.len());
}

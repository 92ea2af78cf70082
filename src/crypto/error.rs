//! [`CryptoError`]: why a handshake or a decryption failed.

use super::SALT_LEN;

/// Why a handshake or a decryption failed. Every variant comes from peer input or a
/// caller's argument, never from an internal fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A field is not standard padded base64. The peer sent garbage: fail the handshake
    /// (close 4004) or drop the message; check the client encodes with `btoa` /
    /// `Buffer.toString('base64')`, not base64url.
    #[error("{field} is not valid standard base64")]
    InvalidBase64 {
        /// Which field: `"publicKey"`, `"serverPublicKey"`, `"salt"`, `"iv"` or `"ct"`.
        field: &'static str,
    },
    /// The public key is not a 65-byte uncompressed P-256 point on the curve (compressed
    /// points are refused: Ignis always exports uncompressed). Reject the handshake
    /// ("Encryption handshake failed", close 4004); the client must send
    /// `exportKey('raw', publicKey)` of a P-256 ECDH key.
    #[error("public key is not a raw uncompressed P-256 point")]
    InvalidPublicKey,
    /// The salt is not exactly 32 bytes. Reject the handshake; the server end of the peer
    /// is not an Ignis-compatible implementation.
    #[error("salt must be exactly {SALT_LEN} bytes")]
    InvalidSalt,
    /// A private scalar given for testing is not a valid non-zero P-256 scalar. Fix the
    /// fixture (32 big-endian bytes, `0 < d < n`).
    #[error("private key is not a valid P-256 scalar")]
    InvalidPrivateKey,
    /// The ciphertext does not authenticate under this session key (tampered, truncated,
    /// an IV that is not 12 bytes, or a key from another session). Drop the message; do
    /// not tell the peer more than that.
    #[error("decryption failed")]
    DecryptionFailed,
}

//! Per-client encryption, byte-compatible with the Ignis `ECDH` helper (no sockets here).
//!
//! # The scheme
//!
//! ```text
//! client                                         server (shardcast)
//! ------                                         ------------------
//! ClientKeyPair::generate()
//! authenticate { publicKey: b64(Qc) }  ───────▶  accept_client_key(b64(Qc))
//!                                                  fresh key pair (ds, Qs), fresh 32-byte salt
//!                                                  z   = x(ds · Qc)                 (ECDH P-256)
//!                                                  key = HKDF-SHA256(z, salt, HKDF_INFO)
//! connected { serverPublicKey: b64(Qs),  ◀───────  HandshakeReply
//!             salt: b64(salt) }
//! ClientKeyPair::complete(..)
//!   z = x(dc · Qs), same key
//! ```
//!
//! Every later server → client frame is
//! `{"event":"encrypted","data":{"iv":b64(iv),"ct":b64(AES-256-GCM(key, iv, {"event","data"}) ‖ tag)}}`
//! with a fresh random 12-byte IV (OS randomness, fetched in per-thread blocks), no
//! associated data and the 16-byte tag appended to the ciphertext
//! ([`SessionCipher::seal_event_json`]). Public keys are raw uncompressed SEC1
//! points (65 bytes, `0x04 ‖ x ‖ y`); all base64 is the standard alphabet with padding.
//! The interop vectors in `tests/fixtures/ecdh.json` were produced by the real Ignis class.
//!
//! # Who owns which key
//!
//! - **The client** owns its private scalar `dc` for as long as it likes ([`ClientKeyPair`]).
//! - **The server** never has a process-wide key: [`accept_client_key`] draws a fresh scalar
//!   `ds` per connection, uses it once and drops it before returning (forward secrecy: a
//!   later compromise of the process reveals no past session).
//! - **The connection** owns the derived AES key inside its [`SessionCipher`]; nothing else
//!   keeps a copy. The cipher is `Send + Sync` and takes `&self`, so it can be shared by
//!   reference (or `Arc`) with whatever task seals frames for that client.
//!
//! Secrets are wiped on drop: private scalars (`p256::SecretKey`), the ECDH shared secret
//! (`p256::ecdh::SharedSecret`), the HKDF output ([`Zeroizing`](zeroize::Zeroizing)) and the AES round keys
//! (the `aes` crate's `zeroize` feature). Two residues are outside this module's reach: the
//! HKDF pseudo-random key inside `hmac` state, and the GHASH subkey `H = AES_k(0¹²⁸)`
//! (`polyval`'s CPU-dispatch wrapper does not run the inner drop); neither reveals `key`.
//!
//! # Errors
//!
//! Nothing here panics on peer input: malformed base64, keys, salts or ciphertexts give a
//! [`CryptoError`]. The only panics are unreachable in practice and documented where they
//! live (a plaintext over 64 GiB, an OS random source that fails).

mod encoding;
mod error;
mod frame;
mod handshake;
mod iv;
mod session;

#[cfg(test)]
mod tests;

pub use error::CryptoError;
pub use frame::sealed_frame_len;
pub use handshake::{ClientKeyPair, HandshakeReply, accept_client_key, derive_session_key};
pub use session::{Sealed, SessionCipher};

/// The HKDF `info` string of the Ignis `ECDH` helper (its default; both sides must agree).
pub const HKDF_INFO: &[u8] = b"ignis-ecdh-p256-aes-256-gcm-v1";
/// Length of the HKDF salt the server draws per connection, in bytes.
pub const SALT_LEN: usize = 32;
/// Length of the AES-GCM IV, in bytes.
pub const IV_LEN: usize = 12;
/// Length of the AES-GCM tag appended to every ciphertext, in bytes.
pub const TAG_LEN: usize = 16;
/// Length of a raw uncompressed P-256 public key (`0x04 ‖ x ‖ y`), in bytes.
pub const PUBLIC_KEY_LEN: usize = 65;

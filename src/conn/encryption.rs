//! Per-client encryption as a connection holds it: which connections are encrypted, how,
//! and decrypting what an encrypted client sends.
//!
//! Encrypted clients leave the shared fast path: their messages are sealed for them
//! alone (by the shard's encryptor, in bounded batches), never taken from the frame the
//! other members share.

use serde_json::value::RawValue;

use crate::crypto::SessionCipher;

/// How a connection's outbound messages are transformed.
pub enum Encryption {
    /// The built-in Ignis-compatible ECDH/AES-GCM session.
    Session(Box<SessionCipher>),
    /// The embedder's outbound transformer.
    Transformer,
}

/// Decrypts an inbound `{"event":"encrypted","data":{"iv","ct"}}`'s `data`; `None` when it
/// does not decrypt.
pub fn decrypt(cipher: &SessionCipher, data: Option<&RawValue>) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Sealed<'a> {
        iv: &'a str,
        ct: &'a str,
    }
    let sealed: Sealed<'_> = serde_json::from_str(data?.get()).ok()?;
    cipher.decrypt(sealed.iv, sealed.ct).ok()
}

//! Per-client encryption as a connection holds it: which connections are encrypted, how,
//! and decrypting what an encrypted client sends.
//!
//! Encrypted clients leave the shared fast path: their messages are sealed for them
//! alone (by the shard's encryptor, in bounded batches), never taken from the frame the
//! other members share.

use std::borrow::Cow;

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
    /// Borrowed when unescaped; a JSON encoder may well write base64's `/` as `\/`.
    #[derive(serde::Deserialize)]
    struct Sealed<'a> {
        #[serde(borrow)]
        iv: Cow<'a, str>,
        #[serde(borrow)]
        ct: Cow<'a, str>,
    }
    let sealed: Sealed<'_> = serde_json::from_str(data?.get()).ok()?;
    cipher.decrypt(&sealed.iv, &sealed.ct).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/fuzz_targets/encrypted_payload.rs`: `{"iv","ct"}` with an escaped
    /// `\/` in its base64 (valid JSON, and what many encoders write) did not decrypt.
    #[test]
    fn fuzz_regression_escaped_slash_in_ct_decrypts() {
        let cipher = SessionCipher::from_key_bytes([7; 32]);
        let sealed = (0u8..)
            .map(|i| cipher.encrypt_with_iv([i; 12], b"{\"event\":\"e\"}"))
            .find(|s| s.ct.contains('/'))
            .unwrap();
        let data = format!(
            r#"{{"iv":"{}","ct":"{}"}}"#,
            sealed.iv,
            sealed.ct.replace('/', "\\/")
        );
        let raw = RawValue::from_string(data).unwrap();
        assert_eq!(
            decrypt(&cipher, Some(&raw)).as_deref(),
            Some(&b"{\"event\":\"e\"}"[..])
        );
    }
}

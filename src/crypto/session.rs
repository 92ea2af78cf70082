//! [`SessionCipher`]: one client's AES-256-GCM session, sealing outbound frames and
//! opening inbound [`Sealed`] messages.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroize;

use super::encoding::decode_field;
use super::frame::{close_frame, open_frame};
use super::iv::random_iv;
use super::{CryptoError, IV_LEN, TAG_LEN};

/// One encrypted message as carried on the wire: `{"iv": …, "ct": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The 12-byte IV, standard base64 (always 16 characters).
    pub iv: String,
    /// Ciphertext with the 16-byte tag appended, standard base64.
    pub ct: String,
}

/// The AES-256-GCM session of one client. The key is wiped when this is dropped, and
/// `Debug` never shows it.
///
/// ```
/// use shardcast::crypto::{accept_client_key, ClientKeyPair};
///
/// let client = ClientKeyPair::generate();
/// let (server, reply) = accept_client_key(&client.public_key_b64())?;
/// let client_session = client.complete(&reply.server_public_key, &reply.salt)?;
///
/// let sealed = server.encrypt(br#"{"event":"hi","data":1}"#);
/// let plain = client_session.decrypt(&sealed.iv, &sealed.ct)?;
/// assert_eq!(plain, br#"{"event":"hi","data":1}"#);
/// # Ok::<(), shardcast::crypto::CryptoError>(())
/// ```
pub struct SessionCipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCipher").finish_non_exhaustive()
    }
}

// The connection layer shares a cipher across tasks; keep that promise at compile time.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<SessionCipher>();
};

impl SessionCipher {
    /// A cipher from a 32-byte AES key (for example [`derive_session_key`](super::derive_session_key)'s output).
    /// The argument is wiped after use; the caller's own copies are the caller's to wipe.
    #[must_use]
    pub fn from_key_bytes(mut key: [u8; 32]) -> Self {
        let aead = Aes256Gcm::new(&key.into());
        key.zeroize();
        Self { aead }
    }

    /// Encrypt `plaintext` under a fresh random IV.
    ///
    /// # Panics
    /// Only if the OS random source fails or `plaintext` exceeds 64 GiB.
    #[must_use]
    pub fn encrypt(&self, plaintext: &[u8]) -> Sealed {
        self.encrypt_with_iv(random_iv(), plaintext)
    }

    /// Encrypt under a caller-chosen IV. **Never reuse an IV with the same session**: it
    /// breaks both confidentiality and authenticity. Meant for interop vectors and tests;
    /// use [`encrypt`](Self::encrypt) otherwise.
    ///
    /// # Panics
    /// Only if `plaintext` exceeds 64 GiB (the AES-GCM limit).
    #[must_use]
    pub fn encrypt_with_iv(&self, iv: [u8; IV_LEN], plaintext: &[u8]) -> Sealed {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        let tag = self.seal_in_place(&iv, &mut buf);
        buf.extend_from_slice(&tag);
        Sealed {
            iv: STANDARD.encode(iv),
            ct: STANDARD.encode(&buf),
        }
    }

    /// Decrypt the `iv` and `ct` of an `encrypted` message (both standard base64).
    ///
    /// # Errors
    /// [`CryptoError::InvalidBase64`] for bad base64, [`CryptoError::DecryptionFailed`]
    /// for anything that does not authenticate under this session.
    pub fn decrypt(&self, iv_b64: &str, ct_b64: &str) -> Result<Vec<u8>, CryptoError> {
        let iv = decode_field(iv_b64, "iv")?;
        let mut buf = decode_field(ct_b64, "ct")?;
        let iv =
            <[u8; IV_LEN]>::try_from(iv.as_slice()).map_err(|_| CryptoError::DecryptionFailed)?;
        let Some(pt_len) = buf.len().checked_sub(TAG_LEN) else {
            return Err(CryptoError::DecryptionFailed);
        };
        let (ct, tag) = buf.split_at_mut(pt_len);
        let tag = <[u8; TAG_LEN]>::try_from(&*tag).map_err(|_| CryptoError::DecryptionFailed)?;
        self.aead
            .decrypt_in_place_detached(&Nonce::from(iv), b"", ct, &Tag::from(tag))
            .map_err(|_| CryptoError::DecryptionFailed)?;
        buf.truncate(pt_len);
        Ok(buf)
    }

    /// Append the whole outbound frame text
    /// `{"event":"encrypted","data":{"iv":"…","ct":"…"}}` to `out`, for a plaintext that is
    /// already the JSON `{"event":…,"data":…}`. Uses a fresh random IV.
    ///
    /// No allocation besides growing `out` (reuse it and there is none): the plaintext is
    /// copied past the end of the frame, encrypted there in place, base64-encoded into
    /// its slot, and the scratch tail is truncated away.
    ///
    /// # Panics
    /// Only if the OS random source fails or `plaintext_json` exceeds 64 GiB.
    pub fn seal_event_json(&self, plaintext_json: &[u8], out: &mut Vec<u8>) {
        self.seal_event_json_with_iv(random_iv(), plaintext_json, out);
    }

    /// [`seal_event_json`](Self::seal_event_json) with a caller-chosen IV. **Never reuse an
    /// IV with the same session.** For interop vectors and tests.
    ///
    /// # Panics
    /// Only if `plaintext_json` exceeds 64 GiB.
    pub fn seal_event_json_with_iv(
        &self,
        iv: [u8; IV_LEN],
        plaintext_json: &[u8],
        out: &mut Vec<u8>,
    ) {
        let ct_b64_at = open_frame(out, &iv, plaintext_json.len());
        let ct_at = out.len();
        out.extend_from_slice(plaintext_json);
        let tag = self.seal_in_place(&iv, &mut out[ct_at..]);
        out.extend_from_slice(&tag);
        close_frame(out, ct_b64_at, ct_at);
    }

    /// Encrypt `buf` in place and return the tag.
    fn seal_in_place(&self, iv: &[u8; IV_LEN], buf: &mut [u8]) -> [u8; TAG_LEN] {
        self.aead
            .encrypt_in_place_detached(&Nonce::from(*iv), b"", buf)
            .expect("AES-GCM only refuses plaintexts over 64 GiB")
            .into()
    }
}

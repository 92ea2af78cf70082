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
//! (`p256::ecdh::SharedSecret`), the HKDF output ([`Zeroizing`]) and the AES round keys
//! (the `aes` crate's `zeroize` feature). Two residues are outside this module's reach: the
//! HKDF pseudo-random key inside `hmac` state, and the GHASH subkey `H = AES_k(0¹²⁸)`
//! (`polyval`'s CPU-dispatch wrapper does not run the inner drop); neither reveals `key`.
//!
//! # Errors
//!
//! Nothing here panics on peer input: malformed base64, keys, salts or ciphertexts give a
//! [`CryptoError`]. The only panics are unreachable in practice and documented where they
//! live (a plaintext over 64 GiB, an OS random source that fails).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hkdf::Hkdf;
use p256::elliptic_curve::rand_core::{OsRng, RngCore};
use p256::{PublicKey, SecretKey};
use sha2::Sha256;
use std::cell::RefCell;
use zeroize::{Zeroize, Zeroizing};

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

/// Base64 of the IV, the only fixed-size field of an encrypted frame.
const IV_B64_LEN: usize = 16;
const FRAME_HEAD: &[u8] = br#"{"event":"encrypted","data":{"iv":""#;
const FRAME_MID: &[u8] = br#"","ct":""#;
const FRAME_TAIL: &[u8] = br#""}}"#;

/// Decoder matching Ignis `ECDH.fromBase64`: standard alphabet, canonical padding, and
/// (like Node's `Buffer`) non-zero trailing bits in the last symbol are ignored.
const DECODER: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

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

/// What the server sends back in `connected`: `serverPublicKey` and `salt`, both base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeReply {
    /// The server's per-connection public key, raw uncompressed SEC1, standard base64.
    pub server_public_key: String,
    /// The 32-byte HKDF salt, standard base64.
    pub salt: String,
}

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
    /// A cipher from a 32-byte AES key (for example [`derive_session_key`]'s output).
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
        let ct_len = plaintext_json.len() + TAG_LEN;
        out.reserve(sealed_frame_len(plaintext_json.len()) + ct_len);
        out.extend_from_slice(FRAME_HEAD);
        let mut iv_b64 = [0u8; IV_B64_LEN];
        encode_exact(&iv, &mut iv_b64);
        out.extend_from_slice(&iv_b64);
        out.extend_from_slice(FRAME_MID);
        let ct_b64_at = out.len();
        out.resize(ct_b64_at + b64_len(ct_len), 0);
        let ct_at = out.len();
        out.extend_from_slice(plaintext_json);
        let tag = self.seal_in_place(&iv, &mut out[ct_at..]);
        out.extend_from_slice(&tag);
        let (frame, ct) = out.split_at_mut(ct_at);
        encode_exact(ct, &mut frame[ct_b64_at..]);
        out.truncate(ct_at);
        out.extend_from_slice(FRAME_TAIL);
    }

    /// Encrypt `buf` in place and return the tag.
    fn seal_in_place(&self, iv: &[u8; IV_LEN], buf: &mut [u8]) -> [u8; TAG_LEN] {
        self.aead
            .encrypt_in_place_detached(&Nonce::from(*iv), b"", buf)
            .expect("AES-GCM only refuses plaintexts over 64 GiB")
            .into()
    }
}

/// Exact length of the frame [`SessionCipher::seal_event_json`] appends for a plaintext of
/// `plaintext_len` bytes; use it to size outbound buffers.
#[must_use]
pub fn sealed_frame_len(plaintext_len: usize) -> usize {
    FRAME_HEAD.len()
        + IV_B64_LEN
        + FRAME_MID.len()
        + b64_len(plaintext_len + TAG_LEN)
        + FRAME_TAIL.len()
}

/// Server side of the handshake: import the client's raw public key (base64), draw a
/// fresh per-connection key pair and a random 32-byte salt, and derive the session key.
/// The server's private key is dropped (and wiped) before this returns.
///
/// # Errors
/// [`CryptoError::InvalidBase64`] or [`CryptoError::InvalidPublicKey`] for a bad client key.
///
/// # Panics
/// Only if the OS random source fails.
pub fn accept_client_key(
    client_public_key_b64: &str,
) -> Result<(SessionCipher, HandshakeReply), CryptoError> {
    let server_secret = SecretKey::random(&mut OsRng);
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    accept_with(&server_secret, &salt, client_public_key_b64)
}

fn accept_with(
    server_secret: &SecretKey,
    salt: &[u8],
    client_public_key_b64: &str,
) -> Result<(SessionCipher, HandshakeReply), CryptoError> {
    let client_key = parse_public_key(client_public_key_b64, "publicKey")?;
    let cipher = session_from(server_secret, &client_key, salt)?;
    let reply = HandshakeReply {
        server_public_key: public_key_b64(server_secret),
        salt: STANDARD.encode(salt),
    };
    Ok((cipher, reply))
}

/// Client side of the handshake (used by the Rust test client and the load tester):
/// a P-256 key pair whose public half goes into `authenticate.data.publicKey`.
pub struct ClientKeyPair {
    secret: SecretKey,
}

impl std::fmt::Debug for ClientKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeyPair")
            .field("public_key", &self.public_key_b64())
            .finish_non_exhaustive()
    }
}

impl ClientKeyPair {
    /// A fresh random key pair.
    ///
    /// # Panics
    /// Only if the OS random source fails.
    #[must_use]
    pub fn generate() -> Self {
        Self {
            secret: SecretKey::random(&mut OsRng),
        }
    }

    /// A key pair from a fixed scalar `d` (32 big-endian bytes, as in a JWK's `d`).
    /// **For interop vectors and tests only.**
    ///
    /// # Errors
    /// [`CryptoError::InvalidPrivateKey`] unless `scalar` is 32 bytes with `0 < d < n`.
    #[doc(hidden)]
    pub fn from_scalar_bytes(scalar: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self {
            secret: secret_from_scalar(scalar)?,
        })
    }

    /// The public key to send: raw uncompressed SEC1 (65 bytes), standard base64.
    #[must_use]
    pub fn public_key_b64(&self) -> String {
        public_key_b64(&self.secret)
    }

    /// Finish the handshake with the `serverPublicKey` and `salt` of the `connected` event.
    ///
    /// # Errors
    /// [`CryptoError::InvalidBase64`], [`CryptoError::InvalidPublicKey`] or
    /// [`CryptoError::InvalidSalt`] when the server's reply is malformed.
    pub fn complete(
        &self,
        server_public_key_b64: &str,
        salt_b64: &str,
    ) -> Result<SessionCipher, CryptoError> {
        let server_key = parse_public_key(server_public_key_b64, "serverPublicKey")?;
        let salt = decode_field(salt_b64, "salt")?;
        session_from(&self.secret, &server_key, &salt)
    }
}

/// HKDF-SHA256 of the ECDH shared secret (`ikm`, the 32-byte x coordinate) with `salt`
/// and [`HKDF_INFO`], giving the 32-byte AES-256-GCM key. Wiped when dropped.
///
/// # Panics
/// Never: 32 bytes is far below HKDF-SHA256's output limit.
#[must_use]
pub fn derive_session_key(shared_secret: &[u8], salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), shared_secret)
        .expand(HKDF_INFO, key.as_mut())
        .expect("32 bytes is far below HKDF-SHA256's 8160-byte limit");
    key
}

fn session_from(
    secret: &SecretKey,
    peer: &PublicKey,
    salt: &[u8],
) -> Result<SessionCipher, CryptoError> {
    if salt.len() != SALT_LEN {
        return Err(CryptoError::InvalidSalt);
    }
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
    let key = derive_session_key(shared.raw_secret_bytes(), salt);
    Ok(SessionCipher::from_key_bytes(*key))
}

/// Raw uncompressed point only (65 bytes, `0x04 ‖ x ‖ y`, what Ignis's `exportKey('raw')`
/// gives); `p256` checks the point is on the curve and not the identity.
fn parse_public_key(b64: &str, field: &'static str) -> Result<PublicKey, CryptoError> {
    let raw = decode_field(b64, field)?;
    if raw.len() != PUBLIC_KEY_LEN || raw[0] != 0x04 {
        return Err(CryptoError::InvalidPublicKey);
    }
    PublicKey::from_sec1_bytes(&raw).map_err(|_| CryptoError::InvalidPublicKey)
}

/// Exactly 32 bytes (`SecretKey::from_slice` would also left-pad shorter input).
fn secret_from_scalar(scalar: &[u8]) -> Result<SecretKey, CryptoError> {
    let mut bytes = <[u8; 32]>::try_from(scalar).map_err(|_| CryptoError::InvalidPrivateKey)?;
    let secret = SecretKey::from_bytes(&bytes.into()).map_err(|_| CryptoError::InvalidPrivateKey);
    bytes.zeroize();
    secret
}

fn public_key_b64(secret: &SecretKey) -> String {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    STANDARD.encode(secret.public_key().to_encoded_point(false).as_bytes())
}

fn decode_field(b64: &str, field: &'static str) -> Result<Vec<u8>, CryptoError> {
    DECODER
        .decode(b64)
        .map_err(|_| CryptoError::InvalidBase64 { field })
}

/// A fresh IV from the OS random source, cut from a per-thread block so that one
/// `getrandom` call serves [`IV_POOL_LEN`]` / 12` messages (it cost over half of a 165-byte
/// seal). IVs are public, so holding the next ones in memory reveals nothing; each byte is
/// handed out once. A `fork`ed child would repeat its parent's pending IVs, which is
/// harmless unless both go on encrypting under the same session keys.
fn random_iv() -> [u8; IV_LEN] {
    thread_local! {
        static POOL: RefCell<IvPool> = const {
            RefCell::new(IvPool { buf: [0; IV_POOL_LEN], at: IV_POOL_LEN })
        };
    }
    POOL.with_borrow_mut(IvPool::take)
}

/// Bytes of OS randomness fetched at once for IVs (a multiple of [`IV_LEN`]).
const IV_POOL_LEN: usize = IV_LEN * 341;

struct IvPool {
    buf: [u8; IV_POOL_LEN],
    at: usize,
}

impl IvPool {
    fn take(&mut self) -> [u8; IV_LEN] {
        if self.at == IV_POOL_LEN {
            OsRng.fill_bytes(&mut self.buf);
            self.at = 0;
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&self.buf[self.at..self.at + IV_LEN]);
        self.at += IV_LEN;
        iv
    }
}

/// Padded base64 length of `n` bytes.
const fn b64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Encode into a slot sized with [`b64_len`]; a size mismatch is a bug in this module.
fn encode_exact(input: &[u8], slot: &mut [u8]) {
    let written = STANDARD
        .encode_slice(input, slot)
        .expect("slot sized by b64_len");
    debug_assert_eq!(written, slot.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::pkcs8::DecodePrivateKey;
    use serde_json::Value;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ecdh.json"
    ));

    /// One Ignis vector, fields as strings.
    struct Vector(Value);

    impl Vector {
        fn s(&self, key: &str) -> &str {
            self.0[key]
                .as_str()
                .unwrap_or_else(|| panic!("vector field {key}"))
        }
        fn d(&self, side: &str) -> Vec<u8> {
            let d = URL_SAFE_NO_PAD.decode(self.s(&format!("{side}_private_d_b64url")));
            d.expect("d is base64url")
        }
        fn iv(&self) -> [u8; IV_LEN] {
            let iv = STANDARD.decode(self.s("iv_b64")).expect("iv b64");
            iv.try_into().expect("12-byte iv")
        }
        fn sealed(&self) -> Sealed {
            Sealed {
                iv: self.s("iv_b64").into(),
                ct: self.s("ct_b64").into(),
            }
        }
    }

    fn vectors() -> Vec<Vector> {
        let doc: Value = serde_json::from_str(VECTORS).expect("fixture is JSON");
        let list = doc["vectors"].as_array().expect("vectors array").clone();
        assert!(!list.is_empty());
        list.into_iter().map(Vector).collect()
    }

    /// The raw ECDH shared secret (x coordinate) of a fixed scalar and a peer key.
    fn shared_secret(scalar: &[u8], peer_b64: &str) -> [u8; 32] {
        let secret = secret_from_scalar(scalar).expect("scalar");
        let peer = parse_public_key(peer_b64, "publicKey").expect("peer key");
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
        (*shared.raw_secret_bytes()).into()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .fold(String::new(), |hex, b| hex + &format!("{b:02x}"))
    }

    /// Decrypts the vector's `ct`, re-encrypts its plaintext to exactly `ct`, and seals
    /// the exact frame text.
    fn assert_session_matches(cipher: &SessionCipher, v: &Vector) {
        let plaintext = v.s("plaintext").as_bytes();
        let got = cipher
            .decrypt(v.s("iv_b64"), v.s("ct_b64"))
            .expect("vector decrypts");
        assert_eq!(got, plaintext);
        assert_eq!(cipher.encrypt_with_iv(v.iv(), plaintext), v.sealed());
        let mut frame = b"prefix".to_vec();
        cipher.seal_event_json_with_iv(v.iv(), plaintext, &mut frame);
        let want = format!(
            r#"prefix{{"event":"encrypted","data":{{"iv":"{}","ct":"{}"}}}}"#,
            v.s("iv_b64"),
            v.s("ct_b64")
        );
        assert_eq!(String::from_utf8(frame).expect("utf-8"), want);
        assert_eq!(
            want.len() - "prefix".len(),
            sealed_frame_len(plaintext.len())
        );
    }

    #[test]
    fn vectors_fixture_is_for_our_info_string() {
        for v in vectors() {
            assert_eq!(v.s("hkdf_info").as_bytes(), HKDF_INFO);
        }
    }

    #[test]
    fn vectors_pkcs8_and_raw_scalar_agree() {
        for v in vectors() {
            for side in ["client", "server"] {
                let der = STANDARD
                    .decode(v.s(&format!("{side}_private_pkcs8_b64")))
                    .expect("b64");
                let key = SecretKey::from_pkcs8_der(&der).expect("PKCS#8 P-256 key");
                assert_eq!(key.to_bytes()[..], v.d(side)[..], "{side}");
                let pair = ClientKeyPair::from_scalar_bytes(&v.d(side)).expect("scalar");
                assert_eq!(
                    pair.public_key_b64(),
                    v.s(&format!("{side}_public_raw_b64"))
                );
            }
        }
    }

    #[test]
    fn vectors_shared_secret_both_sides() {
        for v in vectors() {
            let c = shared_secret(&v.d("client"), v.s("server_public_raw_b64"));
            let s = shared_secret(&v.d("server"), v.s("client_public_raw_b64"));
            assert_eq!(hex(&c), v.s("shared_secret_hex"), "client side");
            assert_eq!(hex(&s), v.s("shared_secret_hex"), "server side");
        }
    }

    #[test]
    fn vectors_server_side() {
        for v in vectors() {
            let salt = STANDARD.decode(v.s("salt_b64")).expect("salt");
            let server = secret_from_scalar(&v.d("server")).expect("scalar");
            let (cipher, reply) = accept_with(&server, &salt, v.s("client_public_raw_b64"))
                .expect("server accepts the Ignis client key");
            assert_eq!(reply.server_public_key, v.s("server_public_raw_b64"));
            assert_eq!(reply.salt, v.s("salt_b64"));
            assert_session_matches(&cipher, &v);
        }
    }

    #[test]
    fn vectors_client_side() {
        for v in vectors() {
            let pair = ClientKeyPair::from_scalar_bytes(&v.d("client")).expect("scalar");
            let cipher = pair
                .complete(v.s("server_public_raw_b64"), v.s("salt_b64"))
                .expect("client completes");
            assert_session_matches(&cipher, &v);
        }
    }

    #[test]
    fn vectors_derive_session_key_directly() {
        for v in vectors() {
            let secret = shared_secret(&v.d("client"), v.s("server_public_raw_b64"));
            let salt = STANDARD.decode(v.s("salt_b64")).expect("salt");
            let key = derive_session_key(&secret, &salt);
            assert_session_matches(&SessionCipher::from_key_bytes(*key), &v);
        }
    }

    fn handshake() -> (SessionCipher, SessionCipher) {
        let client = ClientKeyPair::generate();
        let (server, reply) = accept_client_key(&client.public_key_b64()).expect("accept");
        assert_eq!(STANDARD.decode(&reply.salt).expect("salt").len(), SALT_LEN);
        let client = client
            .complete(&reply.server_public_key, &reply.salt)
            .expect("complete");
        (server, client)
    }

    #[test]
    fn round_trip_server_client_both_ways() {
        let (server, client) = handshake();
        let down = server.encrypt(br#"{"event":"a","data":[1]}"#);
        assert_eq!(
            client.decrypt(&down.iv, &down.ct).expect("down"),
            br#"{"event":"a","data":[1]}"#
        );
        let up = client.encrypt(b"");
        assert_eq!(server.decrypt(&up.iv, &up.ct).expect("up"), b"");
    }

    #[test]
    fn each_handshake_uses_a_fresh_server_key_and_salt() {
        let client = ClientKeyPair::generate();
        let (_, a) = accept_client_key(&client.public_key_b64()).expect("a");
        let (_, b) = accept_client_key(&client.public_key_b64()).expect("b");
        assert_ne!(a.server_public_key, b.server_public_key);
        assert_ne!(a.salt, b.salt);
    }

    #[test]
    fn random_ivs_never_repeat_across_pool_refills() {
        let ivs: std::collections::HashSet<_> =
            (0..3 * IV_POOL_LEN / IV_LEN).map(|_| random_iv()).collect();
        assert_eq!(ivs.len(), 3 * IV_POOL_LEN / IV_LEN);
        let (server, _) = handshake();
        assert_ne!(server.encrypt(b"x").iv, server.encrypt(b"x").iv);
    }

    #[test]
    fn malformed_public_keys_are_errors() {
        let good = STANDARD
            .decode(ClientKeyPair::generate().public_key_b64())
            .expect("b64");
        let mut off_curve = good.clone();
        off_curve[64] ^= 1;
        let mut compressed = vec![0x02 | (good[64] & 1)];
        compressed.extend_from_slice(&good[1..33]);
        let mut wrong_tag = good.clone();
        wrong_tag[0] = 0x06;
        let cases: [(&str, String, CryptoError); 8] = [
            ("empty", String::new(), CryptoError::InvalidPublicKey),
            (
                "identity",
                STANDARD.encode([0u8]),
                CryptoError::InvalidPublicKey,
            ),
            (
                "short",
                STANDARD.encode(&good[..64]),
                CryptoError::InvalidPublicKey,
            ),
            (
                "off curve",
                STANDARD.encode(&off_curve),
                CryptoError::InvalidPublicKey,
            ),
            (
                "compressed",
                STANDARD.encode(&compressed),
                CryptoError::InvalidPublicKey,
            ),
            (
                "hybrid tag",
                STANDARD.encode(&wrong_tag),
                CryptoError::InvalidPublicKey,
            ),
            (
                "not base64",
                "BK!!".into(),
                CryptoError::InvalidBase64 { field: "publicKey" },
            ),
            (
                "base64url",
                URL_SAFE_NO_PAD.encode(&good),
                CryptoError::InvalidBase64 { field: "publicKey" },
            ),
        ];
        for (name, b64, want) in cases {
            assert_eq!(accept_client_key(&b64).err(), Some(want), "server: {name}");
        }
        let client = ClientKeyPair::generate();
        let salt = STANDARD.encode([7u8; SALT_LEN]);
        let bad = client.complete(&STANDARD.encode(&compressed), &salt).err();
        assert_eq!(bad, Some(CryptoError::InvalidPublicKey));
    }

    #[test]
    fn bad_salts_are_errors() {
        let client = ClientKeyPair::generate();
        let (_, reply) = accept_client_key(&client.public_key_b64()).expect("accept");
        let short = STANDARD.encode([1u8; 16]);
        let want = Some(CryptoError::InvalidSalt);
        assert_eq!(
            client.complete(&reply.server_public_key, &short).err(),
            want
        );
        assert_eq!(client.complete(&reply.server_public_key, "").err(), want);
        let bad = client.complete(&reply.server_public_key, "%%%%").err();
        assert_eq!(bad, Some(CryptoError::InvalidBase64 { field: "salt" }));
    }

    #[test]
    fn bad_private_scalars_are_errors() {
        let want = Some(CryptoError::InvalidPrivateKey);
        assert_eq!(ClientKeyPair::from_scalar_bytes(&[0u8; 32]).err(), want);
        assert_eq!(ClientKeyPair::from_scalar_bytes(&[1u8; 31]).err(), want);
        assert_eq!(ClientKeyPair::from_scalar_bytes(&[0xffu8; 32]).err(), want);
    }

    #[test]
    fn tampering_gives_decryption_failed() {
        let (server, client) = handshake();
        let sealed = server.encrypt(br#"{"event":"x","data":"secret"}"#);
        let iv = STANDARD.decode(&sealed.iv).expect("iv");
        let ct = STANDARD.decode(&sealed.ct).expect("ct");
        let flip = |bytes: &[u8], at: usize| {
            let mut v = bytes.to_vec();
            v[at] ^= 0x80;
            STANDARD.encode(v)
        };
        let failed = Err(CryptoError::DecryptionFailed);
        assert_eq!(client.decrypt(&flip(&iv, 0), &sealed.ct), failed, "iv");
        assert_eq!(
            client.decrypt(&sealed.iv, &flip(&ct, 0)),
            failed,
            "ciphertext"
        );
        assert_eq!(
            client.decrypt(&sealed.iv, &flip(&ct, ct.len() - 1)),
            failed,
            "tag"
        );
        assert_eq!(
            client.decrypt(&sealed.iv, &STANDARD.encode(&ct[..15])),
            failed,
            "short"
        );
        assert_eq!(client.decrypt(&sealed.iv, ""), failed, "empty ct");
        assert_eq!(
            client.decrypt(&STANDARD.encode(&iv[..8]), &sealed.ct),
            failed,
            "iv length"
        );
        let (_, stranger) = handshake();
        assert_eq!(
            stranger.decrypt(&sealed.iv, &sealed.ct),
            failed,
            "other session"
        );
        let bad = client.decrypt("not base64!", &sealed.ct);
        assert_eq!(bad, Err(CryptoError::InvalidBase64 { field: "iv" }));
    }

    #[test]
    fn seal_event_json_is_an_encrypted_frame_that_decrypts_back() {
        let (server, client) = handshake();
        let plaintext = br#"{"event":"room:update","data":{"text":"h\u00e9llo","n":[1,2,3]}}"#;
        let mut out = Vec::new();
        for _ in 0..3 {
            out.clear();
            server.seal_event_json(plaintext, &mut out);
            assert_eq!(out.len(), sealed_frame_len(plaintext.len()));
            let frame: Value = serde_json::from_slice(&out).expect("frame is JSON");
            let obj = frame.as_object().expect("object");
            assert_eq!(obj.len(), 2);
            assert_eq!(frame["event"], "encrypted");
            let data = frame["data"].as_object().expect("data object");
            assert_eq!(data.len(), 2);
            let (iv, ct) = (
                data["iv"].as_str().expect("iv"),
                data["ct"].as_str().expect("ct"),
            );
            assert_eq!(iv.len(), 16);
            assert_eq!(client.decrypt(iv, ct).expect("decrypts"), plaintext);
        }
    }

    #[test]
    fn seal_event_json_appends_and_handles_every_length() {
        let (server, client) = handshake();
        for len in 0..50 {
            let plaintext = vec![b'a'; len];
            let mut out = b"keep".to_vec();
            server.seal_event_json(&plaintext, &mut out);
            assert!(out.starts_with(b"keep"));
            let frame: Value = serde_json::from_slice(&out[4..]).expect("JSON");
            let data = &frame["data"];
            let got = client.decrypt(
                data["iv"].as_str().expect("iv"),
                data["ct"].as_str().expect("ct"),
            );
            assert_eq!(got.expect("decrypts"), plaintext, "len {len}");
        }
    }

    #[test]
    fn debug_never_prints_key_material() {
        let key = [0xabu8; 32];
        let shown = format!("{:?}", SessionCipher::from_key_bytes(key));
        assert_eq!(shown, "SessionCipher { .. }");
        let pair = ClientKeyPair::from_scalar_bytes(&key).expect("scalar");
        let shown = format!("{pair:?}");
        assert!(shown.contains(&pair.public_key_b64()));
        assert!(!shown.to_lowercase().contains("abab"));
    }
}

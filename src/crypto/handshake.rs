//! The ECDH handshake: the server side ([`accept_client_key`]), the client side
//! ([`ClientKeyPair`]) and the key derivation both share ([`derive_session_key`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use p256::elliptic_curve::rand_core::{OsRng, RngCore};
use p256::{PublicKey, SecretKey};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::encoding::decode_field;
use super::{CryptoError, HKDF_INFO, PUBLIC_KEY_LEN, SALT_LEN, SessionCipher};

/// What the server sends back in `connected`: `serverPublicKey` and `salt`, both base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeReply {
    /// The server's per-connection public key, raw uncompressed SEC1, standard base64.
    pub server_public_key: String,
    /// The 32-byte HKDF salt, standard base64.
    pub salt: String,
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

pub(super) fn accept_with(
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
pub(super) fn parse_public_key(b64: &str, field: &'static str) -> Result<PublicKey, CryptoError> {
    let raw = decode_field(b64, field)?;
    if raw.len() != PUBLIC_KEY_LEN || raw[0] != 0x04 {
        return Err(CryptoError::InvalidPublicKey);
    }
    PublicKey::from_sec1_bytes(&raw).map_err(|_| CryptoError::InvalidPublicKey)
}

/// Exactly 32 bytes (`SecretKey::from_slice` would also left-pad shorter input).
pub(super) fn secret_from_scalar(scalar: &[u8]) -> Result<SecretKey, CryptoError> {
    let mut bytes = <[u8; 32]>::try_from(scalar).map_err(|_| CryptoError::InvalidPrivateKey)?;
    let secret = SecretKey::from_bytes(&bytes.into()).map_err(|_| CryptoError::InvalidPrivateKey);
    bytes.zeroize();
    secret
}

fn public_key_b64(secret: &SecretKey) -> String {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    STANDARD.encode(secret.public_key().to_encoded_point(false).as_bytes())
}

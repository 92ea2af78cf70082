//! Per-client encryption as the engine sees it: which connections are encrypted, how,
//! and the hooks embedders can supply instead of the built-in ECDH handshake.
//!
//! Encrypted clients leave the shared fast path: a delivery queues an [`EncryptJob`] on
//! the shard instead of the shared frame, and the shard's encryptor task seals at most
//! `encrypted_batch_limit` jobs before yielding, so plain members of the same room (whose
//! frames are flushed at the end of the delivery batch) never wait for encryption.

use std::sync::Arc;

use bytes::Bytes;

use crate::auth::LocalFuture;
use crate::crypto::SessionCipher;
use crate::id::ClientId;
use crate::shard::index::Slot;

/// How a connection's outbound messages are transformed.
pub enum Encryption {
    /// The built-in Ignis-compatible ECDH/AES-GCM session.
    Session(Box<SessionCipher>),
    /// The embedder's [`OutboundTransformer`].
    Transformer,
}

/// One message waiting to be encrypted for one client.
pub(crate) struct EncryptJob {
    pub slot: Slot,
    pub client_id: ClientId,
    /// The plaintext `{"event":…,"data":…}` (a slice of the shared frame).
    pub payload: Bytes,
}

/// What an embedder's handshake sees.
#[derive(Debug, Clone)]
pub struct HandshakeRequest {
    /// The connection.
    pub client_id: ClientId,
    /// The raw `authenticate` data.
    pub data: Option<Arc<serde_json::value::RawValue>>,
}

/// An embedder's encryption handshake (Ignis `handshakeFn`), run after the authenticator
/// accepts when `require_encryption` is set. `Some(fields)` succeeds and adds `fields` to
/// `connected.data`; `None` fails with "Encryption handshake failed" and close 4004.
pub trait Handshake: Send + Sync + 'static {
    /// Performs the handshake.
    fn handshake(
        &self,
        request: HandshakeRequest,
    ) -> LocalFuture<Option<serde_json::Map<String, serde_json::Value>>>;
}

/// An embedder's per-client transformation of outbound messages (Ignis
/// `outboundTransformer`): given the plaintext `{"event","data"}` JSON, return the JSON
/// text to send instead, or `None` to send it unchanged.
pub trait OutboundTransformer: Send + Sync + 'static {
    /// Transforms one message for one client.
    fn transform(&self, client_id: ClientId, message_json: &[u8]) -> Option<Vec<u8>>;
}

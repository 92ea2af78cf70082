//! Hooks that replace the built-in Ignis ECDH encryption: an embedder's [`Handshake`]
//! (Ignis `handshakeFn`) and its per-client [`OutboundTransformer`].

use std::sync::Arc;

use super::LocalFuture;
use crate::id::ClientId;

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

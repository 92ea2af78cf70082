//! The encrypted path: messages for encrypted clients wait on the shard's encrypt queue
//! and the encryptor task seals at most `encrypted_batch_limit` of them before yielding,
//! so plain members of the same room (flushed at the end of the delivery batch) never
//! wait for encryption.

use std::rc::Rc;

use bytes::Bytes;

use super::index::Slot;
use super::state::{Shard, ShardState};
use crate::conn::Conn;
use crate::conn::encryption::Encryption;
use crate::hooks::OutboundTransformer;
use crate::id::ClientId;
use crate::protocol::Frame;

/// One message waiting to be encrypted for one client.
pub(crate) struct EncryptJob {
    pub slot: Slot,
    /// Guards against a slot reused by another connection meanwhile.
    pub client_id: ClientId,
    /// The plaintext `{"event":…,"data":…}` (a slice of the shared frame).
    pub payload: Bytes,
    /// The broker's stamp of the message (delivery latency starts there).
    pub stamp: u64,
}

impl Shard {
    /// Seals up to `encrypted_batch_limit` queued messages for encrypted clients and
    /// queues the results; returns whether more are waiting.
    pub fn encrypt_batch(&self) -> bool {
        let transformer = self.ctx.hooks.transformer.as_deref();
        let mut state = self.state.borrow_mut();
        let ShardState {
            conns,
            dirty,
            encrypt_queue,
            ..
        } = &mut *state;
        let mut scratch = Vec::new();
        for _ in 0..self.config().encrypted_batch_limit {
            let Some(job) = encrypt_queue.pop_front() else {
                return false;
            };
            let Some(entry) = conns
                .get_mut(job.slot)
                .filter(|e| e.conn.id() == job.client_id)
            else {
                continue;
            };
            let seal = |conn: &Conn| seal(conn, &job.payload, transformer, &mut scratch);
            if entry.conn.queue_sealed(job.payload.len(), seal) {
                entry.delivered(job.stamp);
                entry.mark_dirty(job.slot, dirty);
                self.metrics.encrypted_deliveries.inc();
            }
        }
        !encrypt_queue.is_empty()
    }
}

/// The frame `conn` receives for `payload`: sealed with its session, transformed by the
/// embedder, or (neither) the plaintext.
pub(super) fn seal(
    conn: &Conn,
    payload: &[u8],
    transformer: Option<&dyn OutboundTransformer>,
    scratch: &mut Vec<u8>,
) -> Bytes {
    let frame = match conn.encryption() {
        Some(Encryption::Session(cipher)) => {
            scratch.clear();
            cipher.seal_event_json(payload, scratch);
            Frame::from_json_text(scratch)
        }
        Some(Encryption::Transformer) => {
            let transformed = transformer.and_then(|t| t.transform(conn.id(), payload));
            Frame::from_json_text(transformed.as_deref().unwrap_or(payload))
        }
        None => Frame::from_json_text(payload),
    };
    frame.bytes().clone()
}

/// The encryptor task: seals in bounded batches, yielding in between so plain deliveries
/// and reads are never held up behind encryption.
pub(super) async fn encryptor(shard: Rc<Shard>) {
    loop {
        shard.encrypt_wake.notified().await;
        while shard.encrypt_batch() {
            shard.flush_dirty();
            tokio::task::yield_now().await;
        }
        shard.flush_dirty();
    }
}

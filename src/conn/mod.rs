//! One WebSocket connection, without its socket: every rule of the protocol, of closing,
//! of liveness and of backpressure, as methods that change the connection's state and
//! return what the shard must do (write soon, wake the connection's task, count a drop).
//!
//! - [`machine`]: the protocol phases and the inbound decisions.
//! - [`liveness`]: transport idle timeout and pings.
//! - [`outbox`]: the bounded outbound queue and its vectored flush.
//! - [`membership`]: user id, rooms, own-id room.
//! - [`encryption`]: per-client encryption state.
//!
//! # Contract
//!
//! A [`Conn`] lives in its shard's connection table and is touched only by that shard's
//! thread (it is not `Sync`). Nothing here does I/O, spawns, sleeps or reads a clock:
//! times are passed in, writes go through a closure, and the shard executes the returned
//! decisions — so every rule is a unit test here. Overflow: [`Conn::offer`] refuses a
//! frame that would pass the backpressure limit (the caller counts the drop, or the
//! connection closes itself with 1008 when configured so). Close: [`Conn::close`] queues
//! exactly one close frame; [`Conn::abort`] drops everything queued; after either, the
//! connection takes no more messages.

pub mod encryption;
pub mod liveness;
pub mod machine;
pub mod membership;
pub mod outbox;
pub mod rate;

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::id::ClientId;
use crate::protocol::forward::ForwardQuota;
use crate::protocol::outbound::error_frame;
use crate::protocol::{CloseReason, ErrorText};
use crate::ws::decode::{Data, DecodeError};
use crate::ws::frame::{OpCode, close_frame, control_frame};
use encryption::Encryption;
use liveness::{Idle, Liveness};
use machine::{AuthVerdict, Decision, Machine, Phase};
use membership::Membership;
use outbox::{Flush, Outbox, Push};
use rate::TokenBucket;

/// Queued bytes past which a connection is written mid-batch instead of at its end.
const EARLY_FLUSH: usize = 64 * 1024;

/// The backpressure settings every connection of an engine shares.
#[derive(Debug, Clone, Copy)]
pub struct Backpressure {
    /// Bytes that may wait in one connection's queue.
    pub limit: usize,
    /// Close (1008) instead of dropping when the limit is reached.
    pub close_slow: bool,
    /// Queued bytes past which the shard writes the socket at once.
    early_flush: usize,
}

impl Backpressure {
    /// `limit` bytes per connection; `close_slow` closes slow consumers with 1008.
    pub fn new(limit: usize, close_slow: bool) -> Self {
        Backpressure {
            limit,
            close_slow,
            early_flush: (limit / 2).min(EARLY_FLUSH),
        }
    }
}

/// What became of a frame offered to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued; `flush_now` when so much waits that the socket should be written at once
    /// (a long batch must not starve a fast reader into its limit).
    Queued {
        /// Write the socket now rather than at the end of the batch.
        flush_now: bool,
    },
    /// Refused by the backpressure limit; the caller counts the drop.
    Dropped,
    /// Refused, and the connection closed itself (1008): the caller wakes its task.
    Closed,
}

/// What a flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued was written (or nothing may be written any more).
    Done,
    /// Everything was written and the connection is closing: its task can finish.
    CloseSent,
    /// The socket is full: the task must wait for writability and flush again.
    Blocked,
    /// The socket failed; the connection aborted itself.
    Failed,
}

/// A connection as its shard sees it, without its socket.
pub struct Conn {
    id: ClientId,
    machine: Machine,
    liveness: Liveness,
    outbox: Outbox,
    membership: Membership,
    /// Set for encrypted clients: their messages leave the shared fast path.
    encryption: Option<Encryption>,
    /// Plaintext bytes waiting to be sealed (they count toward the limit).
    pending_encrypt: usize,
    /// `on_connect` was called, so `on_disconnect` will be.
    connected_reported: bool,
    /// The inbound rate limit's bucket (only when a limit is set).
    bucket: Option<Box<TokenBucket>>,
    /// How many of its custom events wait to be forwarded (once it has sent one).
    forwarding: Option<Arc<AtomicUsize>>,
    /// The close code the server queued for it, if any (for the disconnect metrics).
    close_code: Option<u16>,
    /// The window (in bits) its messages are compressed with; 0: it takes none
    /// (permessage-deflate not negotiated).
    deflate_window: u8,
}

impl Conn {
    /// A connection accepted at `now` that must authenticate within `auth_timeout`.
    pub fn new(id: ClientId, now: Instant, auth_timeout: Duration) -> Self {
        Conn {
            id,
            machine: Machine::new(now, auth_timeout),
            liveness: Liveness::new(now),
            outbox: Outbox::default(),
            membership: Membership::default(),
            encryption: None,
            pending_encrypt: 0,
            connected_reported: false,
            bucket: None,
            forwarding: None,
            close_code: None,
            deflate_window: 0,
        }
    }

    /// This connection takes messages compressed with a window of `2^bits` bytes
    /// (`None`: it takes no compressed messages).
    pub fn with_compression(mut self, window_bits: Option<u8>) -> Self {
        self.deflate_window = window_bits.unwrap_or(0);
        self
    }

    /// The window its messages are compressed with, if it takes compressed messages
    /// (encrypted clients never do: their messages are sealed for them alone).
    #[inline]
    pub fn compression_window(&self) -> Option<u8> {
        match (self.deflate_window, &self.encryption) {
            (0, _) | (_, Some(_)) => None,
            (bits, None) => Some(bits),
        }
    }

    /// The close code the server queued for it (`None`: it never sent a close frame).
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// Its id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Where it is in the protocol.
    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.machine.phase()
    }

    /// Authenticated: indexed, in rooms, receives messages.
    #[inline]
    pub fn is_authenticated(&self) -> bool {
        self.machine.phase() == Phase::Authenticated
    }

    /// Still handling input and taking messages (not closing, not aborted).
    pub fn is_open(&self) -> bool {
        self.machine.is_open()
    }

    /// When it must be authenticated by, while it is not.
    pub fn auth_deadline(&self) -> Option<Instant> {
        self.machine.auth_deadline()
    }

    /// Its user and rooms.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Its user and rooms, to change along with the shard's indexes.
    pub fn membership_mut(&mut self) -> &mut Membership {
        &mut self.membership
    }

    /// How its messages are encrypted, if they are.
    pub fn encryption(&self) -> Option<&Encryption> {
        self.encryption.as_ref()
    }

    /// Routes its messages through the embedder's transformer from now on.
    pub fn use_transformer(&mut self) {
        self.encryption = Some(Encryption::Transformer);
    }

    /// Whether `on_connect` was reported (so `on_disconnect` must be).
    pub fn connected_reported(&self) -> bool {
        self.connected_reported
    }

    /// Frames waiting to be written.
    pub fn queued_frames(&self) -> usize {
        self.outbox.frames()
    }

    /// Its share of the way to `ws:inbound`: `max` of its events waiting at most.
    pub fn forward_quota(&mut self, max: usize) -> ForwardQuota {
        let waiting = self.forwarding.get_or_insert_with(Arc::default);
        ForwardQuota::new(waiting.clone(), max)
    }
}

/// Inbound: bytes, messages, close frames, protocol errors and the deadlines.
impl Conn {
    /// Bytes arrived at `now` (transport liveness).
    pub fn heard(&mut self, now: Instant) {
        self.liveness.heard(now);
    }

    /// Counts one inbound message against `rate` per second (burst `burst`; 0 = the
    /// rate); over it, the connection closes itself with 1008 "Rate limit exceeded" and
    /// this returns false. A `rate` of 0 means no limit.
    pub fn within_rate(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let burst = if burst == 0 { rate } else { burst };
        let bucket = self
            .bucket
            .get_or_insert_with(|| Box::new(TokenBucket::full(now, burst)));
        if bucket.take(now, rate, burst) {
            return true;
        }
        self.close(CloseReason::RateLimited);
        false
    }

    /// Decides what one inbound data frame means. An `encrypted` message from a client
    /// with a session is decrypted here: the caller then passes the plaintext to
    /// [`Conn::on_decrypted`].
    pub fn on_message<'a>(
        &mut self,
        now: Instant,
        message: Data<'a>,
        auth_timeout: Duration,
    ) -> Decision<'a> {
        let decision = self.machine.on_message(now, message, auth_timeout);
        let (Decision::Custom(message), Some(Encryption::Session(cipher))) =
            (&decision, &self.encryption)
        else {
            return decision;
        };
        if message.event != "encrypted" {
            return decision;
        }
        match encryption::decrypt(cipher, message.data) {
            Some(plaintext) => Decision::Decrypted(plaintext),
            None => Decision::Error(ErrorText::DecryptionFailed),
        }
    }

    /// Decides what a decrypted message means (it is not decrypted again).
    pub fn on_decrypted<'a>(
        &mut self,
        now: Instant,
        plaintext: &'a [u8],
        auth_timeout: Duration,
    ) -> Decision<'a> {
        self.machine
            .on_message(now, Data::Binary(plaintext), auth_timeout)
    }

    /// The client sent a close frame: echo it; returns whether a close was queued.
    pub fn on_close_frame(&mut self, code: Option<u16>) -> bool {
        self.close(machine::echo_close(code))
    }

    /// The client broke the framing rules: close 1002, 1009 for an oversize message,
    /// 1007 for text that is not UTF-8.
    pub fn on_decode_error(&mut self, error: DecodeError) -> bool {
        self.close(match error {
            DecodeError::TooBig => CloseReason::MessageTooBig,
            DecodeError::Protocol(_) => CloseReason::ProtocolError,
            DecodeError::InvalidUtf8 | DecodeError::InvalidCompression => {
                CloseReason::InvalidPayload
            }
        })
    }

    /// Closes with 4001 if the authentication deadline has passed at `now`.
    pub fn check_auth_deadline(&mut self, now: Instant) -> bool {
        self.machine.auth_expired(now) && self.close(CloseReason::AuthTimeout)
    }

    /// Closes with 4002 if authenticated and silent longer than `timeout` at `now`.
    pub fn check_heartbeat(&mut self, now: Instant, timeout: Duration) -> bool {
        self.machine.heartbeat_expired(now, timeout) && self.close(CloseReason::HeartbeatTimeout)
    }

    /// Transport liveness at `now`: queues a ping at half the idle timeout, aborts at the
    /// timeout (returned as [`Idle::Drop`]).
    pub fn check_idle(&mut self, now: Instant, idle: Duration, send_pings: bool) -> Idle {
        match self.liveness.check(now, idle, send_pings) {
            Idle::Ping if self.is_open() => {
                self.outbox.push_unbounded(control_frame(OpCode::Ping, b""));
                Idle::Ping
            }
            Idle::Ping | Idle::Fine => Idle::Fine,
            Idle::Drop => {
                self.abort();
                Idle::Drop
            }
        }
    }
}

/// Authentication results.
impl Conn {
    /// The authenticator accepted: records the user and encryption and enters the own-id
    /// room. False when the connection is no longer waiting for a verdict (it closed).
    pub fn accept(&mut self, user_id: Option<Arc<str>>, encryption: Option<Encryption>) -> bool {
        if self
            .machine
            .on_auth_verdict(AuthVerdict::Accepted)
            .is_some()
            || !self.is_authenticated()
        {
            return false;
        }
        self.membership.authenticated(user_id);
        self.encryption = encryption;
        self.connected_reported = true;
        true
    }

    /// The authenticator (or the handshake) refused: queues the Ignis error and the close
    /// (4003 or 4004). False when the connection was no longer waiting for a verdict.
    pub fn refuse(&mut self, verdict: AuthVerdict) -> bool {
        let Some((text, reason)) = self.machine.on_auth_verdict(verdict) else {
            return false;
        };
        self.outbox
            .push_unbounded(error_frame(text.text()).bytes().clone());
        self.close(reason)
    }
}

/// Outbound: offers, replies, closing and flushing.
impl Conn {
    /// Offers a shared frame of a delivery, within the backpressure limit.
    #[inline]
    pub fn offer(&mut self, frame: Bytes, policy: &Backpressure) -> Offer {
        match self.outbox.push(frame, policy.limit) {
            Push::Queued => Offer::Queued {
                flush_now: self.outbox.queued_bytes() >= policy.early_flush,
            },
            Push::OverLimit if policy.close_slow => {
                self.close(CloseReason::SlowConsumer);
                Offer::Closed
            }
            Push::OverLimit => Offer::Dropped,
        }
    }

    /// Reserves room for `len` plaintext bytes to be sealed for this client; false (a
    /// drop) when that would pass `limit`.
    pub fn reserve_sealed(&mut self, len: usize, limit: usize) -> bool {
        let waiting = self.outbox.queued_bytes() + self.pending_encrypt;
        if waiting > 0 && waiting + len > limit {
            return false;
        }
        self.pending_encrypt += len;
        true
    }

    /// Releases a reservation of `len` plaintext bytes; queues `sealed` when the client
    /// may still receive it. Returns whether it was queued.
    pub fn queue_sealed(&mut self, len: usize, sealed: impl FnOnce(&Conn) -> Bytes) -> bool {
        self.pending_encrypt = self.pending_encrypt.saturating_sub(len);
        if !self.is_authenticated() {
            return false;
        }
        let frame = sealed(self);
        self.outbox.push_unbounded(frame);
        true
    }

    /// Queues a reply to this client (`error`, `pong`, `connected`) within `limit`;
    /// false when refused (over the limit, or no longer open).
    pub fn reply(&mut self, frame: Bytes, limit: usize) -> bool {
        self.is_open() && self.outbox.push(frame, limit) == Push::Queued
    }

    /// Queues the close frame for `reason`, once; false if already closing or aborted.
    pub fn close(&mut self, reason: CloseReason) -> bool {
        if !self.machine.begin_close() {
            return false;
        }
        self.close_code = Some(reason.code());
        self.outbox
            .push_unbounded(close_frame(reason.code(), reason.reason()));
        true
    }

    /// Gives up on the socket: nothing more is written.
    pub fn abort(&mut self) {
        self.machine.abort();
        self.outbox.clear();
    }

    /// Whether a closing connection still has bytes to write.
    pub fn close_pending(&self) -> bool {
        self.machine.phase() != Phase::Aborted && !self.outbox.is_empty()
    }

    /// Writes the queue through `write` (one non-blocking vectored write per call).
    pub fn flush(&mut self, write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>) -> Flushed {
        if self.machine.phase() == Phase::Aborted {
            return Flushed::Done;
        }
        match self.outbox.flush(write) {
            Ok(Flush::Drained) if self.machine.phase() == Phase::Closing => Flushed::CloseSent,
            Ok(Flush::Drained) => Flushed::Done,
            Ok(Flush::Blocked) => Flushed::Blocked,
            Err(_) => {
                self.abort();
                Flushed::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Reading: bytes from the socket into the shard's scratch buffer, frames out of the
//! decoder, and each message's decision carried out (replies, authentication, joins,
//! leaves, the message handler).

use std::sync::Arc;
use std::time::Instant;

use super::ConnTask;
use crate::conn::machine::Decision;
use crate::history::Since;
use crate::hooks::JoinRequest;
use crate::protocol::inbound::InboundMessage;
use crate::protocol::{ClientMessage, CloseReason};
use crate::shard::session::run_local;
use crate::shard::socket::Socket;
use crate::ws::decode::FrameDecoder;
use crate::ws::decode::{Data, Flow, WsEvent};
use crate::ws::frame::{OpCode, control_frame};

/// Reads per wake-up before yielding to the shard's other tasks.
const READ_BUDGET: usize = 256 * 1024;

/// What one read from the socket gave.
enum Read {
    /// This many bytes (0 after an interrupted read).
    Bytes(usize),
    /// Nothing more for now.
    WouldBlock,
    /// End of input or a socket error.
    Gone,
}

impl ConnTask {
    /// Reads and handles what the socket has, up to a budget; returns true when the
    /// budget ran out with data still waiting (the caller yields, then reads on).
    pub(super) fn read_available(&mut self, stream: &Socket) -> bool {
        let mut budget = READ_BUDGET;
        loop {
            match self.read_once(stream) {
                Read::Bytes(n) => budget = budget.saturating_sub(n),
                Read::WouldBlock => return false,
                Read::Gone => {
                    self.peer_gone = true;
                    return false;
                }
            }
            if self.status().is_none() {
                return false;
            }
            if budget == 0 {
                return true;
            }
        }
    }

    /// One read into the shard's scratch buffer, handled in place.
    fn read_once(&mut self, stream: &Socket) -> Read {
        let shard = self.shard.clone();
        let mut scratch = shard.scratch.borrow_mut();
        match stream.try_read(&mut scratch) {
            Ok(0) => Read::Gone,
            Ok(n) => {
                self.on_bytes(&mut scratch[..n], Instant::now());
                Read::Bytes(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Read::WouldBlock,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Read::Bytes(0),
            Err(_) => Read::Gone,
        }
    }

    /// Feeds bytes to the decoder and handles every complete frame; holds the memory
    /// the decoder keeps between reads to the shard's share of `max_buffered_bytes`.
    pub(super) fn on_bytes(&mut self, bytes: &mut [u8], now: Instant) {
        self.shard.metrics.bytes_received.add(bytes.len() as u64);
        self.shard
            .with_entry(self.slot, |entry, _| entry.conn.heard(now));
        let held = self.decoder.buffered();
        let idle = FrameDecoder::new(self.shard.limits());
        let mut decoder = std::mem::replace(&mut self.decoder, idle);
        let shard = self.shard.clone();
        let mut inflater = shard.inflater.borrow_mut();
        let inflated = inflater.inflated();
        let result = decoder.feed(bytes, &mut inflater, |event| self.on_event(event, now));
        let inflated = inflater.inflated() - inflated;
        drop(inflater);
        if inflated > 0 {
            shard.metrics.inflated_messages.add(inflated);
        }
        self.decoder = decoder;
        if let Err(error) = result {
            tracing::debug!(client = %self.client_id, "closing: {error}");
            self.shard.metrics.protocol_closes.inc();
            self.close_with(|conn| conn.on_decode_error(error));
        }
        if !self.shard.hold_buffered(held, self.decoder.buffered()) {
            self.shard.metrics.overloaded_closes.inc();
            self.close_with(|conn| conn.close(CloseReason::Overloaded));
        }
    }

    /// Applies a closing decision; wakes the connection when it queued a close frame.
    pub(super) fn close_with(&self, close: impl FnOnce(&mut crate::conn::Conn) -> bool) {
        self.shard.with_entry(self.slot, |entry, dirty| {
            if close(&mut entry.conn) {
                entry.closed(self.slot, dirty);
            }
        });
    }

    fn on_event(&mut self, event: WsEvent<'_>, now: Instant) -> Flow {
        if matches!(event, WsEvent::Message(_) | WsEvent::Ping(_)) && !self.within_rate(now) {
            self.shard.metrics.rate_limited.inc();
            return Flow::Stop;
        }
        match event {
            WsEvent::Message(message) => {
                self.shard.metrics.frames_in.inc();
                match self.shard.ctx.echo {
                    true => self.echo(message),
                    false => self.on_message(message, now),
                }
            }
            WsEvent::Ping(payload) => {
                self.shard
                    .reply(self.slot, control_frame(OpCode::Pong, payload));
            }
            WsEvent::Pong => {}
            WsEvent::Close(code) => {
                self.close_with(|conn| conn.on_close_frame(code));
                return Flow::Stop;
            }
        }
        match self.status() {
            Some(_) => Flow::Continue,
            None => Flow::Stop,
        }
    }

    /// Counts a message against `client_message_rate`; false once the client is over it
    /// (it was closed with 1008).
    fn within_rate(&self, now: Instant) -> bool {
        let (rate, burst) = (
            self.shard.config().client_message_rate,
            self.shard.config().client_message_burst,
        );
        let mut over = false;
        self.close_with(|conn| {
            over = !conn.within_rate(now, rate, burst);
            over
        });
        !over
    }

    /// The conformance server: every message goes back as it came (same opcode).
    fn echo(&self, message: Data<'_>) {
        let opcode = match message {
            Data::Text(_) => OpCode::Text,
            Data::Binary(_) => OpCode::Binary,
        };
        let shard = &self.shard;
        let frame = shard.with_entry(self.slot, |entry, _| {
            shard.echo_for(&entry.conn, opcode, message.bytes())
        });
        if let Some(frame) = frame {
            shard.reply(self.slot, frame);
        }
    }

    /// Decides on one message and carries the decision out.
    fn on_message(&mut self, message: Data<'_>, now: Instant) {
        let auth_timeout = self.shard.config().auth_timeout;
        let decided = self.shard.with_entry(self.slot, |entry, _| {
            let decision = entry.conn.on_message(now, message, auth_timeout);
            (decision, entry.conn.membership().user_id().cloned())
        });
        let Some((decision, user_id)) = decided else {
            return;
        };
        if let Decision::Decrypted(plaintext) = decision {
            let again = self.shard.with_entry(self.slot, |entry, _| {
                entry.conn.on_decrypted(now, &plaintext, auth_timeout)
            });
            if let Some(decision) = again {
                self.carry_out(decision, user_id);
            }
            return;
        }
        self.carry_out(decision, user_id);
    }

    fn carry_out(&mut self, decision: Decision<'_>, user_id: Option<Arc<str>>) {
        match decision {
            Decision::Nothing | Decision::Decrypted(_) => {}
            Decision::Error(text) => self.shard.send_error(self.slot, text),
            Decision::Authenticate(data) => self.start_auth(data),
            Decision::Join(rooms, since) => self.join(rooms, since, user_id),
            Decision::History(request) => self.shard.answer_history(self.slot, request),
            Decision::Presence(request) => self.shard.answer_presence(self.slot, request),
            Decision::Leave(rooms) => self.shard.leave_rooms(self.slot, &rooms),
            Decision::Custom(message) => self.forward(message, user_id),
        }
    }

    /// Asks the room validator, then joins the allowed subset of what was asked.
    fn join(&self, rooms: Vec<String>, since: Vec<(String, Since)>, user_id: Option<Arc<str>>) {
        let Some(validator) = self.shard.ctx.hooks.validator.clone() else {
            return;
        };
        let requested: ahash::AHashSet<String> = rooms.iter().cloned().collect();
        let (shard, slot, client_id) = (self.shard.clone(), self.slot, self.client_id);
        let validation = validator.validate(JoinRequest {
            client_id,
            user_id,
            rooms,
        });
        run_local(Box::pin(async move {
            let mut allowed = validation.await;
            allowed.retain(|room| requested.contains(room));
            // The connection may have gone (and its slot been reused) meanwhile.
            if shard.slot_of(&client_id) == Some(slot) {
                shard.join_rooms_since(slot, &allowed, &since);
            }
        }));
    }

    /// Hands a custom event to the message handler.
    fn forward(&self, message: InboundMessage<'_>, user_id: Option<Arc<str>>) {
        let Some(handler) = self.shard.ctx.hooks.on_message.clone() else {
            return;
        };
        let mut message = ClientMessage::new(self.client_id, user_id, message);
        let max = self.shard.config().max_forwarded_per_client;
        message.quota = self
            .shard
            .with_entry(self.slot, |e, _| e.conn.forward_quota(max));
        run_local(handler.on_message(&self.shard.ctx.handle, message));
    }
}

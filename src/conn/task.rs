//! The task that drives one connection's socket on its shard.
//!
//! It reads into the shard's scratch buffer, decodes frames, runs the state machine's
//! decisions, awaits the authenticator, enforces the auth deadline, and flushes its own
//! queue when the socket was full. Deliveries from other sources are queued by the shard
//! directly; this task only waits on the socket when the shard could not write.
//!
//! Closing is a lingering close: flush the close frame (bounded in time), half-close the
//! write side, discard input until the peer closes (bounded), then forget the connection.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Sleep;

use super::Conn;
use super::encryption::{Encryption, Handshake, HandshakeRequest};
use super::machine::{AuthVerdict, Decision, Machine, Phase};
use crate::auth::{AuthRequest, Identity, LocalFuture};
use crate::engine::callbacks::{ClientMessage, run_local};
use crate::id::ClientId;
use crate::protocol::inbound::InboundMessage;
use crate::protocol::{CloseReason, ErrorText};
use crate::rooms::JoinRequest;
use crate::shard::index::Slot;
use crate::shard::state::Shard;
use crate::ws::frame::{DecodeError, Flow, FrameDecoder, OpCode, WsEvent, control_frame};

/// Reads per wake-up before yielding to the shard's other tasks.
const READ_BUDGET: usize = 256 * 1024;
/// How long a closing connection may take to take its close frame.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// How long to wait for the peer's side of the close after half-closing.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

type AuthFuture = LocalFuture<Box<AuthOutcome>>;

/// The authenticator's answer combined with the encryption handshake's.
enum AuthOutcome {
    Accepted {
        identity: Identity,
        /// Extra `connected.data` members (`serverPublicKey`, `salt`, or the embedder's).
        extra: serde_json::Map<String, serde_json::Value>,
        encryption: Option<Encryption>,
    },
    Refused(AuthVerdict),
}

/// Takes an upgraded socket (already on this shard's reactor) and starts its task.
pub(crate) fn adopt(
    shard: &Rc<Shard>,
    stream: TcpStream,
    client_id: ClientId,
    peer: SocketAddr,
    leftover: Vec<u8>,
) {
    let stream = Rc::new(stream);
    let now = Instant::now();
    let machine = Machine::new(now, shard.engine.config.auth_timeout);
    let conn = Conn::new(client_id, stream.clone(), machine, now);
    let wake = conn.wake.clone();
    let slot = {
        let mut state = shard.state.borrow_mut();
        let slot = state.conns.insert(conn);
        state.index.insert_client(client_id, slot);
        slot
    };
    shard.metrics.connections.add(1);
    shard.metrics.accepted.inc();
    let task = ConnTask {
        shard: shard.clone(),
        slot,
        client_id,
        peer,
        decoder: FrameDecoder::new(shard.engine.config.max_payload_length),
        auth: None,
        peer_gone: false,
    };
    tokio::task::spawn_local(task.run(stream, wake, leftover));
}

/// What woke the connection task.
enum Wakeup {
    /// The socket is readable and/or writable.
    Ready(tokio::io::Ready),
    /// Waiting on the socket failed.
    Failed,
    /// The shard changed something (closing, write blocked, broken).
    Notified,
    /// The authenticator (and handshake) finished.
    Auth(Box<AuthOutcome>),
    /// The authentication deadline passed.
    Deadline,
}

struct ConnTask {
    shard: Rc<Shard>,
    slot: Slot,
    client_id: ClientId,
    peer: SocketAddr,
    decoder: FrameDecoder,
    auth: Option<AuthFuture>,
    /// The peer closed its side (EOF) or the socket failed.
    peer_gone: bool,
}

impl ConnTask {
    async fn run(mut self, stream: Rc<TcpStream>, wake: Rc<Notify>, mut leftover: Vec<u8>) {
        if !leftover.is_empty() {
            self.on_bytes(&mut leftover, Instant::now());
        }
        drop(leftover);
        self.shard.flush_dirty();
        // Boxed and only while unauthenticated: the timer would otherwise sit in every
        // connection's task for its whole life.
        let mut auth_timer: Option<Pin<Box<Sleep>>> = None;
        while let Some((deadline, blocked)) = self.status() {
            match deadline {
                Some(at)
                    if auth_timer
                        .as_ref()
                        .is_none_or(|t| t.deadline() != at.into()) =>
                {
                    auth_timer = Some(Box::pin(tokio::time::sleep_until(at.into())));
                }
                Some(_) => {}
                None => auth_timer = None,
            }
            // The select only picks what happened; the work (which may await) runs after
            // it, so the branch futures are not kept alive across that await.
            // One readiness future for both directions (writability only matters while
            // the shard could not write everything).
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let wakeup = tokio::select! {
                ready = stream.ready(interest) => match ready {
                    Ok(ready) => Wakeup::Ready(ready),
                    Err(_) => Wakeup::Failed,
                },
                () = wake.notified() => Wakeup::Notified,
                result = poll_auth(&mut self.auth), if self.auth.is_some() => Wakeup::Auth(result),
                () = poll_timer(&mut auth_timer), if auth_timer.is_some() => Wakeup::Deadline,
            };
            let mut more_to_read = false;
            match wakeup {
                Wakeup::Ready(ready) => {
                    if ready.is_writable() {
                        self.shard.flush_one(self.slot);
                    }
                    if ready.is_readable() || ready.is_read_closed() {
                        more_to_read = self.read_available(&stream);
                    }
                }
                Wakeup::Failed => self.peer_gone = true,
                Wakeup::Notified => {}
                Wakeup::Auth(result) => {
                    self.auth = None;
                    self.on_auth_result(*result);
                }
                Wakeup::Deadline => self.on_deadline(),
            }
            if more_to_read {
                // A flooding client: let the shard's other tasks run before reading on.
                self.shard.flush_dirty();
                tokio::task::yield_now().await;
            }
            self.shard.flush_dirty();
        }
        // Boxed: the closing sequence's timers exist only while a connection closes.
        Box::pin(self.finish(&stream, &wake)).await;
    }

    /// `None` once the connection is closing or gone; else the auth deadline and whether
    /// the socket is waiting for writability.
    fn status(&self) -> Option<(Option<Instant>, bool)> {
        if self.peer_gone {
            return None;
        }
        let state = self.shard.state.borrow();
        let conn = state.conns.get(self.slot)?;
        if conn.machine.phase() == Phase::Closing || conn.broken {
            return None;
        }
        Some((conn.machine.auth_deadline(), conn.write_blocked))
    }

    /// Reads and handles what the socket has, up to a budget; returns true when the
    /// budget ran out with data still waiting (the caller yields, then reads on).
    fn read_available(&mut self, stream: &TcpStream) -> bool {
        let shard = self.shard.clone();
        let mut budget = READ_BUDGET;
        loop {
            let read = {
                let mut scratch = shard.scratch.borrow_mut();
                match stream.try_read(&mut scratch) {
                    Ok(0) => Err(()),
                    Ok(n) => {
                        self.on_bytes(&mut scratch[..n], Instant::now());
                        Ok(n)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(0),
                    Err(_) => Err(()),
                }
            };
            match read {
                Err(()) => {
                    self.peer_gone = true;
                    return false;
                }
                Ok(n) => budget = budget.saturating_sub(n),
            }
            if self.status().is_none() {
                return false;
            }
            if budget == 0 {
                return true;
            }
        }
    }

    fn on_bytes(&mut self, bytes: &mut [u8], now: Instant) {
        self.touch(now);
        let mut decoder = std::mem::take(&mut self.decoder);
        let result = decoder.feed(bytes, |event| self.on_event(event, now));
        self.decoder = decoder;
        match result {
            Ok(_) => {}
            Err(DecodeError::TooBig) => self.close_for_protocol(CloseReason::MessageTooBig),
            Err(DecodeError::Protocol(why)) => {
                tracing::debug!(client = %self.client_id, "protocol violation: {why}");
                self.close_for_protocol(CloseReason::ProtocolError);
            }
        }
    }

    fn touch(&self, now: Instant) {
        if let Some(conn) = self.shard.state.borrow_mut().conns.get_mut(self.slot) {
            conn.last_rx = now;
            conn.ping_sent = false;
        }
    }

    fn close_for_protocol(&self, reason: CloseReason) {
        self.shard.metrics.protocol_closes.inc();
        self.shard.close(self.slot, reason);
    }

    fn on_event(&mut self, event: WsEvent<'_>, now: Instant) -> Flow {
        match event {
            WsEvent::Message(payload) => {
                self.shard.metrics.frames_in.inc();
                self.on_message(payload, now);
            }
            WsEvent::Ping(payload) => {
                self.shard
                    .reply(self.slot, control_frame(OpCode::Pong, payload));
            }
            WsEvent::Pong => {}
            WsEvent::Close(code) => {
                self.shard.close(self.slot, echo_close(code));
                return Flow::Stop;
            }
        }
        match self.status() {
            Some(_) => Flow::Continue,
            None => Flow::Stop,
        }
    }

    fn on_message(&mut self, payload: &[u8], now: Instant) {
        self.handle_message(payload, now, false);
    }

    fn handle_message(&mut self, payload: &[u8], now: Instant, decrypted: bool) {
        let auth_timeout = self.shard.engine.config.auth_timeout;
        let shard = self.shard.clone();
        let mut state = shard.state.borrow_mut();
        let Some(conn) = state.conns.get_mut(self.slot) else {
            return;
        };
        let decision = conn.machine.on_message(now, payload, auth_timeout);
        let user_id = conn.user_id.clone();
        let session = match (&decision, &conn.encryption) {
            (Decision::Custom(m), Some(Encryption::Session(cipher)))
                if m.event == "encrypted" && !decrypted =>
            {
                Some(decrypt(cipher, m.data))
            }
            _ => None,
        };
        drop(state);
        if let Some(inner) = session {
            match inner {
                Some(plaintext) => self.handle_message(&plaintext, now, true),
                None => self
                    .shard
                    .send_error(self.slot, ErrorText::DecryptionFailed),
            }
            return;
        }
        match decision {
            Decision::Nothing => {}
            Decision::Error(text) => self.shard.send_error(self.slot, text),
            Decision::Authenticate(data) => self.start_auth(data),
            Decision::Join(rooms) => self.join(rooms, user_id),
            Decision::Leave(rooms) => self.shard.leave_rooms(self.slot, &rooms),
            Decision::Custom(message) => self.forward(message, user_id),
        }
    }

    fn start_auth(&mut self, data: Option<&serde_json::value::RawValue>) {
        let Some(authenticator) = self.shard.engine.callbacks.authenticator.clone() else {
            self.shard.reject(self.slot, AuthVerdict::Failed);
            return;
        };
        let request = AuthRequest {
            client_id: self.client_id,
            remote_addr: self.peer,
            data: data.map(|d| d.to_owned()),
        };
        let negotiation = Negotiation {
            client_id: self.client_id,
            require: self.shard.engine.config.require_encryption,
            handshake: self.shard.engine.callbacks.handshake.clone(),
            public_key: request.string_field("publicKey"),
            data: data.map(|d| std::sync::Arc::from(d.to_owned())),
        };
        let authenticating = authenticator.authenticate(request);
        let client_id = self.client_id;
        self.auth = Some(Box::pin(async move {
            Box::new(match authenticating.await {
                Ok(Some(identity)) => negotiation.run(identity).await,
                Ok(None) => AuthOutcome::Refused(AuthVerdict::Rejected),
                Err(err) => {
                    tracing::warn!(client = %client_id, "{err}");
                    AuthOutcome::Refused(AuthVerdict::Failed)
                }
            })
        }));
    }

    fn on_auth_result(&mut self, outcome: AuthOutcome) {
        match outcome {
            AuthOutcome::Accepted {
                identity,
                extra,
                encryption,
            } => self.shard.accept(self.slot, identity, &extra, encryption),
            AuthOutcome::Refused(verdict) => self.shard.reject(self.slot, verdict),
        }
    }

    fn on_deadline(&mut self) {
        let expired = self
            .shard
            .state
            .borrow()
            .conns
            .get(self.slot)
            .is_some_and(|c| c.machine.auth_expired(Instant::now()));
        if expired {
            self.auth = None;
            self.shard.metrics.timeouts.inc();
            self.shard.close(self.slot, CloseReason::AuthTimeout);
        }
    }

    fn join(&self, rooms: Vec<String>, user_id: Option<std::sync::Arc<str>>) {
        let Some(validator) = self.shard.engine.callbacks.validator.clone() else {
            return;
        };
        let requested = rooms.clone();
        let request = JoinRequest {
            client_id: self.client_id,
            user_id,
            rooms,
        };
        let shard = self.shard.clone();
        let (slot, client_id) = (self.slot, self.client_id);
        let validation = validator.validate(request);
        run_local(Box::pin(async move {
            let allowed: Vec<String> = validation
                .await
                .into_iter()
                .filter(|room| requested.contains(room))
                .collect();
            // The connection may have gone (and its slot been reused) meanwhile.
            if shard.slot_of(&client_id) == Some(slot) {
                shard.join_rooms(slot, &allowed);
            }
        }));
    }

    fn forward(&self, message: InboundMessage<'_>, user_id: Option<std::sync::Arc<str>>) {
        let Some(handler) = self.shard.engine.callbacks.on_message.clone() else {
            return;
        };
        let message = ClientMessage {
            client_id: self.client_id,
            user_id,
            event: message.event.into_owned(),
            data: message.data.map(|d| d.to_owned()),
            id: message.id.map(|d| d.to_owned()),
        };
        run_local(handler.on_message(&self.shard.handle, message));
    }

    /// Flushes the close frame (bounded), half-closes, lingers for the peer, forgets.
    async fn finish(self, stream: &TcpStream, wake: &Notify) {
        let deadline = tokio::time::Instant::now() + CLOSE_FLUSH;
        loop {
            let waiting = {
                let state = self.shard.state.borrow();
                state
                    .conns
                    .get(self.slot)
                    .map(|c| (!c.outbox.is_empty() && !c.broken, c.write_blocked))
            };
            let Some((true, blocked)) = waiting else {
                break;
            };
            if self.peer_gone {
                break;
            }
            tokio::select! {
                ready = stream.writable(), if blocked => match ready {
                    Ok(()) => self.shard.flush_one(self.slot),
                    Err(_) => break,
                },
                () = wake.notified() => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
            self.shard.flush_dirty();
        }
        if !self.peer_gone {
            let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write);
            let _ =
                tokio::time::timeout(CLOSE_LINGER, discard_until_eof(&self.shard, stream)).await;
        }
        self.shard.remove(self.slot);
    }
}

/// The close code to echo for a client's close: its own code when valid, else 1000/1002.
fn echo_close(code: Option<u16>) -> CloseReason {
    match code {
        None => CloseReason::Normal,
        Some(c)
            if (1000..=1003).contains(&c)
                || (1007..=1014).contains(&c)
                || (3000..5000).contains(&c) =>
        {
            CloseReason::Normal
        }
        Some(_) => CloseReason::ProtocolError,
    }
}

/// Reads and drops input until the peer closes. Reads go to the shard's scratch buffer:
/// a buffer in this future would sit in every connection's task for its whole life.
async fn discard_until_eof(shard: &Shard, stream: &TcpStream) {
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let read = stream.try_read(&mut shard.scratch.borrow_mut());
        match read {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Decrypts an inbound `{"event":"encrypted","data":{"iv","ct"}}`; `None` when it does
/// not decrypt.
fn decrypt(
    cipher: &crate::crypto::SessionCipher,
    data: Option<&serde_json::value::RawValue>,
) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Sealed<'a> {
        iv: &'a str,
        ct: &'a str,
    }
    let sealed: Sealed<'_> = serde_json::from_str(data?.get()).ok()?;
    cipher.decrypt(sealed.iv, sealed.ct).ok()
}

/// The encryption half of authentication, run after the authenticator accepted.
struct Negotiation {
    client_id: ClientId,
    require: bool,
    handshake: Option<std::sync::Arc<dyn Handshake>>,
    public_key: Option<String>,
    data: Option<std::sync::Arc<serde_json::value::RawValue>>,
}

impl Negotiation {
    async fn run(self, identity: Identity) -> AuthOutcome {
        let accepted = |extra, encryption| AuthOutcome::Accepted {
            identity,
            extra,
            encryption,
        };
        let failed = AuthOutcome::Refused(AuthVerdict::HandshakeFailed);
        if let Some(handshake) = self.handshake {
            if !self.require {
                return accepted(Default::default(), None);
            }
            let request = HandshakeRequest {
                client_id: self.client_id,
                data: self.data,
            };
            return match handshake.handshake(request).await {
                Some(extra) => accepted(extra, Some(Encryption::Transformer)),
                None => failed,
            };
        }
        let Some(public_key) = self.public_key else {
            return if self.require {
                failed
            } else {
                accepted(Default::default(), None)
            };
        };
        // Two P-256 operations (~0.3 ms): off the shard thread, so other clients never wait.
        let exchange =
            tokio::task::spawn_blocking(move || crate::crypto::accept_client_key(&public_key));
        match exchange.await {
            Ok(Ok((cipher, reply))) => {
                let mut extra = serde_json::Map::new();
                extra.insert(
                    "serverPublicKey".into(),
                    reply.server_public_key.clone().into(),
                );
                extra.insert("salt".into(), reply.salt.clone().into());
                accepted(extra, Some(Encryption::Session(Box::new(cipher))))
            }
            _ => failed,
        }
    }
}

fn poll_auth(slot: &mut Option<AuthFuture>) -> impl Future<Output = Box<AuthOutcome>> + '_ {
    std::future::poll_fn(move |cx| match slot {
        Some(future) => future.as_mut().poll(cx),
        None => Poll::Pending,
    })
}

fn poll_timer(timer: &mut Option<Pin<Box<Sleep>>>) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| match timer {
        Some(sleep) => sleep.as_mut().poll(cx),
        None => Poll::Pending,
    })
}

#[cfg(test)]
mod tests {
    /// The task future lives as long as its connection: keep it small (memory per idle
    /// connection). This pins its size so a regression shows up here.
    #[test]
    fn connection_task_future_stays_small() {
        fn size_of_run() -> usize {
            let future = super::ConnTask::run;
            // The size of the future returned by `run`, via a never-called closure.
            fn size<F, A, B, C, D, Fut>(_: &F) -> usize
            where
                F: Fn(A, B, C, D) -> Fut,
            {
                std::mem::size_of::<Fut>()
            }
            size(&future)
        }
        let bytes = size_of_run();
        eprintln!("ConnTask::run future: {bytes} bytes");
        assert!(bytes <= 640, "ConnTask::run future is {bytes} bytes");
    }
}

//! The connection state machine, with no socket: it turns what a client sent into a
//! [`Decision`] and says when the connection must close. The I/O task executes the
//! decisions; every protocol rule is therefore a unit test here.
//!
//! ```text
//! Unauthorized --authenticate--> Authenticating --accepted--> Authenticated
//!      |                              |                            |
//!   deadline (4001)          rejected (4003) / deadline (4001)  silent too long (4002)
//!      v                              v                            v
//!                               Closing (terminal)
//!
//! any phase --socket failed / transport idle--> Aborted (terminal, nothing more is sent)
//! ```

use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use crate::history::Since;
use crate::history::request::{HistoryRequest, PresenceRequest, join_since};
use crate::protocol::close::{CloseReason, ErrorText};
use crate::protocol::inbound::{self, Inbound, InboundMessage};
use crate::rooms;
use crate::ws::decode::Data;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connected, `authenticate` not yet received.
    Unauthorized,
    /// The authenticator is running.
    Authenticating,
    /// Accepted: indexed, in rooms, receives messages.
    Authenticated,
    /// A close frame has been queued; nothing else is sent or handled.
    Closing,
    /// The socket failed or the transport idled out: dropped without a close handshake.
    Aborted,
}

/// What the I/O task must do with one inbound message.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Nothing (heartbeat, event-less JSON, ignored join…).
    Nothing,
    /// Send `{"event":"error","data":{"message":…}}`, keep the connection.
    Error(ErrorText),
    /// Run the authenticator on this `data`.
    Authenticate(Option<&'a RawValue>),
    /// Ask the room validator about these (already name-checked) rooms; then recover
    /// the history rooms among them from these positions.
    Join(Vec<String>, Vec<(String, Since)>),
    /// Answer a member's `ws:history`.
    History(HistoryRequest),
    /// Answer a member's `ws:presence`.
    Presence(PresenceRequest),
    /// Leave these rooms.
    Leave(Vec<String>),
    /// An application event for the message handler.
    Custom(InboundMessage<'a>),
    /// An `encrypted` message that decrypted to this plaintext message: decide again on
    /// it (decided by [`crate::conn::Conn::on_message`], never by the machine itself).
    Decrypted(Vec<u8>),
}

/// How the authenticator answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    /// Accepted (and the encryption handshake, if required, succeeded).
    Accepted,
    /// Rejected: "Authentication failed", 4003.
    Rejected,
    /// The authenticator failed: "Authentication error", 4003.
    Failed,
    /// Encryption required but the handshake failed: "Encryption handshake failed", 4004.
    HandshakeFailed,
}

/// The per-connection protocol state.
#[derive(Debug, Clone)]
pub struct Machine {
    phase: Phase,
    auth_deadline: Option<Instant>,
    last_activity: Instant,
}

impl Machine {
    /// A fresh connection accepted at `now`, which must authenticate within `auth_timeout`.
    pub fn new(now: Instant, auth_timeout: Duration) -> Self {
        Machine {
            phase: Phase::Unauthorized,
            auth_deadline: Some(now + auth_timeout),
            last_activity: now,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When the connection must be authenticated by, if it is not yet.
    pub fn auth_deadline(&self) -> Option<Instant> {
        self.auth_deadline
    }

    /// Whether the connection still handles input and takes messages (not closing or
    /// aborted).
    pub fn is_open(&self) -> bool {
        !matches!(self.phase, Phase::Closing | Phase::Aborted)
    }

    /// Handles one inbound message (text and binary alike: JSON either way).
    pub fn on_message<'a>(
        &mut self,
        now: Instant,
        message: Data<'a>,
        auth_timeout: Duration,
    ) -> Decision<'a> {
        if !self.is_open() {
            return Decision::Nothing;
        }
        self.last_activity = now;
        let parsed = match message {
            Data::Text(text) => inbound::parse_str(text),
            Data::Binary(bytes) => inbound::parse(bytes),
        };
        let message = match parsed {
            Inbound::Invalid => return Decision::Error(ErrorText::InvalidMessageFormat),
            Inbound::Ignored => return Decision::Nothing,
            Inbound::Message(message) => message,
        };
        match (message.event.as_ref(), self.phase) {
            ("heartbeat", _) => Decision::Nothing,
            ("authenticate", Phase::Unauthorized) => {
                self.phase = Phase::Authenticating;
                self.auth_deadline = Some(now + auth_timeout * 3);
                Decision::Authenticate(message.data)
            }
            ("authenticate", _) => Decision::Error(ErrorText::AlreadyAuthenticated),
            (_, Phase::Unauthorized | Phase::Authenticating) => {
                Decision::Error(ErrorText::NotAuthenticated)
            }
            ("join", _) => rooms::requested_rooms(message.data)
                .filter(|r| !r.is_empty())
                .map_or(Decision::Nothing, |rooms| {
                    Decision::Join(rooms, join_since(message.data))
                }),
            ("ws:history", _) => HistoryRequest::parse(message.data)
                .map_or(Decision::Error(ErrorText::NoRoomNamed), Decision::History),
            ("ws:presence", _) => PresenceRequest::parse(message.data)
                .map_or(Decision::Error(ErrorText::NoRoomNamed), Decision::Presence),
            ("leave", _) => rooms::requested_rooms(message.data)
                .filter(|r| !r.is_empty())
                .map_or(Decision::Nothing, Decision::Leave),
            _ => Decision::Custom(message),
        }
    }

    /// Applies the authenticator's verdict; returns the error and close to send, if any
    /// (the caller then queues the error and calls [`Machine::begin_close`]).
    pub fn on_auth_verdict(&mut self, verdict: AuthVerdict) -> Option<(ErrorText, CloseReason)> {
        if self.phase != Phase::Authenticating {
            return None;
        }
        let failure = match verdict {
            AuthVerdict::Accepted => {
                self.phase = Phase::Authenticated;
                self.auth_deadline = None;
                return None;
            }
            AuthVerdict::Rejected => (ErrorText::AuthenticationFailed, CloseReason::AuthFailed),
            AuthVerdict::Failed => (ErrorText::AuthenticationError, CloseReason::AuthFailed),
            AuthVerdict::HandshakeFailed => (
                ErrorText::EncryptionHandshakeFailed,
                CloseReason::EncryptionRequired,
            ),
        };
        // The caller closes right away (begin_close), after queueing the error.
        Some(failure)
    }

    /// Whether the authentication deadline has passed (close 4001).
    pub fn auth_expired(&self, now: Instant) -> bool {
        self.auth_deadline.is_some_and(|deadline| now >= deadline)
    }

    /// Whether an authenticated client has been silent longer than `timeout` (close 4002).
    pub fn heartbeat_expired(&self, now: Instant, timeout: Duration) -> bool {
        self.phase == Phase::Authenticated && now.duration_since(self.last_activity) > timeout
    }

    /// Marks the connection closing; returns false if it already was closing or aborted.
    pub fn begin_close(&mut self) -> bool {
        let was_open = self.is_open();
        if was_open {
            self.phase = Phase::Closing;
        }
        self.auth_deadline = None;
        was_open
    }

    /// Gives up on the connection: nothing more is sent or handled.
    pub fn abort(&mut self) {
        self.phase = Phase::Aborted;
        self.auth_deadline = None;
    }
}

/// The close to answer a client's close frame with: its own code echoed as 1000 when it
/// is a valid code (or absent), else 1002 (RFC 6455 §7.4).
pub fn echo_close(code: Option<u16>) -> CloseReason {
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

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(5000);

    fn machine() -> (Machine, Instant) {
        let now = Instant::now();
        (Machine::new(now, T), now)
    }

    fn error_of(d: Decision<'_>) -> Option<ErrorText> {
        match d {
            Decision::Error(e) => Some(e),
            _ => None,
        }
    }

    #[test]
    fn events_before_authentication_are_refused_but_heartbeat_is_silent() {
        let (mut m, now) = machine();
        let d = m.on_message(now, Data::Binary(br#"{"event":"chat"}"#), T);
        assert_eq!(error_of(d), Some(ErrorText::NotAuthenticated));
        let d = m.on_message(
            now,
            Data::Binary(br#"{"event":"join","data":{"rooms":["a"]}}"#),
            T,
        );
        assert_eq!(error_of(d), Some(ErrorText::NotAuthenticated));
        assert!(matches!(
            m.on_message(now, Data::Binary(br#"{"event":"heartbeat"}"#), T),
            Decision::Nothing
        ));
        assert!(matches!(
            m.on_message(now, Data::Binary(b"{}"), T),
            Decision::Nothing
        ));
        let d = m.on_message(now, Data::Binary(b"nope"), T);
        assert_eq!(error_of(d), Some(ErrorText::InvalidMessageFormat));
    }

    #[test]
    fn heartbeat_does_not_extend_the_auth_deadline() {
        let (mut m, now) = machine();
        let later = now + Duration::from_millis(4000);
        m.on_message(later, Data::Binary(br#"{"event":"heartbeat"}"#), T);
        assert!(!m.auth_expired(now + Duration::from_millis(4999)));
        assert!(m.auth_expired(now + T));
    }

    #[test]
    fn authenticating_triples_the_deadline_and_refuses_a_second_authenticate() {
        let (mut m, now) = machine();
        let at = now + Duration::from_millis(1000);
        assert!(matches!(
            m.on_message(
                at,
                Data::Binary(br#"{"event":"authenticate","data":{"token":"t"}}"#),
                T
            ),
            Decision::Authenticate(Some(_))
        ));
        assert_eq!(m.phase(), Phase::Authenticating);
        assert_eq!(m.auth_deadline(), Some(at + T * 3));
        let d = m.on_message(at, Data::Binary(br#"{"event":"authenticate"}"#), T);
        assert_eq!(error_of(d), Some(ErrorText::AlreadyAuthenticated));
        let d = m.on_message(at, Data::Binary(br#"{"event":"chat"}"#), T);
        assert_eq!(error_of(d), Some(ErrorText::NotAuthenticated));
    }

    #[test]
    fn verdicts_map_to_ignis_errors_and_codes() {
        let cases = [
            (
                AuthVerdict::Rejected,
                Some((ErrorText::AuthenticationFailed, CloseReason::AuthFailed)),
            ),
            (
                AuthVerdict::Failed,
                Some((ErrorText::AuthenticationError, CloseReason::AuthFailed)),
            ),
            (
                AuthVerdict::HandshakeFailed,
                Some((
                    ErrorText::EncryptionHandshakeFailed,
                    CloseReason::EncryptionRequired,
                )),
            ),
            (AuthVerdict::Accepted, None),
        ];
        for (verdict, expected) in cases {
            let (mut m, now) = machine();
            m.on_message(now, Data::Binary(br#"{"event":"authenticate"}"#), T);
            assert_eq!(m.on_auth_verdict(verdict), expected);
        }
    }

    #[test]
    fn authenticated_routes_join_leave_and_custom_events() {
        let (mut m, now) = machine();
        m.on_message(now, Data::Binary(br#"{"event":"authenticate"}"#), T);
        m.on_auth_verdict(AuthVerdict::Accepted);
        assert_eq!(m.auth_deadline(), None);
        let d = m.on_message(
            now,
            Data::Binary(br#"{"event":"join","data":{"rooms":["a","ws:b",7]}}"#),
            T,
        );
        assert!(matches!(d, Decision::Join(r, _) if r == ["a"]));
        assert!(matches!(
            m.on_message(
                now,
                Data::Binary(br#"{"event":"join","data":{"rooms":"a"}}"#),
                T
            ),
            Decision::Nothing
        ));
        assert!(matches!(
            m.on_message(now, Data::Binary(br#"{"event":"leave","data":{"rooms":["a"]}}"#), T),
            Decision::Leave(r) if r == ["a"]
        ));
        for name in ["disconnect", "error", "connected", "encrypted", "chat"] {
            let frame = format!(r#"{{"event":"{name}","id":"x"}}"#);
            let d = m.on_message(now, Data::Binary(frame.as_bytes()), T);
            assert!(
                matches!(d, Decision::Custom(ref msg) if msg.event == name),
                "{name}"
            );
        }
        let d = m.on_message(now, Data::Binary(br#"{"event":"authenticate"}"#), T);
        assert_eq!(error_of(d), Some(ErrorText::AlreadyAuthenticated));
    }

    #[test]
    fn heartbeat_timeout_counts_every_data_frame() {
        let (mut m, now) = machine();
        m.on_message(now, Data::Binary(br#"{"event":"authenticate"}"#), T);
        m.on_auth_verdict(AuthVerdict::Accepted);
        let timeout = Duration::from_secs(90);
        assert!(!m.heartbeat_expired(now + timeout, timeout));
        assert!(m.heartbeat_expired(now + timeout + Duration::from_millis(1), timeout));
        m.on_message(now + timeout, Data::Binary(b"not json"), T);
        assert!(!m.heartbeat_expired(now + timeout + Duration::from_millis(1), timeout));
    }

    #[test]
    fn client_close_codes_are_echoed_as_normal_or_protocol_error() {
        for code in [
            None,
            Some(1000),
            Some(1001),
            Some(1003),
            Some(1007),
            Some(1014),
            Some(3000),
            Some(4999),
        ] {
            assert_eq!(echo_close(code), CloseReason::Normal, "{code:?}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert_eq!(echo_close(Some(code)), CloseReason::ProtocolError, "{code}");
        }
    }

    #[test]
    fn aborted_is_terminal_and_cannot_start_a_close() {
        let (mut m, now) = machine();
        m.abort();
        assert!(!m.is_open());
        assert!(!m.begin_close());
        assert_eq!(m.phase(), Phase::Aborted);
        assert!(matches!(
            m.on_message(now, Data::Binary(b"{}"), T),
            Decision::Nothing
        ));
    }

    #[test]
    fn closing_ignores_everything() {
        let (mut m, now) = machine();
        assert!(m.begin_close());
        assert!(!m.begin_close());
        assert!(matches!(
            m.on_message(now, Data::Binary(b"garbage"), T),
            Decision::Nothing
        ));
        assert!(!m.auth_expired(now + T * 10));
    }
}

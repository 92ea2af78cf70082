//! Close codes and `error` event texts, declared once.
//!
//! Every close the server initiates and every `{"event":"error"}` it sends is one of the
//! variants below; tests assert against these tables rather than repeating literals.

/// Why the server closes a connection: the close code and reason sent in the close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// 1000: the client asked to close and the server echoes it.
    Normal,
    /// 1001 "Server shutting down": graceful shutdown.
    ShuttingDown,
    /// 1002: the client broke the WebSocket framing rules (unmasked frame, bad opcode…).
    ProtocolError,
    /// 1007: a text message or close reason that is not UTF-8 (RFC 6455 §8.1).
    InvalidPayload,
    /// 1009: a frame or message larger than `max_payload_length`.
    MessageTooBig,
    /// 1008: the client's outbound queue exceeded `backpressure_limit` and the server is
    /// configured to close slow consumers.
    SlowConsumer,
    /// 1008 "Rate limit exceeded": the client sent faster than `client_message_rate`.
    RateLimited,
    /// 1013 "Try again later": the server holds as many unfinished frames as it allows
    /// (`max_buffered_bytes`); the client may reconnect later.
    Overloaded,
    /// 4001 "Authentication timeout": no `authenticate` in time, or the authenticator
    /// did not finish within three times the timeout.
    AuthTimeout,
    /// 4002 "Heartbeat timeout": an authenticated client was silent too long.
    HeartbeatTimeout,
    /// 4003 "Authentication failed": the authenticator rejected or failed.
    AuthFailed,
    /// 4004 "Encryption required": the encryption handshake failed or was missing.
    EncryptionRequired,
}

impl CloseReason {
    /// The numeric close code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::ShuttingDown => 1001,
            Self::ProtocolError => 1002,
            Self::InvalidPayload => 1007,
            Self::SlowConsumer | Self::RateLimited => 1008,
            Self::MessageTooBig => 1009,
            Self::Overloaded => 1013,
            Self::AuthTimeout => 4001,
            Self::HeartbeatTimeout => 4002,
            Self::AuthFailed => 4003,
            Self::EncryptionRequired => 4004,
        }
    }

    /// The reason text carried in the close frame.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Normal => "",
            Self::ShuttingDown => "Server shutting down",
            Self::ProtocolError => "Protocol error",
            Self::InvalidPayload => "Invalid payload data",
            Self::RateLimited => "Rate limit exceeded",
            Self::Overloaded => "Try again later",
            Self::SlowConsumer => "Backpressure limit exceeded",
            Self::MessageTooBig => "Message too big",
            Self::AuthTimeout => "Authentication timeout",
            Self::HeartbeatTimeout => "Heartbeat timeout",
            Self::AuthFailed => "Authentication failed",
            Self::EncryptionRequired => "Encryption required",
        }
    }
}

/// The `message` of an `{"event":"error","data":{"message":…}}` sent to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorText {
    /// The authenticator rejected the credentials (followed by close 4003).
    AuthenticationFailed,
    /// The authenticator itself failed (followed by close 4003).
    AuthenticationError,
    /// `authenticate` sent by a client that is already authenticated (or authenticating).
    AlreadyAuthenticated,
    /// Any event other than `authenticate`/`heartbeat` before authentication.
    NotAuthenticated,
    /// A frame that is not JSON or not UTF-8.
    InvalidMessageFormat,
    /// `require_encryption` and a missing or unusable public key (followed by close 4004).
    EncryptionHandshakeFailed,
    /// An inbound `encrypted` message that does not decrypt.
    DecryptionFailed,
    /// `ws:history` or `ws:presence` whose `data` names no room.
    NoRoomNamed,
}

impl ErrorText {
    /// The text sent to the client.
    pub const fn text(self) -> &'static str {
        match self {
            Self::AuthenticationFailed => "Authentication failed",
            Self::AuthenticationError => "Authentication error",
            Self::AlreadyAuthenticated => "Already authenticated",
            Self::NotAuthenticated => "Not authenticated",
            Self::InvalidMessageFormat => "Invalid message format",
            Self::EncryptionHandshakeFailed => "Encryption handshake failed",
            Self::DecryptionFailed => "Decryption failed",
            Self::NoRoomNamed => "Invalid request: data must be {\"room\": string}",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignis_close_codes() {
        assert_eq!(CloseReason::ShuttingDown.code(), 1001);
        assert_eq!(CloseReason::MessageTooBig.code(), 1009);
        assert_eq!(
            (
                CloseReason::AuthTimeout.code(),
                CloseReason::AuthTimeout.reason()
            ),
            (4001, "Authentication timeout")
        );
        assert_eq!(CloseReason::HeartbeatTimeout.code(), 4002);
        assert_eq!(CloseReason::AuthFailed.code(), 4003);
        assert_eq!(CloseReason::EncryptionRequired.code(), 4004);
    }
}

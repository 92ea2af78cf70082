//! The bridge's state as others see it: each connection's [`LinkState`] and the
//! [`BridgeStatus`] snapshot (for `/ready`, metrics and the dashboard).

/// State of one of the bridge's two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// A connection attempt (or, for the subscriber, the subscriptions) is in progress.
    Connecting,
    /// Connected (subscriber: and subscribed to every channel and pattern).
    Up,
    /// The last attempt failed or the connection was lost; waiting for the next attempt.
    Down,
    /// Shut down.
    Stopped,
}

impl LinkState {
    /// Lowercase name for logs, `/ready` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Stopped => "stopped",
        }
    }
}

/// A snapshot of the bridge, for `/ready`, `/metrics` and the dashboard. Counters are
/// cumulative since start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeStatus {
    /// The subscriber connection.
    pub subscriber: LinkState,
    /// The publisher connection.
    pub publisher: LinkState,
    /// Messages waiting in (or in flight from) the publish queue.
    pub queued: usize,
    /// Bytes (channel + payload) of those messages.
    pub queued_bytes: usize,
    /// Messages PUBLISHed successfully (probes excluded).
    pub published: u64,
    /// Messages refused because the queue was full, or abandoned at shutdown.
    pub publish_dropped: u64,
    /// Messages received on `ws:*` channels (probes excluded).
    pub received: u64,
    /// Envelopes handed to the sink.
    pub delivered: u64,
    /// Envelopes skipped because they carried our own `serverId`.
    pub ignored_own: u64,
    /// Messages that were not acceptable envelopes.
    pub malformed: u64,
    /// Subscriber connections lost (each followed by a reconnect and resubscribe).
    pub reconnects: u64,
    /// Publisher connections lost.
    pub publisher_reconnects: u64,
    /// Liveness probes that went unanswered (each caused a subscriber reconnect).
    pub probe_timeouts: u64,
    /// Channels the subscriber holds now (`ws:broadcast` and its probe channel included).
    pub channels: usize,
    /// Patterns the subscriber holds now (3 in patterns mode, else 0).
    pub patterns: usize,
    /// Channels subscribed since start (restores after a reconnect included).
    pub subscribed: u64,
    /// Channels unsubscribed since start.
    pub unsubscribed: u64,
    /// SUBSCRIBE and UNSUBSCRIBE commands sent to follow the interest.
    pub subscribe_commands: u64,
    /// Messages received on a channel nobody here wanted when it arrived (patterns mode
    /// hears the whole fleet; interest mode only stragglers after an UNSUBSCRIBE).
    pub unwanted: u64,
}

//! One `recovery` client's state across all its connections: its room, its
//! [`StreamChecker`], and the counters of what happened to it. No I/O: the connection loop
//! ([`super::client`]) hands every message to [`ClientState::on_message`] and asks what
//! changed ([`ClientState::take_joined`], [`ClientState::take_join_error`]).
//!
//! Owned by the client's task on one worker thread; the latency of live messages goes into
//! the worker's [`Histograms`] (a thread-local there), never into per-client histograms.

use super::checker::{Arrival, JoinOutcome, Position, StreamChecker, StreamTally};
use super::wire::{self, Incoming};
use crate::payload;
use crate::scenario::{End, Endings};
use crate::stats::{Failures, Latency};

/// Per-worker histograms, merged at the end.
#[derive(Debug, Clone, Default)]
pub struct Histograms {
    /// Publish → receive latency of live messages (replayed ones are left out: their age
    /// is the outage, not the delivery).
    pub latency: Latency,
    /// Reconnect start → `ws:joined` of rejoins that recovered.
    pub recover: Latency,
}

impl Histograms {
    /// Adds another worker's samples.
    pub fn merge(&mut self, o: &Histograms) {
        self.latency.merge(&o.latency);
        self.recover.merge(&o.recover);
    }
}

/// What one client did and saw over the whole run.
#[derive(Debug, Clone, Default)]
pub struct RecoveryClient {
    /// Index of its room.
    pub room: usize,
    /// Its stream's counts.
    pub stream: StreamTally,
    /// Where its stream stood at the end.
    pub position: Option<Position>,
    /// Whether any join of it was confirmed.
    pub joined: bool,
    /// Abrupt drops it made.
    pub drops: u64,
    /// Reconnect attempts (connect + authenticate) after a drop or a loss.
    pub reconnects: u64,
    /// Of those, failed, by kind.
    pub reconnect_failures: Failures,
    /// Joins refused (`error` before `ws:joined`) or unanswered within the join timeout.
    pub join_failures: u64,
    /// The first of those, in words.
    pub first_join_failure: Option<String>,
    /// Connections that ended without our drop or stop, by [`End::key`].
    pub lost: Endings,
    /// `error` events after a join was confirmed.
    pub error_events: u64,
    /// Deliveries of another room than its own.
    pub foreign: u64,
    /// Messages that could not be read ([`Incoming::Malformed`]).
    pub malformed: u64,
    /// How it ended.
    pub end: End,
}

/// A client's state; see the module docs.
#[derive(Debug)]
pub struct ClientState {
    room_name: String,
    checker: StreamChecker,
    out: RecoveryClient,
    /// This connection's `ws:joined` arrived.
    confirmed: bool,
    /// Its outcome, until the connection loop takes it.
    news: Option<JoinOutcome>,
    /// The `error` that answered the join instead, until taken.
    join_error: Option<String>,
    /// Between the end of a confirmed connection and the next confirmed join.
    away: bool,
    deliveries: u64,
}

impl ClientState {
    /// A client of room `room` (index) named `room_name`.
    pub fn new(room: usize, room_name: &str) -> Self {
        ClientState {
            room_name: room_name.to_string(),
            checker: StreamChecker::new(),
            out: RecoveryClient {
                room,
                ..RecoveryClient::default()
            },
            confirmed: false,
            news: None,
            join_error: None,
            away: false,
            deliveries: 0,
        }
    }

    /// The join message for a new connection: with `since` once the stream has a position.
    pub fn join_message(&mut self) -> String {
        self.confirmed = false;
        self.news = None;
        self.join_error = None;
        let since = self.checker.begin_join();
        wire::join_message(&self.room_name, since.as_ref())
    }

    /// The connection is gone.
    pub fn disconnected(&mut self) {
        self.checker.disconnected();
    }

    /// A connection ended: true when it had been confirmed and the client was not
    /// already away (it is away now).
    pub fn leave(&mut self) -> bool {
        let newly = self.confirmed && !self.away;
        self.away |= newly;
        newly
    }

    /// A join was confirmed or the client ended: true when it had been away.
    pub fn come_back(&mut self) -> bool {
        std::mem::take(&mut self.away)
    }

    /// Whether this connection's join was confirmed.
    pub fn confirmed(&self) -> bool {
        self.confirmed
    }

    /// Handles one message that arrived at `now` (µs since the epoch).
    pub fn on_message(&mut self, m: &[u8], now: u64, h: &mut Histograms) {
        match wire::parse(m) {
            Incoming::Delivery {
                room,
                offset,
                epoch,
            } => {
                if room != self.room_name {
                    self.out.foreign += 1;
                    return;
                }
                self.deliveries += 1;
                let arrival = self.checker.delivery(&epoch, offset);
                if arrival == Arrival::Live
                    && let Some(stamp) = payload::scan(m)
                {
                    h.latency.record(now.saturating_sub(stamp.t));
                }
            }
            Incoming::Joined(j) if j.room == self.room_name => {
                let outcome = self.checker.joined(&j.epoch, j.offset, j.recovered);
                if outcome != JoinOutcome::Unsolicited {
                    self.out.joined = true;
                    self.confirmed = true;
                    self.news = Some(outcome);
                }
            }
            Incoming::Joined(_) => self.out.foreign += 1,
            Incoming::Error(msg) if !self.confirmed => {
                self.join_error.get_or_insert(msg);
            }
            Incoming::Error(_) => self.out.error_events += 1,
            Incoming::Other => {}
            Incoming::Malformed => self.out.malformed += 1,
        }
    }

    /// The outcome of this connection's `ws:joined`, once.
    pub fn take_joined(&mut self) -> Option<JoinOutcome> {
        self.news.take()
    }

    /// The `error` that answered this connection's join instead of `ws:joined`, once.
    pub fn take_join_error(&mut self) -> Option<String> {
        self.join_error.take()
    }

    /// Deliveries (of its room) so far, for the live counters.
    pub fn deliveries(&self) -> u64 {
        self.deliveries
    }

    /// The counters the connection loop keeps.
    pub fn out(&mut self) -> &mut RecoveryClient {
        &mut self.out
    }

    /// The client's outcome.
    pub fn finish(mut self, end: End) -> RecoveryClient {
        self.out.stream = self.checker.tally();
        self.out.position = self.checker.position().cloned();
        self.out.end = end;
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(offset: u64, t: u64) -> String {
        format!(
            r#"{{"event":"bench","data":{{"t":{t},"s":{offset},"p":""}},"room":"rec-0","offset":{offset},"epoch":"e"}}"#
        )
    }

    fn joined(top: u64, recovered: Option<bool>) -> String {
        let flag = recovered
            .map(|r| format!(r#","recovered":{r}"#))
            .unwrap_or_default();
        format!(
            r#"{{"event":"ws:joined","data":{{"room":"rec-0","epoch":"e","offset":{top}{flag}}}}}"#
        )
    }

    #[test]
    fn first_join_then_rejoin_with_since_and_live_latency_only() {
        let mut s = ClientState::new(0, "rec-0");
        let mut h = Histograms::default();
        let first: serde_json::Value = serde_json::from_str(&s.join_message()).expect("json");
        assert_eq!(first["data"], serde_json::json!({"rooms": ["rec-0"]}));
        s.on_message(joined(2, None).as_bytes(), 0, &mut h);
        assert_eq!(s.take_joined(), Some(JoinOutcome::Fresh));
        assert_eq!(s.take_joined(), None, "taken once");
        s.on_message(delivery(3, 1_000).as_bytes(), 1_500, &mut h);
        s.disconnected();
        let rejoin: serde_json::Value = serde_json::from_str(&s.join_message()).expect("json");
        let since = serde_json::json!({"rec-0": {"epoch": "e", "offset": 3}});
        assert_eq!(rejoin["data"]["since"], since);
        s.on_message(delivery(4, 2_000).as_bytes(), 9_000, &mut h);
        s.on_message(joined(4, Some(true)).as_bytes(), 9_000, &mut h);
        assert_eq!(s.take_joined(), Some(JoinOutcome::Recovered));
        assert_eq!(
            h.latency.count(),
            1,
            "the replayed message is not a latency sample"
        );
        assert_eq!(h.latency.summary().max_us, 500);
        let out = s.finish(End::Stopped);
        assert_eq!(
            (out.stream.replayed, out.stream.live, out.stream.recovered),
            (1, 1, 1)
        );
        assert_eq!(out.position.map(|p| p.offset), Some(4));
    }

    #[test]
    fn an_error_before_joined_refuses_the_join_and_after_it_is_counted() {
        let mut s = ClientState::new(0, "rec-0");
        let mut h = Histograms::default();
        s.join_message();
        let err = br#"{"event":"error","data":{"message":"Room not allowed"}}"#;
        s.on_message(err, 0, &mut h);
        assert_eq!(s.take_join_error().as_deref(), Some("Room not allowed"));
        s.join_message();
        s.on_message(joined(0, None).as_bytes(), 0, &mut h);
        s.on_message(err, 0, &mut h);
        assert_eq!(s.take_join_error(), None);
        s.on_message(b"garbage", 0, &mut h);
        let other_room = delivery(1, 0).replace("rec-0", "rec-1");
        s.on_message(other_room.as_bytes(), 0, &mut h);
        let out = s.finish(End::Stopped);
        assert_eq!((out.error_events, out.malformed, out.foreign), (1, 1, 1));
        assert!(out.joined);
    }
}

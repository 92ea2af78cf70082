//! The stream checker of `recovery`: one client's view of one history room, judged offset
//! by offset across drops and rejoins. Pure state, no I/O and no clock: the client feeds
//! it what arrived ([`StreamChecker::begin_join`], [`StreamChecker::delivery`],
//! [`StreamChecker::joined`], [`StreamChecker::disconnected`]) and it counts.
//!
//! # Contract
//!
//! - **Owner**: one client task on one worker thread; nothing is shared.
//! - **Position**: the last `(epoch, offset)` the stream covered — the last delivered
//!   offset, or the `TOP` of the last `ws:joined`. It is what the next join sends as
//!   `since`.
//! - **Join without `since`** (first join): deliveries before `ws:joined` are not
//!   expected and only counted (`unsolicited`); `ws:joined` sets the position to `TOP`.
//! - **Join with `since`**: deliveries before `ws:joined` are the replay and must continue
//!   exactly from `since.offset + 1`. On `recovered:true` in the same epoch the replay
//!   must have reached `TOP` (what it fell short of counts as gaps); live messages then
//!   continue from `TOP + 1`. On `recovered:false` (or no flag) the position is reset to
//!   `TOP` and nothing missed while away is a gap.
//! - **Epoch change** (at `ws:joined` or on a delivery): counted, never an error by itself;
//!   the position is reset to what the server names.
//! - **Classification** of a delivery in the current epoch against `next = position + 1`:
//!   `== next` in order; `> next` a gap (the skipped offsets count as `gaps` and are
//!   remembered); `< next` a late arrival of a remembered skipped offset (`out_of_order`,
//!   no longer a gap) or else a `duplicate`.
//! - **Bounds**: at most [`MAX_MISSING`] skipped offsets are remembered (the oldest are
//!   forgotten; a late arrival of a forgotten one then counts as a duplicate and its gap
//!   stays counted). The memory is cleared when the position is reset.

use serde::Serialize;
use std::collections::BTreeSet;

/// Most skipped offsets remembered to tell a late arrival from a duplicate.
pub const MAX_MISSING: usize = 16_384;

/// A place in a room's history: an offset in an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The lifetime of the room's history.
    pub epoch: String,
    /// The last offset covered.
    pub offset: u64,
}

/// What the counters of one stream (or of many, summed with [`StreamTally::add`]) say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamTally {
    /// `ws:joined` answers to a join without `since`.
    pub fresh_joins: u64,
    /// `ws:joined` answers to a join with `since`.
    pub rejoins: u64,
    /// Of those, `recovered:true`.
    pub recovered: u64,
    /// Of those, `recovered:false` or no flag (position reset to `TOP`).
    pub not_recovered: u64,
    /// Epoch changes seen (position reset).
    pub epoch_changes: u64,
    /// Deliveries between a join with `since` and its `ws:joined`.
    pub replayed: u64,
    /// Deliveries after `ws:joined`.
    pub live: u64,
    /// Offsets skipped and not delivered later.
    pub gaps: u64,
    /// Places where the stream jumped (one jump may skip many offsets).
    pub gap_events: u64,
    /// Offsets delivered again.
    pub duplicates: u64,
    /// Offsets delivered after a later one.
    pub out_of_order: u64,
    /// Deliveries while no join with `since` was pending and before `ws:joined`, or
    /// `ws:joined` answers to no join; not judged.
    pub unsolicited: u64,
}

impl StreamTally {
    /// Adds another stream's counts.
    pub fn add(&mut self, o: &StreamTally) {
        self.fresh_joins += o.fresh_joins;
        self.rejoins += o.rejoins;
        self.recovered += o.recovered;
        self.not_recovered += o.not_recovered;
        self.epoch_changes += o.epoch_changes;
        self.replayed += o.replayed;
        self.live += o.live;
        self.gaps += o.gaps;
        self.gap_events += o.gap_events;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.unsolicited += o.unsolicited;
    }

    /// Whether the stream broke the contract: a gap, a duplicate or an out-of-order offset.
    pub fn broken(&self) -> bool {
        self.gaps + self.duplicates + self.out_of_order > 0
    }
}

/// Where a delivery fell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Part of a replay (before `ws:joined` of a join with `since`).
    Replay,
    /// A live message (after `ws:joined`).
    Live,
    /// Not judged (see [`StreamTally::unsolicited`]).
    Ignored,
}

/// What a `ws:joined` meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The answer to a join without `since`.
    Fresh,
    /// `recovered:true` in the same epoch: the stream continues.
    Recovered,
    /// `recovered:false`, no flag, or another epoch: the position was reset to `TOP`.
    Reset,
    /// No join was pending; ignored.
    Unsolicited,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// No join pending, not live (before the first join, after a disconnect).
    Idle,
    /// A join was sent; `recovering` when it carried `since`.
    Joining { recovering: bool },
    /// `ws:joined` received.
    Live,
}

/// One client's stream of one room (see the module docs for the rules).
#[derive(Debug, Clone)]
pub struct StreamChecker {
    position: Option<Position>,
    stage: Stage,
    missing: BTreeSet<u64>,
    tally: StreamTally,
}

impl Default for StreamChecker {
    fn default() -> Self {
        StreamChecker {
            position: None,
            stage: Stage::Idle,
            missing: BTreeSet::new(),
            tally: StreamTally::default(),
        }
    }
}

impl StreamChecker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last position covered (what a rejoin sends as `since`).
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// The counts so far.
    pub fn tally(&self) -> StreamTally {
        self.tally
    }

    /// A join is being sent; returns the `since` it must carry (`None` before the first
    /// `ws:joined`: a fresh join).
    pub fn begin_join(&mut self) -> Option<Position> {
        let since = self.position.clone();
        self.stage = Stage::Joining {
            recovering: since.is_some(),
        };
        since
    }

    /// The connection is gone (dropped, lost or stopped); what arrives before the next
    /// join is not judged.
    pub fn disconnected(&mut self) {
        self.stage = Stage::Idle;
    }

    /// A message of the room at `(epoch, offset)` arrived.
    pub fn delivery(&mut self, epoch: &str, offset: u64) -> Arrival {
        let arrival = match self.stage {
            Stage::Joining { recovering: true } => Arrival::Replay,
            Stage::Live => Arrival::Live,
            Stage::Idle | Stage::Joining { recovering: false } => {
                self.tally.unsolicited += 1;
                return Arrival::Ignored;
            }
        };
        match arrival {
            Arrival::Replay => self.tally.replayed += 1,
            _ => self.tally.live += 1,
        }
        match &self.position {
            Some(p) if p.epoch == epoch => self.classify(offset),
            _ => {
                self.tally.epoch_changes += u64::from(self.position.is_some());
                self.reset(epoch, offset);
            }
        }
        arrival
    }

    /// `ws:joined` arrived with the room's `epoch`, its `top` offset and the `recovered`
    /// flag (absent on a join without `since`).
    pub fn joined(&mut self, epoch: &str, top: u64, recovered: Option<bool>) -> JoinOutcome {
        let recovering = match self.stage {
            Stage::Joining { recovering } => recovering,
            Stage::Idle | Stage::Live => {
                self.tally.unsolicited += 1;
                return JoinOutcome::Unsolicited;
            }
        };
        self.stage = Stage::Live;
        if !recovering {
            self.tally.fresh_joins += 1;
            self.reset(epoch, top);
            return JoinOutcome::Fresh;
        }
        self.tally.rejoins += 1;
        if recovered == Some(true) {
            self.tally.recovered += 1;
        } else {
            self.tally.not_recovered += 1;
        }
        let same_epoch = self.position.as_ref().is_some_and(|p| p.epoch == epoch);
        if !same_epoch {
            self.tally.epoch_changes += 1;
        }
        if recovered == Some(true) && same_epoch {
            self.catch_up_to(top);
            JoinOutcome::Recovered
        } else {
            self.reset(epoch, top);
            JoinOutcome::Reset
        }
    }

    /// A recovered replay must have reached `top`; what it fell short of is a gap. (A
    /// replay past `top` keeps its position: live messages up to it are duplicates.)
    fn catch_up_to(&mut self, top: u64) {
        let at = self.position.as_ref().map_or(0, |p| p.offset);
        if top > at {
            self.skip(at + 1, top + 1);
        }
    }

    /// Judges `offset` in the current epoch against the position.
    fn classify(&mut self, offset: u64) {
        let at = self.position.as_ref().map_or(0, |p| p.offset);
        let next = at.saturating_add(1);
        if offset == next {
            self.set_offset(offset);
        } else if offset > next {
            self.skip(next, offset);
            self.set_offset(offset);
        } else if self.missing.remove(&offset) {
            self.tally.gaps -= 1;
            self.tally.out_of_order += 1;
        } else {
            self.tally.duplicates += 1;
        }
    }

    /// Offsets `from..to` were skipped: counted as gaps, the newest remembered.
    #[cold]
    fn skip(&mut self, from: u64, to: u64) {
        self.tally.gaps += to - from;
        self.tally.gap_events += 1;
        let remembered = from.max(to.saturating_sub(MAX_MISSING as u64));
        self.missing.extend(remembered..to);
        while self.missing.len() > MAX_MISSING {
            self.missing.pop_first();
        }
        self.set_offset(to - 1);
    }

    fn set_offset(&mut self, offset: u64) {
        if let Some(p) = &mut self.position {
            p.offset = offset;
        }
    }

    /// Forgets the past: the stream now stands at `(epoch, offset)`.
    fn reset(&mut self, epoch: &str, offset: u64) {
        self.missing.clear();
        self.position = Some(Position {
            epoch: epoch.to_string(),
            offset,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checker that joined fresh at `top` in epoch `e1`.
    fn live_at(top: u64) -> StreamChecker {
        let mut c = StreamChecker::new();
        assert_eq!(c.begin_join(), None);
        assert_eq!(c.joined("e1", top, None), JoinOutcome::Fresh);
        c
    }

    fn feed(c: &mut StreamChecker, offsets: impl IntoIterator<Item = u64>) -> Vec<Arrival> {
        offsets.into_iter().map(|o| c.delivery("e1", o)).collect()
    }

    fn at(c: &StreamChecker) -> Option<(String, u64)> {
        c.position().map(|p| (p.epoch.clone(), p.offset))
    }

    #[test]
    fn contiguous_stream_is_clean() {
        let mut c = live_at(10);
        let arrivals = feed(&mut c, 11..=20);
        assert!(arrivals.iter().all(|a| *a == Arrival::Live));
        let t = c.tally();
        assert_eq!((t.fresh_joins, t.live), (1, 10));
        assert!(!t.broken(), "{t:?}");
        assert_eq!(at(&c), Some(("e1".into(), 20)));
    }

    #[test]
    fn a_jump_counts_every_skipped_offset_and_a_late_one_is_out_of_order() {
        let mut c = live_at(0);
        feed(&mut c, [1, 2, 5, 6]);
        let t = c.tally();
        assert_eq!((t.gaps, t.gap_events, t.duplicates), (2, 1, 0));
        feed(&mut c, [3]);
        let t = c.tally();
        assert_eq!((t.gaps, t.out_of_order, t.duplicates), (1, 1, 0));
        assert_eq!(
            at(&c),
            Some(("e1".into(), 6)),
            "a late one does not move back"
        );
        assert!(t.broken());
    }

    #[test]
    fn a_repeat_is_a_duplicate() {
        let mut c = live_at(0);
        feed(&mut c, [1, 2, 2, 3, 1]);
        let t = c.tally();
        assert_eq!((t.duplicates, t.gaps, t.out_of_order, t.live), (2, 0, 0, 5));
        // A late arrival of a skipped offset is out of order once, then a duplicate.
        feed(&mut c, [5, 4, 4]);
        let t = c.tally();
        assert_eq!((t.duplicates, t.gaps, t.out_of_order), (3, 0, 1));
    }

    #[test]
    fn replay_then_live_continues_exactly() {
        let mut c = live_at(0);
        feed(&mut c, 1..=4);
        c.disconnected();
        assert_eq!(
            c.delivery("e1", 5),
            Arrival::Ignored,
            "nothing judged while away"
        );
        let since = c.begin_join().expect("a rejoin carries since");
        assert_eq!((since.epoch.as_str(), since.offset), ("e1", 4));
        let replay = feed(&mut c, 5..=9);
        assert!(replay.iter().all(|a| *a == Arrival::Replay));
        assert_eq!(c.joined("e1", 9, Some(true)), JoinOutcome::Recovered);
        assert!(feed(&mut c, 10..=12).iter().all(|a| *a == Arrival::Live));
        let t = c.tally();
        assert_eq!((t.rejoins, t.recovered, t.replayed, t.live), (1, 1, 5, 7));
        assert_eq!((t.unsolicited, t.epoch_changes), (1, 0));
        assert!(!t.broken(), "{t:?}");
    }

    #[test]
    fn a_short_replay_is_a_gap_and_a_long_one_makes_duplicates() {
        let mut c = live_at(0);
        feed(&mut c, 1..=2);
        c.disconnected();
        c.begin_join();
        feed(&mut c, 3..=4);
        // The server says it recovered up to 6 but replayed only 3 and 4.
        assert_eq!(c.joined("e1", 6, Some(true)), JoinOutcome::Recovered);
        feed(&mut c, [7]);
        let t = c.tally();
        assert_eq!((t.gaps, t.gap_events, t.duplicates), (2, 1, 0));

        let mut c = live_at(0);
        c.disconnected();
        c.begin_join();
        feed(&mut c, 1..=3);
        // Replay ran past the top it then announced: live 3 repeats it.
        c.joined("e1", 2, Some(true));
        feed(&mut c, [3, 4]);
        let t = c.tally();
        assert_eq!((t.gaps, t.duplicates), (0, 1));
    }

    #[test]
    fn recovered_false_resets_to_top_without_gaps() {
        let mut c = live_at(0);
        feed(&mut c, 1..=3);
        c.disconnected();
        assert!(c.begin_join().is_some());
        assert_eq!(c.joined("e1", 50, Some(false)), JoinOutcome::Reset);
        assert_eq!(at(&c), Some(("e1".into(), 50)));
        feed(&mut c, 51..=52);
        let t = c.tally();
        assert_eq!((t.rejoins, t.recovered, t.not_recovered), (1, 0, 1));
        assert_eq!((t.gaps, t.epoch_changes), (0, 0));
        assert!(!t.broken(), "{t:?}");
        // The next rejoin asks from the new position.
        c.disconnected();
        assert_eq!(c.begin_join().map(|p| p.offset), Some(52));
    }

    #[test]
    fn a_missing_flag_on_a_rejoin_counts_as_not_recovered() {
        let mut c = live_at(5);
        c.disconnected();
        c.begin_join();
        assert_eq!(c.joined("e1", 9, None), JoinOutcome::Reset);
        assert_eq!(c.tally().not_recovered, 1);
    }

    #[test]
    fn an_epoch_change_at_rejoin_resets_and_is_counted() {
        let mut c = live_at(0);
        feed(&mut c, 1..=100);
        c.disconnected();
        c.begin_join();
        assert_eq!(c.joined("e2", 3, Some(false)), JoinOutcome::Reset);
        assert_eq!(c.delivery("e2", 4), Arrival::Live);
        let t = c.tally();
        assert_eq!((t.epoch_changes, t.not_recovered, t.gaps), (1, 1, 0));
        assert_eq!(at(&c), Some(("e2".into(), 4)));
        assert!(!t.broken(), "{t:?}");
        // Even if the server claims recovery across epochs, the stream resets.
        c.disconnected();
        c.begin_join();
        assert_eq!(c.joined("e3", 1, Some(true)), JoinOutcome::Reset);
        assert_eq!(c.tally().epoch_changes, 2);
    }

    #[test]
    fn an_epoch_change_mid_stream_resets_and_keeps_no_old_memory() {
        let mut c = live_at(0);
        feed(&mut c, [1, 5]);
        assert_eq!(c.tally().gaps, 3);
        assert_eq!(c.delivery("e2", 1), Arrival::Live);
        assert_eq!(c.delivery("e2", 2), Arrival::Live);
        assert_eq!(c.delivery("e2", 3), Arrival::Live, "not a late e1 offset");
        let t = c.tally();
        assert_eq!((t.epoch_changes, t.gaps, t.out_of_order), (1, 3, 0));
    }

    #[test]
    fn unsolicited_messages_and_joined_are_not_judged() {
        let mut c = StreamChecker::new();
        assert_eq!(c.delivery("e1", 1), Arrival::Ignored);
        assert_eq!(c.joined("e1", 1, None), JoinOutcome::Unsolicited);
        c.begin_join();
        assert_eq!(
            c.delivery("e1", 1),
            Arrival::Ignored,
            "before a fresh ws:joined"
        );
        c.joined("e1", 1, None);
        assert_eq!(c.joined("e1", 1, None), JoinOutcome::Unsolicited);
        let t = c.tally();
        assert_eq!((t.unsolicited, t.fresh_joins, t.live), (4, 1, 0));
        assert!(!t.broken());
    }

    #[test]
    fn a_huge_jump_stays_bounded() {
        let mut c = live_at(0);
        feed(&mut c, [10_000_000]);
        assert!(c.missing.len() <= MAX_MISSING);
        assert_eq!(c.tally().gaps, 9_999_999);
        feed(&mut c, [9_999_999, 1]);
        let t = c.tally();
        assert_eq!((t.out_of_order, t.duplicates, t.gaps), (1, 1, 9_999_998));
    }

    #[test]
    fn tallies_add_up() {
        let mut a = live_at(0).tally();
        let mut c = live_at(0);
        feed(&mut c, [1, 3, 3]);
        a.add(&c.tally());
        assert_eq!((a.fresh_joins, a.live, a.gaps, a.duplicates), (2, 3, 1, 1));
    }
}

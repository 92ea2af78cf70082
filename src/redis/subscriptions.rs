//! The subscriber's per-channel subscriptions (interest and sharded mode): which
//! channels the connection holds, and the next SUBSCRIBE or UNSUBSCRIBE (SSUBSCRIBE or
//! SUNSUBSCRIBE) that brings it to the process's [`Interest`].
//!
//! # Contract
//!
//! Owned by the subscriber task, one per bridge. `subscribed` is what Redis holds once
//! every command sent on the current connection is answered. The task sends at most one
//! command at a time ([`Subscriptions::next`], then [`Subscriptions::completed`]); changes
//! that arrive meanwhile wait in `pending` and go out together in the next command, at
//! most [`MAX_BATCH`] channels each: a mass connect of N clients costs about
//! N / [`MAX_BATCH`] commands, never N round trips, and nobody's join waits for one.
//! SUBSCRIBEs go before UNSUBSCRIBEs (a join is waiting to hear its room; a leave is not).
//!
//! A new connection holds nothing: [`Subscriptions::reset`] hands the whole wanted set
//! over in batches, which the task subscribes before it reports ready, so every
//! subscription is restored after a reconnect.

use std::sync::Arc;
use std::time::Instant;

use ahash::{AHashMap, AHashSet};

use crate::interest::Interest;

/// Most channels in one SUBSCRIBE or UNSUBSCRIBE.
pub(crate) const MAX_BATCH: usize = 1024;

/// What a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
}

/// One command to send.
#[derive(Debug)]
pub(crate) struct Op {
    /// What it does.
    pub kind: OpKind,
    /// Its channels, at most [`MAX_BATCH`].
    pub channels: Vec<Box<str>>,
    /// When each channel's change was first recorded (same order as `channels`): the
    /// join-to-subscription window ends when the command is answered.
    pub since: Vec<Instant>,
}

/// The channels the subscriber's connection holds and what it still has to change.
pub(crate) struct Subscriptions {
    interest: Arc<Interest>,
    subscribed: AHashSet<Box<str>>,
    /// Channels to reconsider: whether they were wanted when last seen, and since when.
    pending: AHashMap<Box<str>, (bool, Instant)>,
}

impl Subscriptions {
    /// Subscriptions kept in step with `interest`.
    pub(crate) fn new(interest: Arc<Interest>) -> Self {
        Subscriptions {
            interest,
            subscribed: AHashSet::new(),
            pending: AHashMap::new(),
        }
    }

    /// The process's interest.
    pub(crate) fn interest(&self) -> &Arc<Interest> {
        &self.interest
    }

    /// Channels the connection holds (sent, answered or not).
    pub(crate) fn held(&self) -> usize {
        self.subscribed.len()
    }

    /// Whether the connection holds `channel` (sent, answered or not).
    pub(crate) fn holds(&self, channel: &str) -> bool {
        self.subscribed.contains(channel)
    }

    /// A new connection: it holds nothing. Returns every wanted channel, in batches, to
    /// subscribe before the connection counts as ready ([`Subscriptions::restored`] each).
    pub(crate) fn reset(&mut self) -> Vec<Vec<Box<str>>> {
        self.subscribed.clear();
        self.pending.clear();
        self.interest.unconfirm_all();
        let wanted = self.interest.wanted();
        wanted.chunks(MAX_BATCH).map(<[_]>::to_vec).collect()
    }

    /// A batch from [`Subscriptions::reset`] was subscribed.
    pub(crate) fn restored(&mut self, batch: &[Box<str>]) {
        self.subscribed.extend(batch.iter().cloned());
        self.interest.confirm(batch);
    }

    /// Redis dropped `channel` by itself (sharded pub/sub: its slot moved to another
    /// master): the connection no longer holds it, and the next command subscribes it again
    /// if it is still wanted.
    pub(crate) fn dropped(&mut self, channel: &str) {
        let Some(channel) = self.subscribed.take(channel) else {
            return;
        };
        self.interest.unconfirm(std::slice::from_ref(&channel));
        let wanted = self.interest.wants(&channel);
        self.pending.insert(channel, (wanted, Instant::now()));
    }

    /// The connection is gone: nothing is confirmed any more.
    pub(crate) fn lost(&mut self) {
        self.interest.unconfirm_all();
    }

    /// The next command that brings the connection closer to the interest, if any.
    pub(crate) fn next(&mut self) -> Option<Op> {
        for change in self.interest.take_changes() {
            self.pending
                .insert(change.channel, (change.wanted, change.since));
        }
        let mut subscribe = Vec::new();
        let mut unsubscribe = Vec::new();
        for (channel, (wanted, since)) in self.pending.drain() {
            match (wanted, self.subscribed.contains(&channel)) {
                (true, false) => subscribe.push((channel, since)),
                (false, true) => unsubscribe.push((channel, since)),
                _ => {}
            }
        }
        let (kind, mut chosen, other) = match subscribe.is_empty() {
            false => (OpKind::Subscribe, subscribe, unsubscribe),
            true => (OpKind::Unsubscribe, unsubscribe, Vec::new()),
        };
        let later = chosen.split_off(chosen.len().min(MAX_BATCH));
        self.keep_pending(later.into_iter().chain(other));
        if chosen.is_empty() {
            return None;
        }
        Some(self.begin(kind, chosen))
    }

    /// Puts channels the next command does not carry back in `pending`.
    fn keep_pending(&mut self, rest: impl Iterator<Item = (Box<str>, Instant)>) {
        for (channel, since) in rest {
            // Each was kept because it differs: what is not subscribed is wanted.
            let wanted = !self.subscribed.contains(&channel);
            self.pending.insert(channel, (wanted, since));
        }
    }

    /// Records the command as sent: `subscribed` is what Redis holds once it is answered.
    fn begin(&mut self, kind: OpKind, chosen: Vec<(Box<str>, Instant)>) -> Op {
        let (channels, since): (Vec<_>, Vec<_>) = chosen.into_iter().unzip();
        match kind {
            OpKind::Subscribe => self.subscribed.extend(channels.iter().cloned()),
            OpKind::Unsubscribe => {
                for channel in &channels {
                    self.subscribed.remove(channel);
                }
                self.interest.unconfirm(&channels);
            }
        }
        Op {
            kind,
            channels,
            since,
        }
    }

    /// Redis answered `op`.
    pub(crate) fn completed(&mut self, op: &Op) {
        if op.kind == OpKind::Subscribe {
            self.interest.confirm(&op.channels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels(op: &Op) -> Vec<&str> {
        let mut names: Vec<&str> = op.channels.iter().map(|c| &**c).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn changes_become_one_command_and_settle() {
        let interest = Arc::new(Interest::default());
        let mut subs = Subscriptions::new(interest.clone());
        assert!(subs.next().is_none());
        interest.hold("ws:room:a");
        interest.hold("ws:room:b");
        let op = subs.next().expect("a SUBSCRIBE");
        assert_eq!(
            (op.kind, channels(&op)),
            (OpKind::Subscribe, vec!["ws:room:a", "ws:room:b"])
        );
        assert!(!interest.is_settled("ws:room:a"), "sent, not answered");
        subs.completed(&op);
        assert!(interest.is_settled("ws:room:a"));
        assert!(subs.next().is_none());
        interest.release("ws:room:a");
        let op = subs.next().expect("an UNSUBSCRIBE");
        assert_eq!(
            (op.kind, channels(&op)),
            (OpKind::Unsubscribe, vec!["ws:room:a"])
        );
        assert_eq!(subs.held(), 1);
    }

    #[test]
    fn subscribes_go_first_and_unsubscribes_wait() {
        let interest = Arc::new(Interest::default());
        let mut subs = Subscriptions::new(interest.clone());
        interest.hold("old");
        let op = subs.next().expect("subscribe old");
        subs.completed(&op);
        interest.release("old");
        interest.hold("new");
        let op = subs.next().expect("subscribe new first");
        assert_eq!((op.kind, channels(&op)), (OpKind::Subscribe, vec!["new"]));
        subs.completed(&op);
        let op = subs.next().expect("then unsubscribe old");
        assert_eq!((op.kind, channels(&op)), (OpKind::Unsubscribe, vec!["old"]));
        assert!(subs.next().is_none());
    }

    #[test]
    fn a_channel_redis_dropped_is_subscribed_again_while_wanted() {
        let interest = Arc::new(Interest::default());
        let mut subs = Subscriptions::new(interest.clone());
        interest.hold("ws:room:moving");
        interest.hold("ws:room:gone");
        let op = subs.next().expect("subscribe both");
        subs.completed(&op);
        assert!(interest.is_settled("ws:room:moving"));
        // Redis drops both (their slot moved); one is no longer wanted meanwhile.
        interest.release("ws:room:gone");
        let op = subs.next().expect("unsubscribe gone");
        subs.completed(&op);
        subs.dropped("ws:room:moving");
        subs.dropped("ws:room:gone");
        assert!(!subs.holds("ws:room:moving"));
        assert!(
            !interest.is_settled("ws:room:moving"),
            "no longer confirmed"
        );
        let op = subs.next().expect("subscribe it again");
        assert_eq!(
            (op.kind, channels(&op)),
            (OpKind::Subscribe, vec!["ws:room:moving"])
        );
        subs.completed(&op);
        assert!(interest.is_settled("ws:room:moving"));
        assert!(subs.next().is_none());
    }

    #[test]
    fn a_mass_connect_is_batched() {
        let interest = Arc::new(Interest::default());
        let mut subs = Subscriptions::new(interest.clone());
        for i in 0..2500 {
            interest.hold(&format!("ws:client:{i}"));
        }
        let sizes: Vec<usize> = std::iter::from_fn(|| subs.next())
            .map(|op| op.channels.len())
            .collect();
        assert_eq!(sizes, vec![MAX_BATCH, MAX_BATCH, 2500 - 2 * MAX_BATCH]);
    }

    #[test]
    fn a_join_and_leave_in_between_sends_nothing() {
        let interest = Arc::new(Interest::default());
        let mut subs = Subscriptions::new(interest.clone());
        interest.hold("r");
        interest.release("r");
        assert!(subs.next().is_none());
    }

    #[test]
    fn a_reconnect_restores_everything_wanted() {
        let interest = Arc::new(Interest::default());
        let mut subs = Subscriptions::new(interest.clone());
        for i in 0..1500 {
            interest.hold(&format!("c{i}"));
        }
        let op = subs.next().expect("first batch");
        subs.completed(&op);
        subs.lost();
        assert!(!interest.is_settled("c0"));
        let batches = subs.reset();
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 1500);
        for batch in &batches {
            subs.restored(batch);
        }
        assert!(interest.is_settled("c0") && interest.is_settled("c1499"));
        assert!(
            subs.next().is_none(),
            "the reset covered the pending changes"
        );
    }
}

//! The Redis channels this process needs: its *interest*. Shards hold a channel while they
//! host someone it addresses (a room's first local member, a user's first session, a
//! client's connection); the Redis bridge reads the changes and SUBSCRIBEs or
//! UNSUBSCRIBEs in batches on its own connection (see [`crate::redis`]).
//!
//! # Contract
//!
//! [`Interest`] is `Send + Sync`, shared (`Arc`) by every shard of an engine and by its
//! bridge; one short lock guards it, taken only when a holder comes or goes (never on a
//! message's path). A channel is *wanted* while its hold count is above zero.
//!
//! - [`Interest::hold`] and [`Interest::release`] never wait for Redis: a channel whose
//!   wanted state flips is recorded as a *change* (with the time of the first flip since
//!   the bridge last looked) and the bridge is woken once. A channel held and released
//!   before the bridge looks is a change the bridge finds nothing to do for.
//! - The bridge takes the changes ([`Interest::take_changes`]) or, after it (re)connects,
//!   the whole wanted set ([`Interest::wanted`], which also clears the changes), and
//!   reports what Redis confirmed ([`Interest::confirm`]) or dropped
//!   ([`Interest::unconfirm`], [`Interest::unconfirm_all`] when its connection is lost).
//! - [`Interest::settled`] resolves once a channel is confirmed, or is no longer wanted:
//!   what a history recovery waits for before it reads Redis, so that every message after
//!   the read reaches this node. In patterns mode the bridge's patterns cover every
//!   channel once connected ([`Interest::cover_all`]).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use ahash::{AHashMap, AHashSet};
use tokio::sync::Notify;

/// The channels this process needs, with their holders; see the module doc.
#[derive(Default)]
pub struct Interest {
    state: Mutex<State>,
    /// Wakes the bridge after a change (a stored permit if it is busy).
    changed: Notify,
    /// Wakes every [`Interest::settled`] waiter after a confirmation.
    confirmed: Notify,
}

#[derive(Default)]
struct State {
    /// Wanted channels and how many holders each has (always above zero).
    holders: AHashMap<Box<str>, u32>,
    /// Channels whose wanted state flipped since the bridge last looked, with the first
    /// flip's time.
    changes: AHashMap<Box<str>, Instant>,
    /// Channels Redis confirmed subscribed on the bridge's current connection.
    confirmed: AHashSet<Box<str>>,
    /// The bridge's patterns cover every channel (patterns mode, connected).
    covered: bool,
}

/// A channel whose wanted state changed, as the bridge takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The channel.
    pub channel: Box<str>,
    /// Whether it is wanted now.
    pub wanted: bool,
    /// When it first flipped since the bridge last looked.
    pub since: Instant,
}

impl std::fmt::Debug for Interest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Interest")
            .field("wanted", &state.holders.len())
            .field("changes", &state.changes.len())
            .field("confirmed", &state.confirmed.len())
            .finish()
    }
}

impl Interest {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update below leaves the state whole: a panic elsewhere cannot tear it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a holder of `channel`; the first one makes it wanted.
    pub fn hold(&self, channel: &str) {
        let mut state = self.lock();
        if let Some(count) = state.holders.get_mut(channel) {
            *count += 1;
            return;
        }
        state.holders.insert(channel.into(), 1);
        state.record_change(channel);
        drop(state);
        self.changed.notify_one();
    }

    /// Removes a holder of `channel`; the last one makes it unwanted. Releasing a
    /// channel nobody holds does nothing.
    pub fn release(&self, channel: &str) {
        let mut state = self.lock();
        let Some(count) = state.holders.get_mut(channel) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        state.holders.remove(channel);
        state.record_change(channel);
        drop(state);
        self.changed.notify_one();
        // Nothing to wait for any more.
        self.confirmed.notify_waiters();
    }

    /// Whether someone here holds `channel`.
    pub fn wants(&self, channel: &str) -> bool {
        self.lock().holders.contains_key(channel)
    }

    /// Completes after a change (at once if one happened since the last call).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The channels whose wanted state flipped since the last call, each with its state
    /// now.
    pub fn take_changes(&self) -> Vec<Change> {
        let mut state = self.lock();
        let changes = std::mem::take(&mut state.changes);
        changes
            .into_iter()
            .map(|(channel, since)| Change {
                wanted: state.holders.contains_key(&channel),
                channel,
                since,
            })
            .collect()
    }

    /// Every wanted channel; the pending changes are dropped (this answer covers them).
    pub fn wanted(&self) -> Vec<Box<str>> {
        let mut state = self.lock();
        state.changes.clear();
        state.holders.keys().cloned().collect()
    }

    /// Records channels Redis confirmed subscribed, and wakes their waiters.
    pub fn confirm(&self, channels: &[Box<str>]) {
        self.lock().confirmed.extend(channels.iter().cloned());
        self.confirmed.notify_waiters();
    }

    /// Forgets confirmations of channels being unsubscribed.
    pub fn unconfirm(&self, channels: &[Box<str>]) {
        let mut state = self.lock();
        for channel in channels {
            state.confirmed.remove(channel);
        }
    }

    /// Forgets every confirmation (the bridge's connection is gone).
    pub fn unconfirm_all(&self) {
        let mut state = self.lock();
        state.confirmed.clear();
        state.covered = false;
    }

    /// Records that the bridge's patterns now cover every channel (patterns mode), and
    /// wakes every waiter.
    pub fn cover_all(&self) {
        self.lock().covered = true;
        self.confirmed.notify_waiters();
    }

    /// Whether `channel` is confirmed subscribed, or not wanted (nothing to wait for).
    pub fn is_settled(&self, channel: &str) -> bool {
        let state = self.lock();
        state.covered || state.confirmed.contains(channel) || !state.holders.contains_key(channel)
    }

    /// Whether every wanted channel is confirmed subscribed.
    pub fn is_all_settled(&self) -> bool {
        let state = self.lock();
        state.covered || state.holders.keys().all(|c| state.confirmed.contains(c))
    }

    /// Completes once [`Interest::is_settled`] holds for `channel`.
    pub async fn settled(&self, channel: &str) {
        self.wait_until(|| self.is_settled(channel)).await;
    }

    /// Completes once [`Interest::is_all_settled`] holds.
    pub async fn all_settled(&self) {
        self.wait_until(|| self.is_all_settled()).await;
    }

    /// Completes once `check` holds, checking after each confirmation or release.
    async fn wait_until(&self, check: impl Fn() -> bool) {
        loop {
            let notified = self.confirmed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a confirmation in between is not missed.
            notified.as_mut().enable();
            if check() {
                return;
            }
            notified.await;
        }
    }
}

impl State {
    /// Notes that `channel`'s wanted state flipped (keeping the first flip's time).
    fn record_change(&mut self, channel: &str) {
        if !self.changes.contains_key(channel) {
            self.changes.insert(channel.into(), Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_holder_and_the_last_release_are_changes() {
        let interest = Interest::default();
        interest.hold("ws:room:a");
        interest.hold("ws:room:a");
        assert!(interest.wants("ws:room:a"));
        let changes = interest.take_changes();
        assert_eq!(changes.len(), 1);
        assert!(changes[0].wanted);
        interest.release("ws:room:a");
        assert!(interest.take_changes().is_empty(), "one holder is left");
        interest.release("ws:room:a");
        interest.release("ws:room:a");
        let changes = interest.take_changes();
        assert_eq!((changes.len(), changes[0].wanted), (1, false));
        assert!(interest.wanted().is_empty());
    }

    #[test]
    fn a_flip_and_back_is_one_change_in_its_final_state() {
        let interest = Interest::default();
        interest.hold("ws:user:u");
        interest.release("ws:user:u");
        interest.hold("ws:user:u");
        let changes = interest.take_changes();
        assert_eq!(changes.len(), 1);
        assert!(changes[0].wanted);
    }

    #[test]
    fn the_wanted_set_replaces_the_changes() {
        let interest = Interest::default();
        interest.hold("a");
        interest.hold("b");
        let mut wanted = interest.wanted();
        wanted.sort();
        assert_eq!(wanted, vec!["a".into(), "b".into()] as Vec<Box<str>>);
        assert!(interest.take_changes().is_empty());
    }

    #[tokio::test]
    async fn settled_waits_for_the_confirmation_or_the_release() {
        let interest = std::sync::Arc::new(Interest::default());
        assert!(interest.is_settled("x"), "not wanted: nothing to wait for");
        interest.hold("x");
        assert!(!interest.is_settled("x"));
        let waiter = tokio::spawn({
            let interest = interest.clone();
            async move { interest.settled("x").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        interest.confirm(&["x".into()]);
        waiter.await.expect("the waiter completes");
        interest.unconfirm_all();
        assert!(!interest.is_settled("x"));
        interest.release("x");
        assert!(interest.is_settled("x"));
    }

    #[test]
    fn patterns_cover_every_channel_until_the_connection_goes() {
        let interest = Interest::default();
        interest.hold("a");
        interest.hold("b");
        interest.confirm(&["a".into()]);
        assert!(!interest.is_all_settled());
        interest.cover_all();
        assert!(interest.is_all_settled() && interest.is_settled("b"));
        interest.unconfirm_all();
        assert!(!interest.is_settled("a"));
    }
}

//! What the clients' sockets carried, summed over every connection of a run.
//!
//! Ownership: one [`WireMeter`] per run, shared (`Arc`) by every connection on every
//! worker thread. A connection counts into a local [`WireCounts`] while it parses a read
//! and adds it to the meter once per [`super::WsConn::drain`] (relaxed atomics, a handful
//! per drain, none per frame); upgrades are counted once each. Scenarios take
//! [`WireMeter::snapshot`]s at the edges of their measured window and subtract them.
//! Nothing is reset; the counters only grow (u64: no overflow within any bounded run).

use super::extension::Agreed;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// Plain counts: a snapshot of a [`WireMeter`], or what one drain adds to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WireCounts {
    /// Connections upgraded.
    pub upgrades: u64,
    /// Of those, connections whose server agreed to permessage-deflate.
    pub deflate_agreed: u64,
    /// Of those, connections whose server keeps its compression context across messages
    /// (no `server_no_context_takeover`): each holds its own inflate window.
    pub context_kept: u64,
    /// Bytes of whole frames read after the upgrade (headers included, compressed as
    /// they travelled; control frames too).
    pub wire_bytes: u64,
    /// Data messages delivered (text or binary, after reassembly).
    pub messages: u64,
    /// Of those, messages that arrived compressed.
    pub compressed_messages: u64,
    /// Bytes of the delivered messages after inflation (what the scenarios read).
    pub payload_bytes: u64,
}

impl WireCounts {
    /// The counts accumulated since `earlier` (a snapshot of the same meter).
    pub fn since(&self, earlier: &WireCounts) -> WireCounts {
        WireCounts {
            upgrades: self.upgrades.saturating_sub(earlier.upgrades),
            deflate_agreed: self.deflate_agreed.saturating_sub(earlier.deflate_agreed),
            context_kept: self.context_kept.saturating_sub(earlier.context_kept),
            wire_bytes: self.wire_bytes.saturating_sub(earlier.wire_bytes),
            messages: self.messages.saturating_sub(earlier.messages),
            compressed_messages: self
                .compressed_messages
                .saturating_sub(earlier.compressed_messages),
            payload_bytes: self.payload_bytes.saturating_sub(earlier.payload_bytes),
        }
    }

    /// Counts one frame of `len` bytes as read.
    #[inline]
    pub fn frame(&mut self, len: usize) {
        self.wire_bytes += len as u64;
    }

    /// Counts one delivered message of `len` bytes (after inflation).
    #[inline]
    pub fn message(&mut self, len: usize, compressed: bool) {
        self.messages += 1;
        self.payload_bytes += len as u64;
        self.compressed_messages += u64::from(compressed);
    }
}

/// The run's shared counters (see the module docs).
#[derive(Debug, Default)]
pub struct WireMeter {
    upgrades: AtomicU64,
    deflate_agreed: AtomicU64,
    context_kept: AtomicU64,
    wire_bytes: AtomicU64,
    messages: AtomicU64,
    compressed_messages: AtomicU64,
    payload_bytes: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    if n != 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

impl WireMeter {
    /// Counts one upgrade and what it agreed.
    pub fn upgraded(&self, deflate: Option<&Agreed>) {
        add(&self.upgrades, 1);
        if let Some(a) = deflate {
            add(&self.deflate_agreed, 1);
            add(&self.context_kept, u64::from(a.server_keeps_context()));
        }
    }

    /// Adds what one drain read.
    pub fn add(&self, c: &WireCounts) {
        add(&self.wire_bytes, c.wire_bytes);
        add(&self.messages, c.messages);
        add(&self.compressed_messages, c.compressed_messages);
        add(&self.payload_bytes, c.payload_bytes);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> WireCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WireCounts {
            upgrades: get(&self.upgrades),
            deflate_agreed: get(&self.deflate_agreed),
            context_kept: get(&self.context_kept),
            wire_bytes: get(&self.wire_bytes),
            messages: get(&self.messages),
            compressed_messages: get(&self.compressed_messages),
            payload_bytes: get(&self.payload_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_and_upgrades_add_up_and_windows_subtract() {
        let m = WireMeter::default();
        m.upgraded(None);
        let kept = Agreed::default();
        let reset = Agreed {
            server_no_context_takeover: true,
            ..Agreed::default()
        };
        m.upgraded(Some(&kept));
        m.upgraded(Some(&reset));
        let start = m.snapshot();
        let mut c = WireCounts::default();
        c.frame(300);
        c.frame(2);
        c.message(1000, true);
        c.message(10, false);
        m.add(&c);
        let end = m.snapshot();
        assert_eq!(
            (start.upgrades, start.deflate_agreed, start.context_kept),
            (3, 2, 1)
        );
        let w = end.since(&start);
        assert_eq!(
            w,
            WireCounts {
                wire_bytes: 302,
                messages: 2,
                compressed_messages: 1,
                payload_bytes: 1010,
                ..WireCounts::default()
            }
        );
    }
}

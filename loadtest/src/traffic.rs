//! The `wire` section of every report: what the clients read from their sockets (whole
//! frames after the upgrade, compressed as they travelled), what that inflated to, both
//! per delivered message, and how many connections agreed to permessage-deflate.
//!
//! [`crate::app`] builds it from the run's [`WireMeter`](crate::ws::wire::WireMeter)
//! totals and the measured window a scenario marked ([`WireWindow`]; scenarios without
//! one are judged over the whole run).
//! With `--compression` it warns loudly about connections the server answered without
//! the extension; with `--require-compression` it adds a check that fails the run unless
//! every connection agreed.

use crate::ci::thresholds::Check;
use crate::scenario::fmt_bytes;
use crate::ws::WireCounts;
use serde::Serialize;

/// The meter at the start and at the end of a scenario's measured window.
#[derive(Debug, Clone, Copy)]
pub struct WireWindow {
    /// Snapshot when measuring started.
    pub start: WireCounts,
    /// Snapshot when it ended.
    pub end: WireCounts,
}

/// Whether and how the clients asked for compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Asked {
    /// No offer.
    Off,
    /// `--compression`: offered; a refusal is a warning.
    Offered,
    /// `--require-compression`: offered; a refusal fails the run.
    Required,
}

/// The `wire` section of the report (JSON `wire`).
#[derive(Debug, Clone, Serialize)]
pub struct WireReport {
    /// What the clients asked for: `off`, `offered` or `required`.
    pub compression: Asked,
    /// Connections upgraded during the run.
    pub connections: u64,
    /// Of those, connections whose server agreed to permessage-deflate.
    pub compression_agreed: u64,
    /// Connections that offered it and were answered without it (0 when not offered).
    pub without_compression: u64,
    /// Connections whose server keeps its compression context across messages (no
    /// `server_no_context_takeover`; each holds its own inflate window).
    pub server_context_takeover: u64,
    /// What the figures below cover: `measured` (the scenario's measured window) or
    /// `run` (everything after the upgrades, setup included).
    pub window: &'static str,
    /// Bytes of whole frames read in the window (headers included, as on the wire).
    pub wire_bytes: u64,
    /// Data messages delivered in the window.
    pub deliveries: u64,
    /// Of those, messages that arrived compressed.
    pub compressed_deliveries: u64,
    /// Bytes of the delivered messages after inflation.
    pub payload_bytes: u64,
    /// wire_bytes / deliveries.
    pub wire_bytes_per_delivery: f64,
    /// payload_bytes / deliveries: what each message is once inflated.
    pub payload_bytes_per_delivery: f64,
    /// payload_bytes / wire_bytes: the compression ratio on the wire (just under 1 for
    /// plain frames, their headers).
    pub compression_ratio: f64,
    /// Totals of the whole run.
    pub run: WireCounts,
}

impl WireReport {
    /// The section for a run: `total` is the meter at the end, `window` the scenario's
    /// measured window if it marked one.
    pub fn new(asked: Asked, total: WireCounts, window: Option<WireWindow>) -> WireReport {
        let (label, w) = match window {
            Some(w) => ("measured", w.end.since(&w.start)),
            None => ("run", total),
        };
        let per = |v: u64| ratio(v, w.messages);
        WireReport {
            compression: asked,
            connections: total.upgrades,
            compression_agreed: total.deflate_agreed,
            without_compression: if asked == Asked::Off {
                0
            } else {
                total.upgrades - total.deflate_agreed
            },
            server_context_takeover: total.context_kept,
            window: label,
            wire_bytes: w.wire_bytes,
            deliveries: w.messages,
            compressed_deliveries: w.compressed_messages,
            payload_bytes: w.payload_bytes,
            wire_bytes_per_delivery: per(w.wire_bytes),
            payload_bytes_per_delivery: per(w.payload_bytes),
            compression_ratio: ratio(w.payload_bytes, w.wire_bytes),
            run: total,
        }
    }

    /// Loud warnings: connections that asked for compression and run without it.
    pub fn warnings(&self) -> Vec<String> {
        if self.without_compression == 0 {
            return Vec::new();
        }
        vec![format!(
            "COMPRESSION NOT NEGOTIATED: {} of {} connections offered permessage-deflate and the server answered without it; their traffic is uncompressed",
            self.without_compression, self.connections
        )]
    }

    /// With `--require-compression`: the check that every connection agreed (and that
    /// there was one).
    pub fn check(&self) -> Option<Check> {
        (self.compression == Asked::Required).then(|| Check {
            option: "--require-compression",
            limit: 0.0,
            value: Some(self.without_compression as f64),
            shown: format!(
                "{} of {} connections agreed to permessage-deflate",
                self.compression_agreed, self.connections
            ),
            passed: self.connections > 0 && self.without_compression == 0,
        })
    }

    /// The human lines (section `wire`).
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let compression = match self.compression {
            Asked::Off => "not offered".to_string(),
            _ => format!(
                "{}: agreed by {} of {} connections ({} without; server keeps context on {})",
                if self.compression == Asked::Required {
                    "required"
                } else {
                    "offered"
                },
                self.compression_agreed,
                self.connections,
                self.without_compression,
                self.server_context_takeover
            ),
        };
        vec![
            ("compression", compression),
            (
                "read",
                format!(
                    "{} on the wire in {} messages ({} compressed), {} inflated",
                    fmt_bytes(self.wire_bytes as f64),
                    self.deliveries,
                    self.compressed_deliveries,
                    fmt_bytes(self.payload_bytes as f64)
                ),
            ),
            (
                "per delivery",
                format!(
                    "{:.1} B on the wire, {:.1} B inflated (ratio {:.2})",
                    self.wire_bytes_per_delivery,
                    self.payload_bytes_per_delivery,
                    self.compression_ratio
                ),
            ),
        ]
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(upgrades: u64, agreed: u64, wire: u64, messages: u64, payload: u64) -> WireCounts {
        WireCounts {
            upgrades,
            deflate_agreed: agreed,
            context_kept: 0,
            wire_bytes: wire,
            messages,
            compressed_messages: if agreed > 0 { messages } else { 0 },
            payload_bytes: payload,
        }
    }

    #[test]
    fn per_delivery_figures_cover_the_measured_window() {
        let start = counts(100, 100, 5_000, 100, 20_000);
        let end = counts(100, 100, 305_000, 1_100, 1_044_000);
        let r = WireReport::new(Asked::Offered, end, Some(WireWindow { start, end }));
        assert_eq!(
            (r.window, r.deliveries, r.wire_bytes),
            ("measured", 1000, 300_000)
        );
        assert_eq!(r.wire_bytes_per_delivery, 300.0);
        assert_eq!(r.payload_bytes_per_delivery, 1024.0);
        assert!((r.compression_ratio - 3.413).abs() < 0.001);
        assert!(r.warnings().is_empty());
        assert_eq!(r.check(), None, "only --require-compression checks");
        let run = WireReport::new(Asked::Off, end, None);
        assert_eq!((run.window, run.deliveries), ("run", 1_100));
    }

    #[test]
    fn refusals_warn_when_offered_and_fail_when_required() {
        let plain = counts(10, 0, 100, 1, 98);
        let offered = WireReport::new(Asked::Offered, plain, None);
        assert_eq!(offered.without_compression, 10);
        assert!(offered.warnings()[0].starts_with("COMPRESSION NOT NEGOTIATED: 10 of 10"));
        let required = WireReport::new(Asked::Required, plain, None);
        assert!(!required.check().unwrap().passed);
        let partial = WireReport::new(Asked::Required, counts(10, 9, 1, 1, 1), None);
        assert!(!partial.check().unwrap().passed);
        let all = WireReport::new(Asked::Required, counts(10, 10, 1, 1, 1), None);
        assert!(all.check().unwrap().passed && all.warnings().is_empty());
        let none = WireReport::new(Asked::Required, WireCounts::default(), None);
        assert!(
            !none.check().unwrap().passed,
            "no connection proves nothing"
        );
        let off = WireReport::new(Asked::Off, plain, None);
        assert!(off.warnings().is_empty() && off.check().is_none());
    }
}

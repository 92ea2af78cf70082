//! The end of a run: a human summary on stdout and, with `--json FILE`, the same facts as
//! one JSON document (scenario, parameters, start time, host, versions, server, results,
//! the load generator's own CPU use, warnings).

use crate::ci::thresholds::Check;
use crate::error::{Error, Result};
use crate::meter::ClientUsage;
use crate::proc::{HostInfo, ServerInfo};
use crate::traffic::WireReport;
use serde::Serialize;
use std::fmt::{Display, Write as _};
use std::path::Path;

/// Titled sections of `label: value` lines, built by each scenario.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Summary {
    /// Starts a new section.
    pub fn section(&mut self, title: &str) -> &mut Self {
        self.sections.push((title.to_string(), Vec::new()));
        self
    }

    /// Adds a line to the current section.
    pub fn line(&mut self, label: &str, value: impl Display) -> &mut Self {
        if self.sections.is_empty() {
            self.section("");
        }
        if let Some((_, lines)) = self.sections.last_mut() {
            lines.push((label.to_string(), value.to_string()));
        }
        self
    }

    fn render(&self, out: &mut String) {
        let width = self
            .sections
            .iter()
            .flat_map(|(_, l)| l.iter().map(|(k, _)| k.len()))
            .max()
            .unwrap_or(0);
        for (title, lines) in &self.sections {
            let _ = writeln!(out, "\n{title}");
            for (k, v) in lines {
                let _ = writeln!(out, "  {k:<width$}  {v}");
            }
        }
    }
}

/// Versions recorded with the run.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    /// This tool.
    pub shardcast_load: &'static str,
    /// The server's `Server` response header, if it sends one.
    pub server_header: Option<String>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `connect`, `fanout`, `chat` or `churn`.
    pub scenario: String,
    /// RFC 3339 start time (UTC).
    pub started_at: String,
    /// Wall seconds of the whole run.
    pub duration_s: f64,
    /// WebSocket URL.
    pub target: String,
    /// The command-line options (secrets redacted).
    pub parameters: serde_json::Value,
    /// Load-generating host.
    pub host: HostInfo,
    /// Versions.
    pub versions: Versions,
    /// Server process facts (with `--server-pid`).
    pub server: Option<ServerInfo>,
    /// Scenario results.
    pub results: serde_json::Value,
    /// What the clients read from their sockets, per delivery, and the compression they
    /// agreed.
    pub wire: WireReport,
    /// The load generator's CPU use and saturation verdict.
    pub client: ClientUsage,
    /// Loud warnings (saturation first).
    pub warnings: Vec<String>,
    /// The pass/fail thresholds asked for, each with the measured value.
    pub thresholds: Vec<Check>,
    /// Human summary lines.
    #[serde(skip)]
    pub summary: Summary,
}

impl Report {
    /// The human summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "shardcast-load {} against {}",
            self.scenario, self.target
        );
        let _ = writeln!(
            out,
            "  started {}  ({:.1} s)  host {}  load CPUs {:?}",
            self.started_at, self.duration_s, self.host.hostname, self.host.load_cpus
        );
        if let Some(s) = &self.server {
            let _ = writeln!(
                out,
                "  server pid {} ({}) on CPUs {}",
                s.pid, s.comm, s.cpus_allowed
            );
        }
        self.summary.render(&mut out);
        self.render_wire(&mut out);
        self.render_thresholds(&mut out);
        self.render_client(&mut out);
        self.render_warnings(&mut out);
        out
    }

    fn render_wire(&self, out: &mut String) {
        let w = &self.wire;
        let window = if w.window == "measured" {
            "measured window"
        } else {
            "whole run"
        };
        let _ = writeln!(out, "\nwire ({window})");
        for (k, v) in w.lines() {
            let _ = writeln!(out, "  {k:<14}  {v}");
        }
    }

    fn render_client(&self, out: &mut String) {
        let c = &self.client;
        let _ = writeln!(
            out,
            "\nload generator (measured window {:.1} s)",
            c.window_s
        );
        let _ = writeln!(
            out,
            "  process CPU  {:.2} s ({:.0}% of a core)",
            c.process_cpu_s,
            c.process_cores * 100.0
        );
        for t in &c.threads {
            let lag = t
                .loop_lag
                .map(|l| format!(", timer lag p99 {} µs", l.p99_us))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<18} {:.2} s ({:.0}%{lag})",
                t.name,
                t.cpu_s,
                t.util * 100.0
            );
        }
        if !c.load_cpus.is_empty() {
            let _ = writeln!(
                out,
                "  CPUs {:?} busy {:.0}% (all processes)",
                c.load_cpus,
                c.load_cpus_busy * 100.0
            );
        }
        let _ = writeln!(
            out,
            "  other processes    {:.2} cores (neither us nor the server; Redis included)",
            c.other_cores
        );
    }

    fn render_thresholds(&self, out: &mut String) {
        if self.thresholds.is_empty() {
            return;
        }
        let _ = writeln!(out, "\nthresholds");
        for c in &self.thresholds {
            let verdict = if c.passed { "pass" } else { "FAIL" };
            let _ = writeln!(out, "  {verdict}  {}", c.line());
        }
    }

    /// One line per breached threshold.
    pub fn breaches(&self) -> Vec<String> {
        self.thresholds
            .iter()
            .filter(|c| !c.passed)
            .map(Check::line)
            .collect()
    }

    fn render_warnings(&self, out: &mut String) {
        if self.warnings.is_empty() {
            return;
        }
        let bar = "!".repeat(78);
        let _ = writeln!(out, "\n{bar}");
        for w in &self.warnings {
            let _ = writeln!(out, "!! WARNING: {w}");
        }
        let _ = writeln!(out, "{bar}");
    }

    /// Writes the JSON document to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(Error::io(format!("writing {}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_aligns_labels_per_report() {
        let mut s = Summary::default();
        s.section("a").line("x", 1).line("longer", "two");
        let mut out = String::new();
        s.render(&mut out);
        assert_eq!(out, "\na\n  x       1\n  longer  two\n");
    }
}

//! Live progress on the terminal (indicatif), hidden when stdout is not a terminal or
//! with `--no-progress`. Scenarios set a phase and refresh one message line.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A progress line.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Visible only if `enabled` and stdout is a terminal.
    pub fn new(enabled: bool) -> Self {
        let target = if enabled && std::io::stdout().is_terminal() {
            ProgressDrawTarget::stdout_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(125));
        }
        Progress { bar }
    }

    /// Starts a phase: a bar when `total` is known, a spinner otherwise.
    pub fn phase(&self, name: &str, total: Option<u64>) {
        let style = match total {
            Some(t) => {
                self.bar.set_length(t);
                ProgressStyle::with_template("{spinner} {prefix:>9} [{bar:30}] {pos}/{len} {msg}")
            }
            None => ProgressStyle::with_template("{spinner} {prefix:>9} {elapsed:>4} {msg}"),
        };
        if let Ok(s) = style {
            self.bar.set_style(s.progress_chars("=> "));
        }
        self.bar.set_prefix(name.to_string());
        self.bar.set_position(0);
        self.bar.reset_elapsed();
    }

    /// Updates position and message.
    pub fn update(&self, pos: u64, msg: String) {
        self.bar.set_position(pos);
        self.bar.set_message(msg);
    }

    /// Prints a line above the bar (or to stderr when hidden).
    pub fn note(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

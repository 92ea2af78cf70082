//! `shardcast-load` binary: parse the command line, run, print the summary. Exit code: 0,
//! 1 when a threshold (`--max-p99-ms`, `--max-loss`, …) was breached (one line each on
//! stderr), 2 when the run failed.

use clap::Parser;
use shardcast_load::{app, cli::Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match app::run(cli) {
        Ok(done) => {
            print!("{}", done.text);
            for breach in &done.breaches {
                eprintln!("shardcast-load: threshold breached: {breach}");
            }
            if let Some(e) = done.export_error {
                eprintln!("shardcast-load: error: {e}");
                ExitCode::from(2)
            } else if done.breaches.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("shardcast-load: error: {e}");
            ExitCode::from(2)
        }
    }
}

//! `shardcast-load` binary: parse the command line, run, print the summary.

use clap::Parser;
use shardcast_load::{app, cli::Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match app::run(cli) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardcast-load: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

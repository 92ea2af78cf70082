//! The `shardcast` binary: allocator, logging, subcommand dispatch, exit code. Its own
//! modules live in `src/cli/`; the engine is the `shardcast` library.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;
use mimalloc::MiMalloc;

use cli::args::{Cli, Command};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    init_tracing();
    let result = match Cli::parse().command {
        Command::Serve(args) => cli::serve::run(*args),
        Command::Token(args) => cli::token::mint(args).map(|token| println!("{token}")),
        Command::Emit(args) => cli::emit::emit(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: shardcast: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

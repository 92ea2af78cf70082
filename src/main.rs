//! The `shardcast` binary: allocator, logging, subcommand dispatch, exit code.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use mimalloc::MiMalloc;
use shardcast::cli::{Cli, Command};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => shardcast::serve::run(*args),
        Command::Token(args) => shardcast::serve::mint(args).map(|token| println!("{token}")),
        Command::Emit(args) => shardcast::serve::emit(args),
    };
    match result.context("shardcast") {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
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

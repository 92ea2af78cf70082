//! The `shardcast` binary: allocator, logging, subcommand dispatch, exit code. Its own
//! modules live in `src/cli/`; the engine is the `shardcast` library. Every error is
//! printed once, here, as `error: shardcast: <what happened; what to do>`.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;
use mimalloc::MiMalloc;

use cli::args::{Cli, Command, ConfigCommand};
use cli::logging::Logging;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        // `serve` installs its logging once its configuration is known.
        Command::Serve(args) => cli::serve::run(args),
        Command::CheckConfig(args) => cli::check::check(args).map(|report| print!("{report}")),
        Command::Config(args) => {
            print_config(args.what);
            Ok(())
        }
        Command::Token(args) => cli::token::mint(args).map(|token| println!("{token}")),
        Command::Emit(args) => {
            Logging::install_default();
            cli::emit::emit(args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: shardcast: {err}");
            ExitCode::FAILURE
        }
    }
}

fn print_config(what: ConfigCommand) {
    match what {
        ConfigCommand::Example => print!("{}", cli::docs::example()),
        ConfigCommand::Table => print!("{}", cli::docs::table()),
    }
}

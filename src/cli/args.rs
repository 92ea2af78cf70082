//! Stage one of the command line: the raw clap arguments of every subcommand. Stage two
//! ([`super::config`]) merges `serve`'s with the environment, the TOML file and the
//! defaults into a validated configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, Parser, Subcommand};

use super::settings::{self, Kind, Meta};

/// shardcast: a shard-per-core WebSocket real-time server (Ignis-compatible).
#[derive(Debug, Parser)]
#[command(name = "shardcast", version = shardcast::build_info::LONG_VERSION, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Validate the configuration as `serve` would (flags, environment, FILE) and print
    /// every effective value with where it came from (secrets redacted).
    CheckConfig(CheckArgs),
    /// Print a commented example config file, or the README's settings table.
    Config(ConfigArgs),
    /// Publish one message to every node through Redis (like an Ignis WebSocketEmitter).
    Emit(EmitArgs),
    /// Mint an HS256/384/512 JWT for trying things out.
    Token(TokenArgs),
}

/// `shardcast serve` flags, generated from [`settings::TABLE`]: the values given on the
/// command line, as text, by key. Their `SHARDCAST_*` variables are read by
/// [`super::layers::Layers::capture`] (not by clap, so that an error names the variable).
#[derive(Debug, Default, Clone)]
pub struct ServeArgs {
    /// Flag values by setting key (a list's values joined with `,`).
    pub flags: BTreeMap<&'static str, String>,
}

/// `shardcast check-config` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config file to check (the same as `--config FILE`).
    pub file: Option<PathBuf>,
    /// Any `serve` flag, to check the whole command line.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// `shardcast config` arguments.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to print.
    #[command(subcommand)]
    pub what: ConfigCommand,
}

/// What `shardcast config` prints.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// A commented TOML file with every key and its default (deploy/shardcast.toml).
    Example,
    /// The README's Markdown table of every setting.
    Table,
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let given = settings::TABLE
            .iter()
            .filter_map(|meta| Some((meta.key, flag_text(matches, meta)?)));
        Ok(ServeArgs {
            flags: given.collect(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ServeArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        command.args(settings::TABLE.iter().flat_map(flag_args))
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

/// The text `meta`'s flag was given (`--no-key` gives `false`).
fn flag_text(matches: &ArgMatches, meta: &Meta) -> Option<String> {
    if meta.kind == Kind::Bool && matches.get_flag(&negation(meta)) {
        return Some("false".to_owned());
    }
    let values = matches.get_many::<String>(meta.key)?;
    Some(values.cloned().collect::<Vec<_>>().join(","))
}

/// `no_key`: the id of a boolean's `--no-key`.
fn negation(meta: &Meta) -> String {
    format!("no_{}", meta.key)
}

/// The clap arguments of one setting: `--key` (and `--no-key` for a boolean).
fn flag_args(meta: &'static Meta) -> Vec<Arg> {
    let long = meta.flag().trim_start_matches('-').to_owned();
    let arg = Arg::new(meta.key)
        .long(long.clone())
        .value_name(meta.value_name)
        .help(flag_help(meta));
    // The last of a repeated flag wins (`--dev --dev=false`), as in most CLIs.
    let arg = match meta.kind {
        Kind::List => arg,
        _ => arg.overrides_with(meta.key),
    };
    match meta.kind {
        Kind::Scalar => vec![arg],
        Kind::List => vec![arg.action(ArgAction::Append)],
        Kind::Bool => vec![
            arg.overrides_with(negation(meta))
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true"),
            Arg::new(negation(meta))
                .long(format!("no-{long}"))
                .action(ArgAction::SetTrue)
                .overrides_with(meta.key)
                .hide(true),
        ],
    }
}

/// `--help`'s text of one setting: its doc, default and variable.
fn flag_help(meta: &Meta) -> String {
    let default = match meta.default {
        "" => "none".to_owned(),
        text => text.to_owned(),
    };
    let mut help = format!(
        "{} [default: {default}] [env: {}]",
        meta.doc(),
        meta.env_name()
    );
    if meta.kind == Kind::Bool {
        help.push_str(&format!(
            " [off: {}=false or --no-{}]",
            meta.flag(),
            &meta.flag()[2..]
        ));
    }
    help
}

/// `shardcast emit` arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["client", "user", "room", "broadcast"])))]
pub struct EmitArgs {
    /// Redis URL (repeat or comma-separate for a cluster).
    #[arg(long, env = "SHARDCAST_REDIS", value_delimiter = ',', required = true)]
    pub redis: Vec<String>,
    /// Event name.
    #[arg(long)]
    pub event: String,
    /// Data as JSON text (omitted when absent).
    #[arg(long)]
    pub data: Option<String>,
    /// Send to one client id.
    #[arg(long)]
    pub client: Option<String>,
    /// Send to every session of a user.
    #[arg(long)]
    pub user: Option<String>,
    /// Send to a room.
    #[arg(long)]
    pub room: Option<String>,
    /// Client ids to skip (room or broadcast).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Send to every client.
    #[arg(long)]
    pub broadcast: bool,
    /// SPUBLISH on a Redis Cluster, for a fleet run with `--redis-subscribe sharded`
    /// (nodes in the other modes, and Ignis nodes, do not hear it).
    #[arg(long)]
    pub sharded: bool,
}

/// `shardcast token` arguments.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The HMAC secret the server verifies with.
    #[arg(long, env = "SHARDCAST_JWT_SECRET")]
    pub secret: String,
    /// The user id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// Lifetime in seconds (adds `exp`).
    #[arg(long)]
    pub ttl_s: Option<u64>,
    /// Extra claim `key=value` (value parsed as JSON when it is JSON).
    #[arg(long = "claim")]
    pub claims: Vec<String>,
    /// HS256, HS384 or HS512.
    #[arg(long, default_value = "HS256")]
    pub alg: String,
}

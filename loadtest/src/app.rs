//! Stage two of the command line: validate the options, prepare the process (file-descriptor
//! limit, tokens, addresses), run the chosen scenario on the main thread's runtime, turn
//! its outcome into a [`Report`], write the exports and judge the thresholds
//! ([`crate::ci`]).

use crate::ci::{self, thresholds::Check};
use crate::cli::{Cli, Command, CommonArgs, NodeArgs};
use crate::error::{Error, Result};
use crate::nodes::Nodes;
use crate::proc::{self, ServerProbe};
use crate::progress::Progress;
use crate::report::{Report, Versions};
use crate::runtime::ThreadRegistry;
use crate::scenario::{self, Ctx, Outcome};
use crate::session::SessionConfig;
use crate::stats::Live;
use crate::target::{SourceAddrs, Target};
use crate::token::TokenSource;
use crate::traffic::{Asked, WireReport};
use crate::ws::tls::client_config;
use crate::ws::{ConnOptions, TlsClient, WireMeter};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// File descriptors kept free beyond one per client.
const FD_MARGIN: u64 = 64;

/// What a finished run hands to `main`.
#[derive(Debug)]
pub struct Finished {
    /// The summary to print.
    pub text: String,
    /// One line per breached threshold (empty: exit 0).
    pub breaches: Vec<String>,
    /// A plot or histogram file that could not be written (the run and its report are
    /// complete: exit 2 after printing them).
    pub export_error: Option<Error>,
}

/// Runs what the command line asks for.
pub fn run(cli: Cli) -> Result<Finished> {
    match cli.command {
        Command::ClientBench(a) => Ok(Finished {
            text: crate::client_bench::run(&a)?,
            breaches: Vec::new(),
            export_error: None,
        }),
        cmd => run_scenario(cmd),
    }
}

fn common_of(cmd: &Command) -> Option<&CommonArgs> {
    match cmd {
        Command::Connect(a) => Some(&a.common),
        Command::Fanout(a) => Some(&a.common),
        Command::Chat(a) => Some(&a.common),
        Command::Churn(a) => Some(&a.common),
        Command::Soak(a) => Some(&a.common),
        Command::Recovery(a) => Some(&a.common),
        Command::ClientBench(_) => None,
    }
}

/// Sockets a scenario holds open at once.
fn sockets_needed(cmd: &Command) -> u64 {
    match cmd {
        Command::Connect(a) => a.clients,
        Command::Fanout(a) => a.clients + a.publisher.http_conns as u64,
        Command::Chat(a) => a.clients + 1,
        Command::Churn(a) => a.common.max_inflight as u64,
        // Members, churn cycles in flight, the publisher's connections.
        Command::Soak(a) => {
            a.clients + a.common.max_inflight as u64 + a.publisher.http_conns as u64 + 1
        }
        // One socket per client (a drop closes before the reconnect), the publisher's.
        Command::Recovery(a) => a.clients + a.publisher.http_conns as u64 + 1,
        Command::ClientBench(a) => a.connections * 2,
    }
}

fn parameters(cmd: &Command) -> serde_json::Value {
    let v = match cmd {
        Command::Connect(a) => serde_json::to_value(a),
        Command::Fanout(a) => serde_json::to_value(a),
        Command::Chat(a) => serde_json::to_value(a),
        Command::Churn(a) => serde_json::to_value(a),
        Command::Soak(a) => serde_json::to_value(a),
        Command::Recovery(a) => serde_json::to_value(a),
        Command::ClientBench(a) => serde_json::to_value(a),
    };
    v.unwrap_or_default()
}

fn run_scenario(cmd: Command) -> Result<Finished> {
    let common = common_of(&cmd)
        .cloned()
        .ok_or_else(|| Error::Config("not a scenario".into()))?;
    if let Some(a) = cmd.ci() {
        ci::validate(a)?;
    }
    let started = SystemTime::now();
    let t0 = Instant::now();
    let ctx = prepare(&common, sockets_needed(&cmd), nodes_of(&cmd))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("building the main runtime"))?;
    let outcome = rt.block_on(dispatch(&ctx, &cmd));
    ctx.progress.finish();
    let mut outcome = outcome?;
    let facts = outcome.ci.take();
    let wire = WireReport::new(asked(&common), ctx.wire(), outcome.wire);
    let mut checks = judge(&cmd, facts.as_ref());
    checks.append(&mut outcome.checks);
    checks.extend(wire.check());
    let report = build_report(&cmd, &common, started, t0.elapsed(), outcome, wire, checks);
    if let Some(path) = &common.json {
        report.write_json(path)?;
    }
    let export_error = match (cmd.ci(), &facts) {
        (Some(a), Some(f)) => ci::export(a, f).err(),
        _ => None,
    };
    Ok(Finished {
        text: report.render(),
        breaches: report.breaches(),
        export_error,
    })
}

/// What the clients ask of permessage-deflate.
fn asked(c: &CommonArgs) -> Asked {
    match (c.require_compression, c.compression) {
        (true, _) => Asked::Required,
        (false, true) => Asked::Offered,
        (false, false) => Asked::Off,
    }
}

/// The thresholds the options ask for, evaluated.
fn judge(cmd: &Command, facts: Option<&ci::CiFacts>) -> Vec<Check> {
    match (cmd.ci(), facts) {
        (Some(a), Some(f)) => ci::thresholds::evaluate(a, f),
        _ => Vec::new(),
    }
}

async fn dispatch(ctx: &Ctx, cmd: &Command) -> Result<Outcome> {
    match cmd {
        Command::Connect(a) => scenario::connect::run(ctx, a).await,
        Command::Fanout(a) => scenario::fanout::run(ctx, a).await,
        Command::Chat(a) => scenario::chat::run(ctx, a).await,
        Command::Churn(a) => scenario::churn::run(ctx, a).await,
        Command::Soak(a) => scenario::soak::run(ctx, a).await,
        Command::Recovery(a) => scenario::recovery::run(ctx, a).await,
        Command::ClientBench(_) => Err(Error::Config("not a scenario".into())),
    }
}

fn build_report(
    cmd: &Command,
    common: &CommonArgs,
    started: SystemTime,
    took: Duration,
    o: Outcome,
    wire: WireReport,
    thresholds: Vec<Check>,
) -> Report {
    let mut warnings = o.client.warnings();
    warnings.extend(wire.warnings());
    warnings.extend(o.warnings);
    Report {
        scenario: cmd.name().to_string(),
        started_at: humantime::format_rfc3339_millis(started).to_string(),
        duration_s: took.as_secs_f64(),
        target: common.url.clone(),
        parameters: parameters(cmd),
        host: proc::host_info(),
        versions: Versions {
            shardcast_load: env!("CARGO_PKG_VERSION"),
            server_header: o.server_header,
        },
        server: common.server_pid.and_then(|p| proc::server_info(p).ok()),
        results: o.results,
        wire,
        client: o.client,
        warnings,
        thresholds,
        summary: o.summary,
    }
}

/// The node options and the room count of a scenario that spreads its clients over
/// several nodes (`fanout`).
fn nodes_of(cmd: &Command) -> Option<(&NodeArgs, u64)> {
    match cmd {
        Command::Fanout(a) => Some((&a.nodes, a.rooms)),
        _ => None,
    }
}

/// The nodes the clients connect to: the `--node`s when given, else `--url` alone. Each
/// goes through the loopback check.
fn resolve_nodes(c: &CommonArgs, node_args: Option<(&NodeArgs, u64)>) -> Result<Nodes> {
    let url_target = Target::from_url(&c.url, c.allow_non_loopback)?;
    let Some((f, rooms)) = node_args.filter(|(f, _)| !f.urls.is_empty()) else {
        return Ok(Nodes::single(url_target));
    };
    let targets = f
        .urls
        .iter()
        .map(|url| Target::from_url(url, c.allow_non_loopback))
        .collect::<Result<Vec<_>>>()?;
    Nodes::new(targets, f.placement, rooms)
}

/// `--source-ips` addresses, checked against every node.
fn source_addrs(count: u32, nodes: &Nodes) -> Result<SourceAddrs> {
    let mut sources = SourceAddrs::default();
    for t in nodes.targets() {
        sources = SourceAddrs::loopback(count, t.addr)?;
    }
    Ok(sources)
}

/// Validates the shared options and builds the scenario context.
fn prepare(c: &CommonArgs, sockets: u64, node_args: Option<(&NodeArgs, u64)>) -> Result<Ctx> {
    if c.threads == 0 || c.threads > 256 {
        return Err(Error::Config("--threads must be 1..=256".into()));
    }
    if c.connect_rate.is_nan() || c.connect_rate <= 0.0 || c.max_inflight == 0 {
        return Err(Error::Config(
            "--connect-rate and --max-inflight must be positive".into(),
        ));
    }
    let nodes = resolve_nodes(c, node_args)?;
    let sources = source_addrs(c.source_ips, &nodes)?;
    let tls = tls_client(c, nodes.first())?;
    let token = match (&c.jwt_secret, &c.token) {
        (Some(s), _) => TokenSource::Jwt {
            secret: s.as_bytes().to_vec(),
            ttl_s: c.jwt_ttl_s,
        },
        (None, Some(t)) => TokenSource::Raw(t.clone()),
        (None, None) => {
            return Err(Error::Config(
                "pass --jwt-secret SECRET (HS256 token per client, sub = load-{i}) or --token TOKEN (dev-mode servers)".into(),
            ));
        }
    };
    check_fd_limit(sockets)?;
    let server = match c.server_pid {
        Some(pid) => {
            proc::sample(pid).map_err(Error::io(format!("reading /proc/{pid} (--server-pid)")))?;
            Some(ServerProbe { pid })
        }
        None => None,
    };
    let session = SessionConfig {
        nodes,
        sources,
        token,
        connect_timeout: Duration::from_millis(c.connect_timeout_ms),
        auth_timeout: Duration::from_millis(c.auth_timeout_ms),
        tls,
        conn: ConnOptions {
            deflate: c.offers_compression(),
            meter: Some(Arc::new(WireMeter::default())),
        },
    };
    Ok(Ctx {
        common: c.clone(),
        session: Arc::new(session),
        server,
        progress: Progress::new(!c.no_progress),
        live: Arc::new(Live::default()),
        registry: ThreadRegistry::default(),
    })
}

/// TLS for a `wss://` target: `--tls-ca` or `--tls-insecure` says what to trust.
fn tls_client(c: &CommonArgs, target: &Target) -> Result<Option<TlsClient>> {
    let asked = c.tls_ca.is_some() || c.tls_insecure;
    match (target.tls, asked) {
        (false, false) => return Ok(None),
        (false, true) => {
            return Err(Error::Config(
                "--tls-ca and --tls-insecure need a wss:// --url".into(),
            ));
        }
        (true, false) => {
            return Err(Error::Config(
                "a wss:// --url needs --tls-ca FILE (PEM roots to trust) or --tls-insecure".into(),
            ));
        }
        (true, true) => {}
    }
    let config = client_config(c.tls_ca.as_deref()).map_err(Error::Config)?;
    TlsClient::new(config, &target.server_name)
        .map(Some)
        .map_err(Error::Config)
}

fn check_fd_limit(sockets: u64) -> Result<()> {
    let limit = proc::raise_nofile().map_err(Error::io("raising RLIMIT_NOFILE"))?;
    if sockets + FD_MARGIN > limit {
        return Err(Error::Config(format!(
            "about {} file descriptors are needed but RLIMIT_NOFILE is {limit} (hard limit); raise it (ulimit -Hn) or use fewer clients",
            sockets + FD_MARGIN
        )));
    }
    Ok(())
}

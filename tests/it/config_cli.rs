//! The binary's configuration as an operator meets it (issue 11): one table behind the
//! flags, the environment, the file, `--help`, `config example` and the README; precedence
//! for every key, booleans included; errors that name where a value came from, said once
//! with what to do; `check-config`.

use std::collections::BTreeMap;
use std::net::TcpListener;

use serde_json::json;
use shardcast::protocol::CloseReason;

use crate::support::WsClient;
use crate::support::served::{Served, refusal, run, tempdir};

/// Asserts that `err` is one `error:` line that says `what` once and `action` too.
fn said_once(err: &str, what: &str, action: &str) {
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{err}");
    assert_eq!(err.matches(what).count(), 1, "{what:?} once in:\n{err}");
    assert!(err.contains(action), "no action {action:?} in:\n{err}");
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Regression: each of these was printed twice, or without what to do.
#[test]
fn errors_are_said_once_with_what_to_do() {
    let dir = tempdir();
    let err = refusal(&["serve", "--dev", "--path", "ws"]);
    said_once(&err, "must start with `/`", "--path ws");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let err = refusal(&["serve", "--dev", "--listen", &port]);
    said_once(
        &err,
        "cannot listen on",
        "choose another address with --listen",
    );
    let err = refusal(&["serve", "--dev", "--config", "/no/such/shardcast.toml"]);
    said_once(&err, "/no/such/shardcast.toml", "check the path");
    let err = refusal(&["serve", "--jwt-public-key", "/no/such/key.pem"]);
    said_once(&err, "/no/such/key.pem", "check the path");
    let bad_pem = write(&dir, "bad.pem", "not a key\n");
    let err = refusal(&["serve", "--jwt-public-key", &bad_pem]);
    said_once(&err, "not a PEM file", "BEGIN PUBLIC KEY");
    let err = refusal(&["serve", "--jwt-secret", "s", "--jwt-alg", "none"]);
    said_once(
        &err,
        "unknown JWT algorithm `none`",
        "expected one of HS256",
    );
    let err = refusal(&["serve", "--dev", "--allow-rooms", "bad-{x}"]);
    said_once(&err, "unknown placeholder", "only {userId} is supported");
    let err = refusal(&["token", "--secret", "s", "--sub", "u", "--alg", "RS256"]);
    said_once(&err, "cannot mint token", "only HS256, HS384 and HS512");
}

/// Regression: `SHARDCAST_SHARDS=abc` was reported as `--shards`; zero durations by their
/// internal field name; a file's value without its line.
#[test]
fn errors_name_the_variable_the_flag_or_the_file_line() {
    let (ok, _, err) = run(&["serve", "--dev"], &[("SHARDCAST_SHARDS", "abc")]);
    assert!(!ok);
    said_once(&err, "SHARDCAST_SHARDS", "expected a whole number");
    assert!(!err.contains("--shards"), "{err}");
    let (_, _, err) = run(&["serve", "--dev"], &[("SHARDCAST_AUTH_TIMEOUT_MS", "0")]);
    said_once(
        &err,
        "SHARDCAST_AUTH_TIMEOUT_MS=0",
        "must be greater than zero",
    );
    assert!(!err.contains("`auth_timeout`"), "{err}");
    let err = refusal(&["serve", "--dev", "--heartbeat-timeout-ms", "0"]);
    said_once(
        &err,
        "--heartbeat-timeout-ms 0",
        "must be greater than zero",
    );
    let dir = tempdir();
    let file = write(&dir, "f.toml", "# comment\ndev = true\nshards = \"abc\"\n");
    let err = refusal(&["serve", "--config", &file]);
    said_once(
        &err,
        &format!("{file}:3 (shards)"),
        "expected a whole number",
    );
    let file = write(&dir, "g.toml", "dev = true\n\nno_such_key = 1\n");
    let err = refusal(&["serve", "--config", &file]);
    said_once(
        &err,
        &format!("{file}:3: unknown key `no_such_key`"),
        "config example",
    );
    let err = refusal(&["serve", "--dev", "--log-format", "xml"]);
    said_once(&err, "--log-format", "text or json");
}

/// The effective value and source of every key, from `check-config` (`key = value  # src`).
fn effective(args: &[&str], env: &[(&str, &str)]) -> BTreeMap<String, (String, String)> {
    let (ok, out, err) = run(&[&["check-config"], args].concat(), env);
    assert!(ok, "check-config failed: {err}");
    let mut found = BTreeMap::new();
    for line in out.lines().filter(|l| !l.starts_with('#')) {
        let (assignment, source) = line.split_once(" # ").expect("a source");
        let (key, value) = assignment.split_once(" = ").expect("an assignment");
        let entry = (value.trim().to_owned(), source.trim().to_owned());
        found.insert(key.trim().to_owned(), entry);
    }
    found
}

fn value_of(found: &BTreeMap<String, (String, String)>, key: &str) -> (String, String) {
    found
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no {key} in {found:?}"))
}

/// Regression: `SHARDCAST_DEV=false` did not turn off the file's `dev = true`, no flag
/// could, and `SHARDCAST_DEV=1` was refused.
#[test]
fn booleans_follow_flag_env_file_precedence_in_every_spelling() {
    let dir = tempdir();
    let file = write(
        &dir,
        "dev.toml",
        "jwt_secret = \"file-secret\"\ndev = true\n",
    );
    let secret = [("SHARDCAST_JWT_SECRET", "env-secret")];
    for (off, env) in [
        ("0", "SHARDCAST_DEV"),
        ("no", "SHARDCAST_DEV"),
        ("FALSE", "SHARDCAST_DEV"),
    ] {
        let env = [secret[0], (env, off)];
        let found = effective(&["--config", &file], &env);
        assert_eq!(
            value_of(&found, "dev"),
            ("false".into(), "SHARDCAST_DEV".into())
        );
    }
    let flags = [
        &["--no-dev"][..],
        &["--dev=false"],
        &["--dev=0"],
        &["--dev", "--no-dev"],
    ];
    for flag in flags {
        let found = effective(&[&["--config", &file][..], flag].concat(), &secret);
        assert_eq!(
            value_of(&found, "dev"),
            ("false".into(), "--dev".into()),
            "{flag:?}"
        );
    }
    let found = effective(&[], &[("SHARDCAST_DEV", "1")]);
    assert_eq!(
        value_of(&found, "dev"),
        ("true".into(), "SHARDCAST_DEV".into())
    );
    let found = effective(&["--dev"], &[("SHARDCAST_DEV", "0")]);
    assert_eq!(value_of(&found, "dev").0, "true");
}

/// Regression: file `dev = true` with `--jwt-secret` was refused as a conflict, and the
/// message did not say the dev mode came from the file. Now the flag wins, a warning names
/// the file line, and a conflict within one level names both.
#[tokio::test]
async fn authentication_is_decided_by_precedence_and_conflicts_name_their_sources() {
    let dir = tempdir();
    let file = write(&dir, "auth.toml", "listen = \"127.0.0.1:0\"\ndev = true\n");
    let served = Served::start(&["--config", &file, "--jwt-secret", "s3"], &[]);
    served.wait_log(
        &format!("{file}:2: dev = true is ignored: --jwt-secret *** takes precedence"),
        1,
    );
    let url = format!("ws://{}/ws", served.addr);
    let mut dev_style = WsClient::connect(&url).await;
    dev_style
        .emit("authenticate", json!({ "token": "alice" }))
        .await;
    dev_style.expect_event("error").await;
    dev_style.expect_close(CloseReason::AuthFailed).await;
    let (_, token, _) = run(&["token", "--secret", "s3", "--sub", "bob"], &[]);
    let mut client = WsClient::connect(&url).await;
    client
        .emit("authenticate", json!({ "token": token.trim() }))
        .await;
    assert_eq!(
        client.expect_event("connected").await["data"]["userId"],
        "bob"
    );

    let both = write(&dir, "both.toml", "dev = true\njwt_secret = \"s\"\n");
    let err = refusal(&["serve", "--config", &both]);
    said_once(&err, "same level", "remove one");
    assert!(err.contains(&format!("{both}:1: dev = true")), "{err}");
    assert!(
        err.contains(&format!("{both}:2: jwt_secret = \"***\"")),
        "{err}"
    );
    assert!(!err.contains("\"s\""), "the secret leaked: {err}");
}

/// The log filter: `--log` > `SHARDCAST_LOG` > `RUST_LOG` > file > `info`.
#[test]
fn rust_log_is_honoured_below_shardcast_log() {
    let dir = tempdir();
    let file = write(&dir, "log.toml", "dev = true\nlog = \"warn\"\n");
    let log = |args: &[&str], env: &[(&str, &str)]| value_of(&effective(args, env), "log");
    assert_eq!(log(&[&file], &[]), ("\"warn\"".into(), format!("{file}:2")));
    let rust_log = [("RUST_LOG", "debug")];
    assert_eq!(
        log(&[&file], &rust_log),
        ("\"debug\"".into(), "RUST_LOG".into())
    );
    let both = [rust_log[0], ("SHARDCAST_LOG", "error")];
    assert_eq!(
        log(&[&file], &both),
        ("\"error\"".into(), "SHARDCAST_LOG".into())
    );
    let flag = log(&[&file, "--log", "shardcast=trace"], &both);
    assert_eq!(flag, ("\"shardcast=trace\"".into(), "--log".into()));
    let (ok, _, err) = run(&["check-config", "--dev"], &[("RUST_LOG", "=[")]);
    assert!(!ok && err.contains("RUST_LOG"), "{err}");
}

/// Regression: `--listen localhost:8081` was "invalid socket address syntax".
#[tokio::test]
async fn listen_accepts_a_host_name() {
    let served = Served::start(&["--dev", "--listen", "localhost:0"], &[]);
    assert!(served.addr.ip().is_loopback(), "{}", served.addr);
    let mut client = WsClient::connect(&format!("ws://{}/ws", served.addr)).await;
    client.authenticate("local").await;
    let err = refusal(&["serve", "--dev", "--listen", "no-such-host.invalid:80"]);
    said_once(&err, "no-such-host.invalid", "use an IP address");
}

/// Regression: `jwt_alg` was silently ignored in dev mode; now a warning says so.
#[test]
fn jwt_alg_in_dev_mode_is_a_warning() {
    let found_out = run(&["check-config", "--dev", "--jwt-alg", "RS256"], &[]);
    assert!(found_out.0, "{}", found_out.2);
    assert!(
        found_out
            .1
            .contains("# warning: --jwt-alg RS256 is ignored in dev mode"),
        "{}",
        found_out.1
    );
}

#[test]
fn check_config_prints_each_value_with_its_source_and_hides_secrets() {
    let dir = tempdir();
    let file = write(
        &dir,
        "c.toml",
        "jwt_secret = \"file-secret-123\"\napi_key = \"file-key-456\"\nshards = 3\npath = \"/file\"\n",
    );
    let env = [("SHARDCAST_PATH", "/env"), ("SHARDCAST_SHARDS", "2")];
    let found = effective(&[&file, "--shards", "4"], &env);
    assert_eq!(value_of(&found, "shards"), ("4".into(), "--shards".into()));
    assert_eq!(
        value_of(&found, "path"),
        ("\"/env\"".into(), "SHARDCAST_PATH".into())
    );
    let api_key = value_of(&found, "api_key");
    assert_eq!(api_key, ("\"***\"".into(), format!("{file}:2")));
    assert_eq!(value_of(&found, "listen").1, "default");
    let (ok, out, _) = run(&["check-config", &file], &[]);
    assert!(ok && out.contains("# authentication: JWT HS256"), "{out}");
    assert!(
        !out.contains("file-secret-123") && !out.contains("file-key-456"),
        "{out}"
    );
    let bad = write(&dir, "bad.toml", "dev = true\nmax_fragments = 0\n");
    let (ok, out, err) = run(&["check-config", &bad], &[]);
    assert!(!ok && out.is_empty(), "{out}");
    said_once(
        &err,
        &format!("{bad}:2: max_fragments = 0"),
        "must be greater than zero",
    );
}

/// `deploy/shardcast.toml` is `shardcast config example`, and it reads back as the
/// defaults (every value equal to the one without a file).
#[test]
fn the_example_config_is_committed_and_reads_back_as_the_defaults() {
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/shardcast.toml");
    let (ok, example, _) = run(&["config", "example"], &[]);
    assert!(ok);
    let on_disk = std::fs::read_to_string(committed).expect("deploy/shardcast.toml");
    assert_eq!(
        on_disk, example,
        "regenerate: shardcast config example > deploy/shardcast.toml"
    );
    let mut from_file = effective(&[committed, "--dev"], &[]);
    assert_eq!(value_of(&from_file, "config").1, "--config");
    from_file.remove("config");
    let defaults = effective(&["--dev"], &[]);
    assert_eq!(from_file.len(), defaults.len());
    for (key, (value, source)) in &defaults {
        let (got, from) = value_of(&from_file, key);
        assert_eq!(&got, value, "{key}");
        assert!(source == "default" || key == "dev", "{key}: {source}");
        assert!(from.starts_with(committed) || key == "dev", "{key}: {from}");
    }
}

/// The README's settings table is `shardcast config table`, and `--help` lists every
/// flag of it.
#[test]
fn readme_table_and_help_come_from_the_one_settings_table() {
    let (ok, table, _) = run(&["config", "table"], &[]);
    assert!(ok);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let begin = "<!-- settings table: `shardcast config table` -->\n";
    let start = readme
        .find(begin)
        .expect("the README marks its settings table")
        + begin.len();
    let end = start
        + readme[start..]
            .find("<!-- end of settings table -->")
            .expect("end marker");
    assert_eq!(
        &readme[start..end],
        table,
        "regenerate with `shardcast config table`"
    );
    let (_, help, _) = run(&["serve", "--help"], &[]);
    let rows = table.lines().skip(2);
    for flag in rows.map(|row| row.split('`').nth(1).expect("flag cell")) {
        let long = flag.split([' ', '=']).next().unwrap();
        assert!(help.contains(long), "{long} missing from --help");
    }
    for needle in [
        "--config",
        "--shards",
        "one per available core",
        "SHARDCAST_SHARDS",
    ] {
        assert!(table.contains(needle) || help.contains(needle), "{needle}");
    }
    assert!(table.contains("`--config FILE`") && table.contains("0 = one per available core"));
    // Regression: RUST_LOG worked but was undocumented.
    for documented in [
        "`RUST_LOG` is used when",
        "`NO_COLOR`",
        "--log-format json",
        "kill -HUP",
    ] {
        assert!(readme.contains(documented), "README lacks {documented}");
    }
}

#[test]
fn version_names_the_commit_and_build_date() {
    let (ok, out, _) = run(&["--version"], &[]);
    assert!(
        ok && out.contains("(commit ") && out.contains(", built "),
        "{out}"
    );
}

#[tokio::test]
async fn endpoints_are_chosen_by_flag_or_env() {
    let get = |addr, path: &'static str| crate::support::http(addr, "GET", path, &[], "");
    let some = Served::start(
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--endpoints",
            "health,READY",
        ],
        &[],
    );
    assert_eq!(get(some.addr, "/health").await.0, 200);
    assert_eq!(get(some.addr, "/ready").await.0, 200);
    assert_eq!(get(some.addr, "/metrics").await.0, 404);
    assert_eq!(get(some.addr, "/api/stats").await.0, 404);
    let none = Served::start(
        &["--dev", "--listen", "127.0.0.1:0"],
        &[("SHARDCAST_ENDPOINTS", "none")],
    );
    for path in ["/health", "/ready", "/metrics", "/api/stats"] {
        assert_eq!(get(none.addr, path).await.0, 404, "{path}");
    }
    // The WebSocket stays.
    let mut client = WsClient::connect(&format!("ws://{}/ws", none.addr)).await;
    client.authenticate("u").await;
    let err = refusal(&["serve", "--dev", "--endpoints", "health,helth"]);
    said_once(&err, "endpoint `helth` is unknown", "--endpoints");
}

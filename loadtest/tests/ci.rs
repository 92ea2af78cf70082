//! The load tester in CI, end to end: the real `shardcast-load` binary runs `fanout`
//! against a real shardcast engine (started in-process on a free loopback port, dev
//! authentication, HTTP publishing with an API key) and writes the plot, the HdrHistogram
//! file and the percentile table; a threshold that holds exits 0, one that cannot hold
//! exits 1 with one line per breach. With `--compression` against an engine with
//! permessage-deflate on, every client inflates and the report's `wire` section shows
//! the smaller frames; against one with it off, the refusal is a warning, and with
//! `--require-compression` a failed check.

use shardcast::Engine;
use shardcast::hooks::DevAuthenticator;
use shardcast::rooms::glob::RoomPolicy;
use shardcast_load::ci::hdr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_shardcast-load");
const API_KEY: &str = "ci-key";

/// A shardcast engine on 127.0.0.1:0: one shard, `public-*` rooms, dev auth, an API key.
fn engine() -> Engine {
    engine_with(false)
}

/// [`engine`], with permessage-deflate on or off.
fn engine_with(compression: bool) -> Engine {
    Engine::builder()
        .configure(|c| {
            c.listen = "127.0.0.1:0".parse().expect("loopback address");
            c.shards = 1;
            c.pin_shards = false;
            c.compression = compression;
        })
        .authenticator(DevAuthenticator)
        .room_validator(RoomPolicy::new(&["public-*"]).expect("patterns"))
        .api_key(API_KEY)
        .start()
        .expect("engine starts")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("load-ci-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `fanout` against `engine` with `extra` options: 20 clients in 2 rooms, 200 msg/s for
/// 2 s over HTTP.
fn fanout(engine: &Engine, extra: &[&str]) -> Output {
    let addr = engine.local_addr().expect("the engine listens");
    let url = format!("ws://{addr}/ws");
    Command::new(BIN)
        .args([
            "fanout",
            "--url",
            &url,
            "--token",
            "load-{i}",
            "--api-key",
            API_KEY,
        ])
        .args([
            "--clients",
            "20",
            "--rooms",
            "2",
            "--rate",
            "200",
            "--duration-s",
            "2",
        ])
        .args(["--no-progress", "--drain-ms", "5000"])
        .args(extra)
        .output()
        .expect("run shardcast-load")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The PNG decodes, at the size the tool draws, with more than a blank page in it.
fn assert_png(file: &Path) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(file).expect("plot written"),
    ));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels decode");
    assert_eq!((info.width, info.height), (1200, 900));
    let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(3).collect();
    assert!(
        distinct.len() > 10,
        "{} colours: an empty plot",
        distinct.len()
    );
}

#[test]
fn fanout_writes_plot_and_histogram_and_passes_thresholds_that_hold() {
    let engine = engine();
    let dir = scratch("pass");
    let (png, hdr_file, table, json) = (
        dir.join("latency.png"),
        dir.join("latency.hdr"),
        dir.join("latency.txt"),
        dir.join("run.json"),
    );
    let out = fanout(
        &engine,
        &[
            "--plot",
            path(&png),
            "--hdr",
            path(&hdr_file),
            "--percentiles",
            path(&table),
            "--json",
            path(&json),
            "--max-p99-ms",
            "5000",
            "--max-loss",
            "0",
            "--max-failed",
            "0",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("pass  --max-p99-ms 5000: p99 latency was"),
        "{stdout}"
    );
    assert!(!stderr.contains("threshold breached"), "{stderr}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    let received = report["results"]["received"].as_u64().expect("received");
    assert_eq!(
        received,
        20 * 400 / 2,
        "every reader got every message of its room"
    );
    assert_eq!(
        report["results"]["latency"]["count"].as_u64(),
        Some(received)
    );
    assert_eq!(report["thresholds"].as_array().map(Vec::len), Some(3));

    let histogram = hdr::read_v2(&hdr_file).expect("the V2 histogram reads back");
    assert_eq!(histogram.len(), received);
    let p99_us = report["results"]["latency"]["p99_us"]
        .as_u64()
        .expect("p99");
    assert_eq!(histogram.value_at_quantile(0.99), p99_us);
    let table = std::fs::read_to_string(&table).expect("percentile table");
    assert!(
        table.contains(&format!("Total count    = {received:>12}]")),
        "{table}"
    );
    assert_png(&png);
    let _ = std::fs::remove_dir_all(&dir);
    engine.shutdown();
}

#[test]
fn a_breached_threshold_exits_1_with_one_line_per_breach() {
    let engine = engine();
    // 1 µs at p50 and p99 cannot hold over a real socket; --max-failed 0 holds.
    let out = fanout(
        &engine,
        &[
            "--max-p50-ms",
            "0.001",
            "--max-p99-ms",
            "0.001",
            "--max-failed",
            "0",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let breaches: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("shardcast-load: threshold breached: "))
        .collect();
    assert_eq!(breaches.len(), 2, "{stderr}");
    assert!(
        breaches[0].contains("--max-p50-ms 0.001: p50 latency was"),
        "{stderr}"
    );
    assert!(
        breaches[1].contains("--max-p99-ms 0.001: p99 latency was"),
        "{stderr}"
    );
    assert!(stdout.contains("FAIL  --max-p99-ms"), "{stdout}");
    assert!(stdout.contains("pass  --max-failed 0"), "{stdout}");
    engine.shutdown();
}

#[test]
fn a_meaningless_threshold_is_refused_before_the_run() {
    let engine = engine();
    let out = fanout(&engine, &["--max-loss", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--max-loss is a ratio from 0 to 1"));
    engine.shutdown();
}

#[test]
fn an_unwritable_plot_exits_2_after_the_report() {
    let engine = engine();
    let dir = scratch("unwritable");
    let json = dir.join("run.json");
    let plot = dir.join("no-such-dir").join("latency.png");
    let out = fanout(&engine, &["--plot", path(&plot), "--json", path(&json)]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("deliveries"),
        "the summary is printed: {stdout}"
    );
    assert!(json.exists(), "the JSON report is written first");
    assert!(
        stderr.contains("shardcast-load: error: drawing"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    engine.shutdown();
}

fn report(json: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(json).expect("json")).expect("JSON")
}

#[test]
fn compressed_fanout_is_inflated_and_its_wire_bytes_reported() {
    let engine = engine_with(true);
    let dir = scratch("deflate");
    let json = dir.join("run.json");
    let out = fanout(
        &engine,
        &[
            "--require-compression",
            "--payload",
            "json",
            "--frame-bytes",
            "1024",
            "--json",
            path(&json),
            "--max-loss",
            "0",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let r = report(&json);
    assert_eq!(
        r["results"]["received"].as_u64(),
        Some(20 * 400 / 2),
        "every message read"
    );
    let w = &r["wire"];
    assert_eq!(
        (w["connections"].as_u64(), w["compression_agreed"].as_u64()),
        (Some(20), Some(20))
    );
    assert_eq!(w["server_context_takeover"].as_u64(), Some(0));
    assert_eq!(w["window"], "measured");
    assert_eq!(w["deliveries"], w["compressed_deliveries"]);
    let (wire, payload) = (
        w["wire_bytes_per_delivery"].as_f64().expect("wire"),
        w["payload_bytes_per_delivery"].as_f64().expect("payload"),
    );
    // The 1 KB frame inflates to its JSON (the frame less its 4-byte header, a few bytes
    // less with sequence numbers shorter than the 5 digits sized for); on the wire it is
    // well under half of that.
    assert!((1010.0..=1020.0).contains(&payload), "{payload}");
    assert!(wire < payload / 2.0, "{wire} on the wire for {payload}");
    assert!(
        stdout.contains("pass  --require-compression 0: 20 of 20 connections agreed"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    engine.shutdown();
}

#[test]
fn a_server_without_compression_is_a_warning_when_offered_and_a_failure_when_required() {
    let engine = engine_with(false);
    let dir = scratch("no-deflate");
    let json = dir.join("run.json");
    let out = fanout(&engine, &["--compression", "--json", path(&json)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("!! WARNING: COMPRESSION NOT NEGOTIATED: 20 of 20 connections"),
        "{stdout}"
    );
    let w = &report(&json)["wire"];
    assert_eq!(
        (
            w["compression_agreed"].as_u64(),
            w["without_compression"].as_u64()
        ),
        (Some(0), Some(20))
    );
    assert!(
        w["compression_ratio"].as_f64().is_some_and(|r| r < 1.0),
        "plain frames: headers only"
    );

    let out = fanout(&engine, &["--require-compression"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("threshold breached: --require-compression 0: 0 of 20 connections agreed"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    engine.shutdown();
}

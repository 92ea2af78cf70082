//! `/metrics` after real traffic, checked by two real parsers (`promtool check metrics`
//! and Python's `prometheus_client`) and by value: every family an SRE alerts on is
//! driven through the path it counts. The Redis families are in `metrics_redis.rs`.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use shardcast::build_info;
use shardcast::protocol::CloseReason;

use crate::support::{self, TestServer, http};

/// The samples of one scrape, by their exact series text (`name{labels}`).
pub struct Scrape {
    pub text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    /// The value of `series` (exactly as exposed); panics with the scrape when absent.
    pub fn value(&self, series: &str) -> f64 {
        match self.samples.get(series) {
            Some(v) => *v,
            None => panic!("no series {series} in the scrape:\n{}", self.text),
        }
    }

    /// The sum of every series of family `name` whose labels contain each of `labels`.
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| {
                let (family, rest) = series.split_once('{').unwrap_or((series, ""));
                family == name && labels.iter().all(|l| rest.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// `GET /metrics`, parsed into samples (the format is checked by [`check_with_parsers`]).
pub async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, text) = http(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200, "{text}");
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series value");
            (series.to_owned(), value.parse().expect("numeric value"))
        })
        .collect();
    Scrape { text, samples }
}

/// Runs `program args` with `input` on stdin; returns (success, stdout + stderr).
fn run_with_stdin(program: &str, args: &[&str], input: &str) -> (bool, String) {
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = spawned.unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}); scripts/test installs it (see its install lines)")
    });
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Parses the exposition with `prometheus_client` and returns `{family: type}`.
const PYTHON_PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    if family.name in families:
        sys.exit("family %s twice" % family.name)
    families[family.name] = family.type
    for sample in family.samples:
        if sample.value != sample.value:
            sys.exit("NaN in %s" % sample.name)
print(json.dumps(families))
"#;

/// `promtool check metrics` (parser and lint) and `prometheus_client` must both accept
/// the text; returns the family types Python saw.
pub fn check_with_parsers(text: &str) -> HashMap<String, String> {
    let (ok, out) = run_with_stdin("promtool", &["check", "metrics"], text);
    assert!(
        ok,
        "promtool check metrics refused the scrape:\n{out}\n{text}"
    );
    let (ok, out) = run_with_stdin("python3", &["-c", PYTHON_PARSE], text);
    assert!(ok, "prometheus_client refused the scrape:\n{out}\n{text}");
    serde_json::from_str(out.trim()).expect("family types as JSON")
}

fn with_key() -> TestServer {
    TestServer::start(
        support::builder(2)
            .api_key("k")
            .configure(|c| c.auth_timeout = Duration::from_millis(200)),
    )
}

/// Connect, authenticate, deliver, an HTTP 202, 401 and 404, an auth timeout (4001), a
/// client close (echoed 1000).
async fn drive_traffic(server: &TestServer) {
    let (mut alice, _) = server.login("alice").await;
    alice.join(&["public-m"]).await;
    server.wait_members("public-m", 1).await;
    let auth = [("Authorization", "Bearer k")];
    let body =
        json!({ "type": "room", "target": "public-m", "event": "tick", "data": 1 }).to_string();
    let (status, _) = http(server.addr, "POST", "/api/publish", &auth, &body).await;
    assert_eq!(status, 202);
    alice.expect_event("tick").await;
    let (status, _) = http(server.addr, "POST", "/api/publish", &[], &body).await;
    assert_eq!(status, 401);
    assert_eq!(http(server.addr, "GET", "/nothing", &[], "").await.0, 404);
    let mut silent = server.connect().await;
    silent.expect_close(CloseReason::AuthTimeout).await;
    alice.close().await;
    support::redis::wait_for("both connections removed", support::WAIT, || {
        server.handle.stats().connections == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_after_real_traffic_is_valid_and_counts_it() {
    let server = with_key();
    drive_traffic(&server).await;
    let scrape = scrape(server.addr).await;
    let types = check_with_parsers(&scrape.text);
    for (family, kind) in [
        ("shardcast_build_info", "gauge"),
        ("shardcast_delivery_latency_seconds", "histogram"),
        ("shardcast_connect_latency_seconds", "histogram"),
        ("shardcast_disconnects", "counter"),
        ("shardcast_http_requests", "counter"),
        ("shardcast_shard_inbox_depth", "gauge"),
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    assert!(
        !types.contains_key("shardcast_redis_link_up"),
        "no Redis, no Redis families"
    );
    assert_traffic_counted(&scrape);
}

fn assert_traffic_counted(scrape: &Scrape) {
    let info = format!(
        "shardcast_build_info{{version=\"{}\",commit=\"{}\",build_date=\"{}\"}}",
        build_info::VERSION,
        build_info::COMMIT,
        build_info::BUILD_DATE
    );
    assert_eq!(scrape.value(&info), 1.0);
    let sum = |name: &str, labels: &[&str]| scrape.sum(name, labels);
    assert!(sum("shardcast_delivery_latency_seconds_count", &[]) >= 1.0);
    assert!(
        sum(
            "shardcast_delivery_latency_seconds_bucket",
            &["le=\"+Inf\""]
        ) >= 1.0
    );
    assert!(sum("shardcast_delivery_latency_seconds_sum", &[]) > 0.0);
    assert_eq!(
        sum("shardcast_connect_latency_seconds_count", &[]),
        1.0,
        "alice only"
    );
    assert_eq!(sum("shardcast_disconnects_total", &["code=\"4001\""]), 1.0);
    assert_eq!(sum("shardcast_disconnects_total", &["code=\"1000\""]), 1.0);
    let http = |route: &str, status: u16| {
        scrape.value(&format!(
            "shardcast_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"
        ))
    };
    assert_eq!(http("publish", 202), 1.0);
    assert_eq!(http("publish", 401), 1.0);
    assert_eq!(http("not_found", 404), 1.0);
    assert_eq!(http("upgrade", 101), 2.0);
    assert!(sum("shardcast_bytes_received_total", &[]) > 0.0);
    assert!(sum("shardcast_bytes_sent_total", &[]) > 0.0);
    assert_eq!(
        scrape.value("shardcast_shard_inbox_depth{shard=\"1\"}"),
        0.0
    );
    assert!(scrape.value("process_resident_memory_bytes") > 1e6);
    assert!(scrape.value("process_open_fds") >= 3.0);
    assert!(scrape.value("process_cpu_seconds_total") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_latency_measures_the_wait_between_broker_and_write() {
    // One shard whose inbox waits behind a slow hook: the broker's stamp is older than
    // the write by most of the hook's sleep, so the sample lands above 25 ms; meanwhile
    // the message waits in the inbox, which the depth gauge shows.
    let server = TestServer::start(support::builder(1).on_message(|_, _| async {
        std::thread::sleep(Duration::from_millis(200));
    }));
    let (mut alice, _) = server.login("alice").await;
    alice.join(&["public-l"]).await;
    server.wait_members("public-l", 1).await;
    alice.emit("block", json!(null)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server
        .handle
        .send_to_room("public-l", "late", &json!(1), &[])
        .expect("send");
    assert_eq!(server.handle.live_metrics().inbox_depths, vec![1]);
    alice.expect_event("late").await;
    let scrape = scrape(server.addr).await;
    let fast = "shardcast_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.05\"}";
    let all = "shardcast_delivery_latency_seconds_count{shard=\"0\"}";
    assert!(
        scrape.value(all) > scrape.value(fast),
        "a delivery held ~150 ms must land above 50 ms:\n{}",
        scrape.text
    );
}

#[tokio::test]
async fn http_requests_count_request_errors_and_refused_upgrades() {
    let server = TestServer::start(support::builder(1).configure(|c| {
        c.allowed_origins = vec!["https://ok.example".into()];
    }));
    let refused = crate::support::raw::upgrade_status(server.addr, Some("https://evil")).await;
    assert_eq!(refused, 403);
    let mut raw = crate::support::raw::RawConn::open(server.addr).await;
    raw.send(b"NOT A REQUEST\r\n\r\n").await;
    assert_eq!(raw.read_until_closed().await.statuses(), vec![400]);
    let scrape = scrape(server.addr).await;
    let series = |route: &str, status: u16| {
        format!("shardcast_http_requests_total{{route=\"{route}\",status=\"{status}\"}}")
    };
    assert_eq!(scrape.value(&series("upgrade", 403)), 1.0);
    assert_eq!(scrape.value(&series("invalid", 400)), 1.0);
    check_with_parsers(&scrape.text);
}

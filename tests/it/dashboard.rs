//! The operator dashboard: its access modes and admin routes over real HTTP, and the page
//! itself loaded in headless Chromium against a live engine.

use crate::support::cdp;
use crate::support::served::{Served, refusal};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use shardcast::EngineBuilder;
use shardcast::config::DashboardMode;
use shardcast::protocol::CloseReason;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, Next, TestServer, WAIT, WsClient, http};

const API_KEY: &str = "api-key-1";
const DASHBOARD_KEY: &str = "dash-key-2";

/// Two shards, the API key and the dashboard key, no default rooms (so the test's rooms
/// are all the rooms there are), `mode`.
fn builder(mode: DashboardMode) -> EngineBuilder {
    support::builder(2)
        .api_key(API_KEY)
        .dashboard_key(DASHBOARD_KEY)
        .configure(|c| {
            c.default_rooms = Vec::new();
            c.dashboard = mode;
        })
}

fn bearer(key: &str) -> [(&'static str, String); 1] {
    [("Authorization", format!("Bearer {key}"))]
}

/// `GET path` with `key` (or none): status and body.
async fn get(server: &TestServer, path: &str, key: Option<&str>) -> (u16, String) {
    request(server.addr, "GET", path, key).await
}

/// `POST path` (no body) with `key` (or none): status and body.
async fn post(server: &TestServer, path: &str, key: Option<&str>) -> (u16, String) {
    request(server.addr, "POST", path, key).await
}

/// `method path` (no body) at `addr` with `key` (or none): status and body.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> (u16, String) {
    let auth = key.map(bearer);
    let headers: Vec<(&str, &str)> = auth
        .iter()
        .flatten()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    http(addr, method, path, &headers, "").await
}

/// The whole response head of `GET path` (for its headers).
async fn head_of(server: &TestServer, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Logs in `user` and joins `rooms`.
async fn member(server: &TestServer, user: &str, rooms: &[&str]) -> (WsClient, String) {
    let (mut client, id) = server.login(user).await;
    client.join(rooms).await;
    (client, id)
}

/// Clients in `public-big` until it has members on both shards (at least `min`), plus
/// `public-mid` (the first three) and `public-small` (one more client, returned apart).
/// Returns the big room's clients, the small room's client and id.
async fn populate(server: &TestServer, min: usize) -> (Vec<WsClient>, WsClient, String) {
    let mut big = Vec::new();
    let mut shards = [0usize; 2];
    while big.len() < min || shards.contains(&0) {
        assert!(big.len() < 64, "placement never used both shards");
        let rooms: &[&str] = match big.len() < 3 {
            true => &["public-big", "public-mid"],
            false => &["public-big"],
        };
        let (client, id) = member(server, &format!("u{}", big.len()), rooms).await;
        shards[support::shard_of(&id, 2)] += 1;
        big.push(client);
    }
    let (small, small_id) = member(server, "victim", &["public-small"]).await;
    server.wait_members("public-big", big.len()).await;
    server.wait_members("public-mid", 3).await;
    server.wait_members("public-small", 1).await;
    (big, small, small_id)
}

#[tokio::test]
async fn protected_by_default_page_public_data_needs_a_key() {
    assert_eq!(
        shardcast::EngineConfig::default().dashboard,
        DashboardMode::Protected
    );
    let server = TestServer::start(builder(DashboardMode::Protected));
    let (status, page) = get(&server, "/dashboard", None).await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"data-mode="protected""#), "{page}");
    let head = head_of(&server, "/dashboard").await;
    assert!(
        head.contains("Content-Security-Policy: default-src 'none'"),
        "{head}"
    );
    for asset in ["/dashboard/app.js", "/dashboard/app.css"] {
        assert_eq!(get(&server, asset, None).await.0, 200, "{asset}");
    }
    assert_eq!(get(&server, "/api/dashboard", None).await.0, 401);
    assert_eq!(get(&server, "/api/dashboard", Some("wrong")).await.0, 401);
    for key in [API_KEY, DASHBOARD_KEY] {
        let (status, body) = get(&server, "/api/dashboard", Some(key)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(json_of(&body)["access"], "full");
    }
}

#[tokio::test]
async fn off_answers_404_on_every_dashboard_route() {
    let server = TestServer::start(builder(DashboardMode::Off));
    for path in [
        "/dashboard",
        "/dashboard/app.js",
        "/dashboard/app.css",
        "/api/dashboard",
    ] {
        assert_eq!(get(&server, path, Some(API_KEY)).await.0, 404, "{path}");
        assert_eq!(get(&server, path, None).await.0, 404, "{path}");
    }
    assert_eq!(get(&server, "/health", None).await.0, 200);
}

#[tokio::test]
async fn public_shows_aggregates_without_room_names_and_counts_rooms_once() {
    let server = TestServer::start(builder(DashboardMode::Public));
    let (_big, _small, _) = populate(&server, 4).await;
    let (status, body) = get(&server, "/api/dashboard", None).await;
    assert_eq!(status, 200);
    let doc = json_of(&body);
    assert_eq!(doc["access"], "aggregate");
    assert!(doc["rooms"]["top"].is_null(), "{body}");
    assert!(!body.contains("public-"), "room names leaked: {body}");
    assert_eq!(doc["rooms"]["distinct"], 3, "{body}");
    let summed = doc["rooms"]["summed_over_shards"].as_i64().expect("sum");
    assert!(
        summed > 3,
        "a room on both shards should sum above 3: {body}"
    );
    assert_eq!(doc["shards"].as_array().map(Vec::len), Some(2));
    let (_, keyed) = get(&server, "/api/dashboard", Some(DASHBOARD_KEY)).await;
    let top = &json_of(&keyed)["rooms"]["top"];
    assert_eq!(top[0]["name"], "public-big", "{keyed}");
    assert_eq!(top[1], json!({ "name": "public-mid", "members": 3 }));
}

#[tokio::test]
async fn client_lookup_and_disconnect_need_the_api_key() {
    let server = TestServer::start(builder(DashboardMode::Protected));
    let (mut client, id) = member(&server, "alice", &["public-a", "public-b"]).await;
    server.wait_members("public-b", 1).await;
    let path = format!("/api/clients/{id}");
    let kick = format!("{path}/disconnect");
    assert_eq!(get(&server, &path, None).await.0, 401);
    assert_eq!(post(&server, &kick, None).await.0, 401);
    assert_eq!(post(&server, &kick, Some(DASHBOARD_KEY)).await.0, 401);
    assert_eq!(get(&server, &kick, Some(API_KEY)).await.0, 405);
    assert_eq!(
        get(&server, "/api/clients/nope", Some(API_KEY)).await.0,
        400
    );
    let stranger = format!("/api/clients/{}", shardcast::ClientId::new_v4());
    assert_eq!(get(&server, &stranger, Some(API_KEY)).await.0, 404);
    assert_eq!(
        post(&server, &format!("{stranger}/disconnect"), Some(API_KEY))
            .await
            .0,
        404
    );

    let (status, body) = get(&server, &path, Some(API_KEY)).await;
    assert_eq!(status, 200, "{body}");
    let info = json_of(&body);
    assert_eq!(info["shard"], support::shard_of(&id, 2));
    assert_eq!(info["user_id"], "alice");
    assert_eq!(info["authenticated"], true);
    assert_eq!(info["rooms"], json!(["public-a", "public-b"]));
    assert!(info["connected_for_ms"].as_u64().is_some(), "{body}");

    assert_eq!(post(&server, &kick, Some(API_KEY)).await.0, 202);
    client.expect_close(CloseReason::Normal).await;
}

/// Reads until `event` arrives (skipping others); panics on a close or silence.
async fn expect_event_among(client: &mut WsClient, event: &str) -> Value {
    loop {
        match client.next_within(WAIT).await {
            Next::Json(v) if v["event"] == event => return v,
            Next::Json(_) => continue,
            other => panic!("expected event {event}, got {other:?}"),
        }
    }
}

/// Publishes to `public-big` and makes one client send custom events, every 20 ms,
/// until `stop`.
fn traffic(server: &TestServer, mut sender: WsClient, stop: Arc<AtomicBool>) {
    let handle = server.handle.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let _ = handle.send_to_room("public-big", "tick", &n, &[]);
            let chat = json!({ "event": "chat", "data": { "n": n } }).to_string();
            if sender.inner().send(Message::text(chat)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// What the page shows, read from its DOM.
const FACTS: &str = r#"(() => {
  const q = (s) => document.querySelector(s);
  const chart = (id) => ({
    points: [...document.querySelectorAll(`#${id} path.series`)].map((p) => +p.dataset.points),
    max: +q(`#${id}`).dataset.max,
    xLabels: document.querySelectorAll(`#${id} .axis-x .tick-label`).length,
    yLabels: document.querySelectorAll(`#${id} .axis-y .tick-label`).length,
    unit: q(`#${id} .unit`)?.textContent,
  });
  const ids = ['chart-connections', 'chart-deliveries', 'chart-inbound', 'chart-drops', 'chart-latency'];
  return {
    charts: Object.fromEntries(ids.map((id) => [id, chart(id)])),
    distinct: q('#v-rooms').textContent,
    connections: q('#v-connections').textContent,
    top: [...document.querySelectorAll('#top-rooms tbody tr')].map((r) => [r.cells[1].textContent, r.cells[2].textContent]),
    shardRows: document.querySelectorAll('#shards tbody tr').length,
    shardHeaders: document.querySelectorAll('#shards thead th[scope=col]').length,
    version: q('#version').textContent,
    serverId: q('#server-id').textContent,
    redis: q('#redis').textContent,
    access: q('#access').textContent,
    keyFormShown: getComputedStyle(q('#key-form')).display !== 'none',
    actionsShown: getComputedStyle(q('#actions')).display !== 'none',
  };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_live_data_in_headless_chromium() {
    let browser = cdp::Chromium::launch();
    let server = TestServer::start(builder(DashboardMode::Protected));
    let (big, mut victim, victim_id) = populate(&server, 5).await;
    let (sender, _) = server.login("sender").await;
    let stop = Arc::new(AtomicBool::new(false));
    traffic(&server, sender, stop.clone());

    let mut page = cdp::Page::open(&browser).await;
    let viewport =
        json!({ "width": 1280, "height": 1800, "deviceScaleFactor": 1, "mobile": false });
    page.call("Emulation.setDeviceMetricsOverride", viewport)
        .await;
    let url = format!("http://{}/dashboard", server.addr);
    page.call("Page.navigate", json!({ "url": url })).await;
    page.wait_for("document.readyState === 'complete' && !!window.fetch", WAIT)
        .await;
    // Protected: the page asks for a key and shows nothing before it.
    page.wait_for("!document.getElementById('key-form').hidden", WAIT)
        .await;
    assert_eq!(
        page.eval("document.getElementById('main').hidden").await,
        json!(true)
    );
    page.type_into("key", API_KEY).await;
    page.eval("document.getElementById('key-form').requestSubmit(), true")
        .await;
    // Six polls at 1 s: five rate points per chart.
    let enough = "+document.querySelector('#chart-deliveries path.series')?.dataset.points >= 5";
    page.wait_for(enough, Duration::from_secs(20)).await;
    let facts = page.eval(FACTS).await;
    check_facts(&facts, &server, big.len() + 2).await;

    admin_actions(&mut page, &mut victim, &victim_id).await;
    stop.store(true, Ordering::Relaxed);
    screenshot(&mut page).await;
    let errors = page.errors();
    assert!(
        errors.is_empty(),
        "the page logged errors:\n{}",
        errors.join("\n")
    );
    println!("dashboard facts: {facts:#}");
    drop(big);
}

/// The assertions on what the page drew, against the engine's truth.
async fn check_facts(facts: &Value, server: &TestServer, connections: usize) {
    for (id, chart) in facts["charts"].as_object().expect("charts") {
        assert!(chart["xLabels"].as_u64() >= Some(4), "{id} x axis: {chart}");
        assert!(chart["yLabels"].as_u64() >= Some(2), "{id} y axis: {chart}");
        assert!(
            chart["unit"].as_str().is_some_and(|u| !u.is_empty()),
            "{id}: {chart}"
        );
    }
    let charts = &facts["charts"];
    for id in ["chart-connections", "chart-deliveries", "chart-inbound"] {
        assert!(
            charts[id]["points"][0].as_u64() > Some(1),
            "{id}: {}",
            charts[id]
        );
        assert!(
            charts[id]["max"].as_f64() > Some(0.0),
            "{id} drew only zeros: {}",
            charts[id]
        );
    }
    assert_eq!(
        charts["chart-connections"]["max"], connections as f64,
        "{facts}"
    );
    assert_eq!(charts["chart-connections"]["unit"], "connections");
    assert_eq!(charts["chart-deliveries"]["unit"], "msg/s");
    assert_eq!(charts["chart-latency"]["unit"], "ms");
    latency_is_recorded_and_drawn(facts, server).await;
    assert_eq!(facts["distinct"], "3", "distinct rooms: {facts}");
    assert_eq!(facts["top"][0][0], "public-big", "{facts}");
    assert_eq!(facts["top"][1], json!(["public-mid", "3"]), "{facts}");
    assert_eq!(facts["shardRows"], 2);
    assert_eq!(facts["shardHeaders"], 8);
    let version = facts["version"].as_str().unwrap_or_default();
    assert!(
        version.contains(shardcast::build_info::VERSION),
        "{version}"
    );
    assert!(version.contains(shardcast::build_info::COMMIT), "{version}");
    assert_eq!(facts["serverId"], server.handle.server_id().as_str());
    assert_eq!(facts["redis"], "not configured (single node)");
    assert_eq!(facts["access"], "full");
    assert_eq!(
        facts["keyFormShown"], false,
        "the key form stays after a good key"
    );
    assert_eq!(facts["actionsShown"], true);
}

/// The shards recorded delivery latencies and the latency chart draws p50 and p99.
async fn latency_is_recorded_and_drawn(facts: &Value, server: &TestServer) {
    let (_, body) = get(server, "/api/dashboard", Some(API_KEY)).await;
    let recorded: u64 = json_of(&body)["latency"]["delivery"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(Value::as_u64)
        .sum();
    let points = &facts["charts"]["chart-latency"]["points"];
    assert!(
        recorded > 0,
        "the shards recorded no delivery latency: {body}"
    );
    assert!(points[0].as_u64() > Some(1), "p50 not drawn: {points}");
    assert!(points[1].as_u64() > Some(1), "p99 not drawn: {points}");
}

/// Publish a test message, look up a client and disconnect it, through the page.
async fn admin_actions(page: &mut cdp::Page, victim: &mut WsClient, victim_id: &str) {
    page.wait_for("!document.getElementById('actions').hidden", WAIT)
        .await;
    page.type_into("pub-room", "public-small").await;
    page.eval("document.getElementById('publish-form').requestSubmit(), true")
        .await;
    let published = "document.getElementById('pub-result').textContent === 'published (202)'";
    page.wait_for(published, WAIT).await;
    let got = expect_event_among(victim, "dashboard:test").await;
    assert_eq!(got["data"], json!({ "hello": "from the dashboard" }));

    page.type_into("client-id", victim_id).await;
    page.eval("document.getElementById('lookup-form').requestSubmit(), true")
        .await;
    let found = "document.getElementById('client-result').textContent.includes('user victim')";
    page.wait_for(found, WAIT).await;
    let shown = page
        .eval("document.getElementById('client-result').textContent")
        .await;
    assert!(
        shown.as_str().is_some_and(|s| s.contains("public-small")),
        "{shown}"
    );
    page.eval("document.getElementById('disconnect').click(), true")
        .await;
    let gone = "document.getElementById('client-result').textContent === 'disconnected (202)'";
    page.wait_for(gone, WAIT).await;
    victim.expect_close(CloseReason::Normal).await;
}

/// Saves a full-page PNG under the target directory for the closing note.
async fn screenshot(page: &mut cdp::Page) {
    use base64::Engine as _;
    let params = json!({ "format": "png", "captureBeyondViewport": true });
    let shot = page.call("Page.captureScreenshot", params).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64 PNG");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, png).expect("write screenshot");
    println!("dashboard screenshot: {}", path.display());
}

/// `shardcast serve --dev` on a free port with `args` and `env` (killed by PID on drop).
fn serve(args: &[&str], env: &[(&str, &str)]) -> Served {
    Served::start(&[&["--dev", "--listen", "127.0.0.1:0"], args].concat(), env)
}

/// `GET path` from a served binary, with `key` (or none).
async fn get_from(served: &Served, path: &str, key: Option<&str>) -> (u16, String) {
    request(served.addr, "GET", path, key).await
}

#[tokio::test]
async fn serve_takes_the_dashboard_mode_and_key_from_flags_and_env() {
    let off = serve(&["--dashboard", "off", "--api-key", "k"], &[]);
    assert_eq!(get_from(&off, "/dashboard", None).await.0, 404);
    assert_eq!(get_from(&off, "/api/dashboard", Some("k")).await.0, 404);
    drop(off);
    let public = serve(&[], &[("SHARDCAST_DASHBOARD", "public")]);
    let (status, body) = get_from(&public, "/api/dashboard", None).await;
    assert_eq!(
        (status, json_of(&body)["access"].clone()),
        (200, json!("aggregate"))
    );
    drop(public);
    let keyed = serve(&["--dashboard-key", "dk"], &[]);
    assert_eq!(get_from(&keyed, "/api/dashboard", None).await.0, 401);
    let (status, body) = get_from(&keyed, "/api/dashboard", Some("dk")).await;
    assert_eq!(
        (status, json_of(&body)["access"].clone()),
        (200, json!("full"))
    );
    let stderr = refusal(&[
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--dashboard",
        "maybe",
    ]);
    assert!(
        stderr.contains("`maybe` for --dashboard") && stderr.contains("off, protected or public"),
        "{stderr}"
    );
}

/// The cost of the room summary at 150,000 rooms on 2 shards (50,000 of them on both):
/// a measurement, not a check. Run in release for the figure the README quotes:
/// `cargo test --release --test it dashboard::room_summary_cost -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn room_summary_cost_at_150k_rooms() {
    let server = TestServer::start(builder(DashboardMode::Protected).configure(|c| {
        c.max_rooms_per_client = 200_000;
    }));
    let mut on = [None, None];
    let mut clients = Vec::new();
    while on.iter().any(Option::is_none) {
        let (client, id) = server.login("bulk").await;
        on[support::shard_of(&id, 2)].get_or_insert(id);
        clients.push(client);
    }
    let names: Vec<String> = (0..150_000).map(|i| format!("room-{i:06}")).collect();
    let rooms =
        |range: std::ops::Range<usize>| names[range].iter().map(String::as_str).collect::<Vec<_>>();
    let [Some(a), Some(b)] = &on else {
        unreachable!()
    };
    server.handle.join(a, &rooms(0..100_000)).expect("join");
    server
        .handle
        .join(b, &rooms(50_000..150_000))
        .expect("join");
    while server.handle.room_summary(1).await.distinct < 150_000 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut times = Vec::new();
    for _ in 0..21 {
        let started = std::time::Instant::now();
        let summary = server.handle.room_summary(10).await;
        times.push(started.elapsed());
        assert_eq!(summary.distinct, 150_000);
    }
    times.sort();
    let started = std::time::Instant::now();
    let (status, body) = get(&server, "/api/dashboard", Some(API_KEY)).await;
    let http_time = started.elapsed();
    println!(
        "room_summary at 150k rooms (200k shard entries): median {:?}, min {:?}, max {:?}; \
         GET /api/dashboard {http_time:?} ({status}, {} bytes); one shard listing 100k \
         rooms (its thread's share): {:?}",
        times[10],
        times[0],
        times[20],
        body.len(),
        shard_listing(&names[..100_000])
    );
}

/// The median time one shard's index takes to list `rooms` (what blocks its thread).
fn shard_listing(rooms: &[String]) -> Duration {
    let mut index = shardcast::internals::LocalIndex::default();
    for room in rooms {
        index.join(room, 1);
    }
    let mut times: Vec<Duration> = (0..11)
        .map(|_| {
            let started = std::time::Instant::now();
            assert_eq!(index.room_counts().len(), rooms.len());
            started.elapsed()
        })
        .collect();
    times.sort();
    times[5]
}

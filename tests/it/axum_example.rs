//! `examples/axum_dashboard.rs`, run as a user runs it, driven over HTTP and WebSocket
//! and in headless Chromium: log in, watch the chart update live over the page's own
//! origin and port, publish through the application's route and see it on the page,
//! with no JavaScript error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use shardcast::protocol::{CloseReason, ErrorText};

use crate::support::WAIT;
use crate::support::cdp;
use crate::support::client::WsClient;
use crate::support::raw::RawConn;
use crate::support::served::ready_port;

/// The example's binary, next to this test's own binary (`target/<profile>/examples/`),
/// where `./scripts/test` builds it first (`cargo build --examples`; `cargo test`
/// builds examples only as test harnesses).
fn example_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("examples").join("axum_dashboard");
    assert!(
        binary.is_file(),
        "{} is missing: run ./scripts/test, which builds the examples first, or \
         `cargo build --examples` before `cargo test`",
        binary.display()
    );
    binary
}

/// The running example, stopped by PID when dropped.
struct Example {
    child: Child,
    addr: SocketAddr,
}

impl Example {
    /// Starts it on a free port and waits for `READY <port>`.
    fn start() -> Example {
        let mut child = Command::new(example_binary())
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts");
        let port = ready_port(&mut child, WAIT * 4)
            .unwrap_or_else(|line| panic!("expected `READY <port>` within 20 s, got {line:?}"));
        Example {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `POST /login` as `user`; the `session=…` cookie it set.
    async fn login(&self, user: &str) -> String {
        let body = json!({ "user": user }).to_string();
        let reply = self.post("/login", &body, None).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        reply
            .lines()
            .find_map(|line| line.strip_prefix("set-cookie: "))
            .and_then(|cookie| cookie.split(';').next())
            .unwrap_or_else(|| panic!("no session cookie in {reply}"))
            .to_owned()
    }

    /// A `POST` with a JSON body (and a cookie); the whole response.
    async fn post(&self, path: &str, body: &str, cookie: Option<&str>) -> String {
        let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{cookie}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut conn = RawConn::open(self.addr).await;
        conn.send(request.as_bytes()).await;
        conn.read_until_closed().await.text
    }

    /// Interrupts it (as Ctrl-C would) and expects a clean exit.
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -INT {pid}");
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "the example exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the example did not stop within {WAIT:?} of SIGINT");
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Authenticates (no token: the cookie decides) and returns the next message.
async fn authenticate(client: &mut WsClient) -> Value {
    client
        .send_json(json!({ "event": "authenticate", "data": {} }))
        .await;
    client.next_json().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_authenticates_only_with_the_apps_session_cookie() {
    let example = Example::start();
    let mut anonymous = WsClient::connect(&example.ws_url()).await;
    let refused = authenticate(&mut anonymous).await;
    assert_eq!(
        refused["data"]["message"],
        ErrorText::AuthenticationFailed.text()
    );
    anonymous.expect_close(CloseReason::AuthFailed).await;

    let cookie = example.login("ada").await;
    let mut client = WsClient::connect_with(&example.ws_url(), &[("Cookie", &cookie)]).await;
    let connected = authenticate(&mut client).await;
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["data"]["userId"], "ada");
    // In the room `dashboard` from the start: samples at least once a second.
    let started = tokio::time::Instant::now();
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        let sample = client.expect_event("sample").await;
        seqs.push(sample["data"]["seq"].as_u64().expect("seq"));
    }
    assert!(started.elapsed() < Duration::from_secs(3), "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // The publishing route needs a session, and reaches the room.
    let text = json!({ "text": "hello" }).to_string();
    let unauthorized = example.post("/announce", &text, None).await;
    assert!(unauthorized.starts_with("HTTP/1.1 401"), "{unauthorized}");
    let accepted = example.post("/announce", &text, Some(&cookie)).await;
    assert!(accepted.starts_with("HTTP/1.1 202"), "{accepted}");
    loop {
        let message = client.next_json().await;
        if message["event"] == "announcement" {
            assert_eq!(message["data"], json!({ "text": "hello", "from": "ada" }));
            break;
        }
        assert_eq!(message["event"], "sample", "{message}");
    }
    example.interrupt();
}

/// Blue pixels of the chart's line on the canvas.
const LINE_PIXELS: &str = r#"(() => {
  const canvas = document.getElementById('chart');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let line = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0 && data[i + 2] > 150 && data[i] < 100) line += 1;
  }
  return line;
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_page_updates_live_in_headless_chromium() {
    let example = Example::start();
    let browser = cdp::Chromium::launch();
    let mut page = cdp::Page::open(&browser).await;
    page.call("Network.enable", json!({})).await;
    let origin = format!("http://{}", example.addr);
    page.call("Page.navigate", json!({ "url": format!("{origin}/") }))
        .await;

    // Not logged in: the socket is refused (4003) and the login form shows.
    page.wait_for("window.dashboard?.closeCode === 4003", WAIT)
        .await;
    page.wait_for("!document.getElementById('login').hidden", WAIT)
        .await;
    page.type_into("user", "grace").await;
    page.eval("document.getElementById('login').requestSubmit(), true")
        .await;
    page.wait_for("window.dashboard.user === 'grace'", WAIT)
        .await;
    page.wait_for("!document.getElementById('live').hidden", WAIT)
        .await;

    // Live: samples keep arriving and the chart is redrawn with them.
    page.wait_for("window.dashboard.samples.length >= 4", WAIT)
        .await;
    let seq = page.eval("window.dashboard.samples.at(-1).seq").await;
    let later = format!("window.dashboard.samples.at(-1).seq >= {} + 4", seq);
    page.wait_for(&later, WAIT).await;
    let frames = page.eval("window.dashboard.frames").await;
    assert!(frames.as_u64() >= Some(4), "chart redraws: {frames}");
    let line = page.eval(LINE_PIXELS).await;
    assert!(line.as_u64() > Some(50), "the chart's line: {line} pixels");
    let latest = page
        .eval("document.getElementById('latest').textContent")
        .await;
    assert_ne!(latest, json!("–"), "the latest value is shown");

    // Every WebSocket the page opened went to its own origin and port.
    let sockets: Vec<String> = page
        .events
        .iter()
        .filter(|e| e["method"] == "Network.webSocketCreated")
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_owned))
        .collect();
    let same_origin = format!("ws://{}/ws", example.addr);
    assert!(
        sockets.len() >= 2,
        "a refused socket, then the live one: {sockets:?}"
    );
    assert!(sockets.iter().all(|url| *url == same_origin), "{sockets:?}");

    // Publishing through the application's route shows on the page: from the page's own
    // form, and from another session.
    page.type_into("announce-text", "from the page").await;
    page.eval("document.getElementById('announce').requestSubmit(), true")
        .await;
    let shown = |text: &str| {
        format!(
            "[...document.querySelectorAll('#announcements li')].some(li => li.textContent === {})",
            json!(text)
        )
    };
    page.wait_for(&shown("grace: from the page"), WAIT).await;
    let cookie = example.login("hopper").await;
    let body = json!({ "text": "from elsewhere" }).to_string();
    let accepted = example.post("/announce", &body, Some(&cookie)).await;
    assert!(accepted.starts_with("HTTP/1.1 202"), "{accepted}");
    page.wait_for(&shown("hopper: from elsewhere"), WAIT).await;

    // Still live, and nothing went wrong in the page.
    let count = page.eval("window.dashboard.samples.length").await;
    page.wait_for(
        &format!(
            "window.dashboard.samples.length > {count} || window.dashboard.samples.length >= 120"
        ),
        WAIT,
    )
    .await;
    let errors = page.errors();
    assert!(
        errors.is_empty(),
        "the page logged errors:\n{}",
        errors.join("\n")
    );
    example.interrupt();
}

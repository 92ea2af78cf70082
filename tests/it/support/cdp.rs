//! Headless Chromium driven over the Chrome DevTools Protocol: launch (Debian's
//! `chromium`), one page session, `Runtime.evaluate`, and every console error and
//! uncaught exception the page produced.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long Chromium may take to start or to answer one command.
const PATIENCE: Duration = Duration::from_secs(30);

/// A headless Chromium started by this test; killed by PID when dropped.
pub struct Chromium {
    child: Child,
    profile: PathBuf,
    /// The browser's DevTools WebSocket URL.
    pub ws_url: String,
}

/// `chromium` on `PATH`, or a failure that says how to get it.
fn find_chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`chromium` is not on PATH: run ./scripts/test, which installs it \
                 (apt-get install -y chromium), or install Debian's chromium package"
            )
        })
}

impl Chromium {
    /// Starts headless Chromium with a fresh profile and DevTools on a free port.
    pub fn launch() -> Chromium {
        let unique = format!("{}-{:?}", std::process::id(), std::time::Instant::now());
        let profile = std::env::temp_dir().join(format!(
            "shardcast-chromium-{}",
            unique.replace(|c: char| !c.is_ascii_alphanumeric(), "")
        ));
        let mut child = Command::new(find_chromium())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,1800",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let ws_url = devtools_url(stderr).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium printed no `DevTools listening on ws://…` line within {PATIENCE:?}")
        });
        Chromium {
            child,
            profile,
            ws_url,
        }
    }
}

/// Reads Chromium's stderr until the DevTools URL; keeps draining it afterwards so the
/// browser never blocks on a full pipe.
fn devtools_url(stderr: std::process::ChildStderr) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split("DevTools listening on ").nth(1) {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    rx.recv_timeout(PATIENCE).ok()
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One DevTools connection with one attached page session.
pub struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    /// Every event received so far.
    pub events: Vec<Value>,
}

impl Page {
    /// Connects to the browser, opens a page, attaches to it (flat session) and enables
    /// the Runtime, Log and Page domains.
    pub async fn open(browser: &Chromium) -> Page {
        let (ws, _) = tokio_tungstenite::connect_async(browser.ws_url.as_str())
            .await
            .expect("DevTools WebSocket connects");
        let mut page = Page {
            ws,
            next_id: 0,
            session: None,
            events: Vec::new(),
        };
        let target = page
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target_id = target["targetId"].clone();
        let attached = json!({ "targetId": target_id, "flatten": true });
        let session = page.call("Target.attachToTarget", attached).await;
        page.session = session["sessionId"].as_str().map(str::to_owned);
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            page.call(domain, json!({})).await;
        }
        page
    }

    /// Sends a command (to the page session once attached) and returns its result;
    /// events that arrive meanwhile are kept in [`Page::events`].
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let text = message.to_string();
        self.ws.send(Message::text(text)).await.expect("CDP send");
        loop {
            let reply = self.receive().await;
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
            self.events.push(reply);
        }
    }

    async fn receive(&mut self) -> Value {
        let next = tokio::time::timeout(PATIENCE, self.ws.next()).await;
        match next.expect("CDP answers in time") {
            Some(Ok(Message::Text(text))) => serde_json::from_str(&text).expect("CDP JSON"),
            Some(Ok(other)) => panic!("unexpected CDP message {other:?}"),
            Some(Err(e)) => panic!("CDP connection failed: {e}"),
            None => panic!("CDP connection closed"),
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let params = json!({
            "expression": expression,
            "returnByValue": true,
            "awaitPromise": true,
        });
        let result = self.call("Runtime.evaluate", params).await;
        assert!(
            result["exceptionDetails"].is_null(),
            "evaluating `{expression}` threw: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` every 100 ms until it is `true`; panics after `within`.
    pub async fn wait_for(&mut self, expression: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.eval(expression).await != json!(true) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{expression}` did not become true within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into the element with id `id`, as a user would (focus, then input).
    pub async fn type_into(&mut self, id: &str, text: &str) {
        let focus = format!(
            "(() => {{ const e = document.getElementById('{id}'); e.value = ''; e.focus(); return true; }})()"
        );
        assert_eq!(self.eval(&focus).await, json!(true));
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    /// Uncaught exceptions, console errors and warnings, and browser log errors
    /// (a failed load, a CSP violation), as readable lines.
    pub fn errors(&self) -> Vec<String> {
        self.events.iter().filter_map(error_line).collect()
    }
}

/// The line describing `event` if it is an error.
fn error_line(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => Some(format!("exception: {}", params["exceptionDetails"])),
        "Runtime.consoleAPICalled" => {
            let kind = params["type"].as_str().unwrap_or("");
            matches!(kind, "error" | "assert" | "warning")
                .then(|| format!("console.{kind}: {}", params["args"]))
        }
        "Log.entryAdded" => {
            (params["entry"]["level"] == "error").then(|| format!("log error: {}", params["entry"]))
        }
        _ => None,
    }
}

//! Test harness for the Redis layer: real `redis-server` processes on free ports of
//! 127.0.0.1 (never the shared 6379), a three-node Redis Cluster, a TCP proxy that can turn
//! its connections into silent black holes, and small async helpers.
//!
//! Every process is started by this file and stopped by PID (`Child::kill`) on `Drop` or on
//! request; data directories live under the system temp dir and are removed on `Drop`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::value::RawValue;
use shardcast::internals::redis::{EnvelopeSink, RedisBridge};
use shardcast::protocol::Target;
use shardcast::protocol::envelope::Envelope;
use shardcast::redis::{RedisSettings, SubscribeMode};
use tokio::sync::mpsc;

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn scratch_dir(tag: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("shardcast-it-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create redis scratch dir");
    dir
}

/// True when a raw `PING` on `port` is answered with `+PONG` (or `-LOADING`, which means up).
pub fn answers_ping(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 5 && &buf[..5] == b"+PONG")
}

/// One `redis-server` process on 127.0.0.1.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Start on a free port and wait until it answers PING.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Start with extra `redis-server` arguments (e.g. `["--cluster-enabled", "yes"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        for _ in 0..5 {
            let mut server = RedisServer {
                port: free_port(),
                dir: scratch_dir("redis"),
                extra: extra.iter().map(|s| (*s).to_owned()).collect(),
                child: None,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!(
            "redis-server did not come up after 5 attempts (is it installed? apt-get install -y redis-server)"
        );
    }

    /// A free port with no server yet (call [`RedisServer::restart`] to start it).
    pub fn reserved() -> RedisServer {
        RedisServer {
            port: free_port(),
            dir: scratch_dir("redis"),
            extra: Vec::new(),
            child: None,
        }
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PID of the running process, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL the process (by PID) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port (after [`RedisServer::kill`]); waits for PING.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server could not restart on port {}", self.port);
    }

    /// Run `redis-cli -p PORT args…` and return its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }

    /// `CLIENT PAUSE ms ALL`: every client's commands wait (and nothing is delivered) for `ms`.
    pub fn pause(&self, ms: u64) {
        let out = self.cli(&["CLIENT", "PAUSE", &ms.to_string(), "ALL"]);
        assert!(out.contains("OK"), "CLIENT PAUSE failed: {out}");
    }

    /// `CLIENT KILL TYPE pubsub`; returns how many connections were killed.
    pub fn kill_pubsub_clients(&self) -> u64 {
        self.cli(&["CLIENT", "KILL", "TYPE", "pubsub"])
            .trim()
            .parse()
            .unwrap_or(0)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (apt-get install -y redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if answers_ping(self.port) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some();
            if exited {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Redis Cluster of `n` masters, no replicas.
pub struct RedisCluster {
    /// The nodes, in creation order.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Start `n` cluster-enabled servers, `redis-cli --cluster create` them, and wait until
    /// every node reports `cluster_state:ok` and knows all the others.
    pub fn start(n: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..n)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = Command::new("redis-cli")
            .args(&args)
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok(Duration::from_secs(15));
        cluster
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    fn wait_ok(&self, limit: Duration) {
        let want_known = format!("cluster_known_nodes:{}", self.nodes.len());
        let deadline = Instant::now() + limit;
        loop {
            let ok = self.nodes.iter().all(|n| {
                let info = n.cli(&["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains(&want_known)
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A TCP proxy in front of a Redis port whose existing connections can be frozen: bytes are
/// then swallowed in both directions while the sockets stay open — a half-open connection as
/// seen after a silent network cut. Connections made after a freeze work normally.
pub struct FreezableProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Connections with a generation at or below this one are frozen.
    frozen_upto: Arc<AtomicU64>,
    generation: Arc<AtomicU64>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl FreezableProxy {
    /// Listen on a free port and forward to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> FreezableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener
            .set_nonblocking(true)
            .expect("nonblocking proxy listener");
        let port = listener.local_addr().expect("proxy addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let frozen_upto = Arc::new(AtomicU64::new(0));
        let generation = Arc::new(AtomicU64::new(0));
        let (s, f, g) = (stop.clone(), frozen_upto.clone(), generation.clone());
        let acceptor = std::thread::spawn(move || accept_loop(listener, upstream, s, f, g));
        FreezableProxy {
            port,
            stop,
            frozen_upto,
            generation,
            threads: Mutex::new(vec![acceptor]),
        }
    }

    /// `redis://127.0.0.1:{proxy port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Freeze every connection open now.
    pub fn freeze_existing(&self) {
        self.frozen_upto
            .store(self.generation.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self
            .threads
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
        {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    upstream: u16,
    stop: Arc<AtomicBool>,
    frozen: Arc<AtomicU64>,
    generation: Arc<AtomicU64>,
) {
    let mut pumps = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let gen_id = generation.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = client.set_nonblocking(false);
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (Ok(server), Ok(client)),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let (stop, frozen) = (stop.clone(), frozen.clone());
                    pumps.push(std::thread::spawn(move || {
                        pump(from, to, gen_id, stop, frozen)
                    }));
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    for p in pumps {
        let _ = p.join();
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    gen_id: u64,
    stop: Arc<AtomicBool>,
    frozen: Arc<AtomicU64>,
) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if gen_id > frozen.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// An [`EnvelopeSink`] that forwards every envelope to a channel.
pub struct CollectSink(mpsc::UnboundedSender<Envelope>);

impl EnvelopeSink for CollectSink {
    fn deliver(&self, envelope: Envelope) {
        let _ = self.0.send(envelope);
    }
}

/// A sink and the receiving end of what it collects.
pub fn collect_sink() -> (Arc<CollectSink>, mpsc::UnboundedReceiver<Envelope>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(CollectSink(tx)), rx)
}

/// The next envelope within `limit`, or None.
pub async fn next_within(
    rx: &mut mpsc::UnboundedReceiver<Envelope>,
    limit: Duration,
) -> Option<Envelope> {
    tokio::time::timeout(limit, rx.recv()).await.ok().flatten()
}

/// Settings with small backoff and probe timings so fault tests finish fast.
pub fn fast_settings(urls: Vec<String>) -> RedisSettings {
    fast_settings_in(SubscribeMode::Interest, urls)
}

/// [`fast_settings`] with the subscriber listening in `mode`.
pub fn fast_settings_in(mode: SubscribeMode, urls: Vec<String>) -> RedisSettings {
    RedisSettings {
        subscribe: mode,
        urls,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        probe_interval: Duration::from_millis(300),
        probe_timeout: Duration::from_millis(300),
        ..RedisSettings::default()
    }
}

/// Poll `cond` every 10 ms until it holds; panics with `what` after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// PUBLISH raw bytes through a fresh connection; returns the receiver count.
pub async fn publish_raw(url: &str, channel: &str, payload: &[u8]) -> redis::RedisResult<i64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async(&mut conn)
        .await
}

/// A plain pub/sub client for checking exact bytes on the wire.
pub struct RawSubscriber {
    stream: redis::aio::PubSubStream,
    _sink: redis::aio::PubSubSink,
}

impl RawSubscriber {
    /// PSUBSCRIBE `patterns` on `url`.
    pub async fn psubscribe(url: &str, patterns: &[&str]) -> RawSubscriber {
        let client = redis::Client::open(url).expect("url");
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .expect("raw subscriber connects");
        pubsub.psubscribe(patterns).await.expect("psubscribe");
        let (sink, stream) = pubsub.split();
        RawSubscriber {
            stream,
            _sink: sink,
        }
    }

    /// The next `(channel, payload)` within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<(String, Vec<u8>)> {
        let msg = tokio::time::timeout(limit, self.stream.next())
            .await
            .ok()
            .flatten()?;
        Some((
            msg.get_channel_name().to_owned(),
            msg.get_payload_bytes().to_vec(),
        ))
    }
}

/// How long a bridge may take to become ready.
pub const READY: Duration = Duration::from_secs(5);
/// How long a published message may take to arrive.
pub const ARRIVE: Duration = Duration::from_secs(3);

/// The channels a test bridge hosts: every room, user and client the bridge tests
/// publish to. In interest mode a bridge hears only what its node hosts; holding these
/// stands for the local members an engine's shards would hold them for.
pub const HOSTED: [&str; 13] = [
    "ws:room:lobby",
    "ws:room:r",
    "ws:room:seq",
    "ws:room:q",
    "ws:user:u",
    "ws:user:u-1",
    "ws:user:ü",
    "ws:client:c",
    "ws:client:5b0c1f3e-8a2d-4c6b-9e7f-0123456789ab",
    "ws:client:00000000-0000-4000-8000-0000000000c2",
    "ws:user:u-x",
    "ws:client:00000000-0000-4000-8000-0000000000c1",
    "ws:room:public-r",
];

/// Holds [`HOSTED`] on `bridge`'s interest.
pub fn host(bridge: &RedisBridge) {
    for channel in HOSTED {
        bridge.interest().hold(channel);
    }
}

/// Start a bridge on the current runtime with a collecting sink; it hosts [`HOSTED`].
pub fn start_bridge(
    settings: RedisSettings,
    server_id: &str,
) -> (RedisBridge, mpsc::UnboundedReceiver<Envelope>) {
    let (sink, rx) = collect_sink();
    let bridge = RedisBridge::start(
        settings,
        server_id.to_owned(),
        sink,
        &tokio::runtime::Handle::current(),
    )
    .expect("bridge starts");
    host(&bridge);
    (bridge, rx)
}

/// Each `async fn name(mode: SubscribeMode)` listed becomes two tests, `name::interest`
/// and `name::patterns`: the fleet, fault and mixed-fleet suites hold in both modes.
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use shardcast::redis::SubscribeMode;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn interest() {
                    super::$name(SubscribeMode::Interest).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn patterns() {
                    super::$name(SubscribeMode::Patterns).await;
                }
            }
        )*
    };
}
pub(crate) use in_both_modes;

/// Wait until the bridge is subscribed to everything; returns how long it took.
pub async fn wait_ready(bridge: &RedisBridge) -> Duration {
    wait_for("bridge ready", READY, || bridge.is_ready()).await
}

/// Build an envelope.
pub fn envelope(
    server_id: &str,
    target: Target,
    event: &str,
    data: Option<&str>,
    exclude: &[&str],
) -> Envelope {
    let data = data.map(|d| RawValue::from_string(d.to_owned()).expect("data is JSON"));
    let exclude = exclude.iter().map(|s| (*s).to_owned()).collect();
    Envelope::new(server_id, target, event, data.as_deref(), exclude)
}

/// A client target for envelopes (client targets must be client ids).
pub fn client_target() -> Target {
    Target::client("00000000-0000-4000-8000-0000000000c1").expect("a client id")
}

/// PUBLISH an envelope on its channel through a fresh connection to `url`.
pub async fn publish_envelope(url: &str, env: &Envelope) {
    publish_raw(url, &env.channel(), &env.encode())
        .await
        .expect("raw publish");
}

/// Waits (at most [`super::WAIT`]) until `read()` gives exactly `want`; panics with the
/// difference, naming `what`.
pub async fn expect_set<T: Ord + std::fmt::Debug>(
    what: &str,
    want: &std::collections::BTreeSet<T>,
    read: impl Fn() -> std::collections::BTreeSet<T>,
) {
    let deadline = Instant::now() + super::WAIT;
    loop {
        let got = read();
        if &got == want {
            return;
        }
        if Instant::now() > deadline {
            let extra: Vec<_> = got.difference(want).collect();
            let missing: Vec<_> = want.difference(&got).collect();
            panic!("{what} differ: extra {extra:?}, missing {missing:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The channels a logged-in client of `user` makes its node hold (interest and sharded
/// mode): its own two channels, its user's, and the default rooms'.
pub fn client_channels(id: &str, user: &str) -> Vec<String> {
    vec![
        format!("ws:client:{id}"),
        format!("ws:room:{id}"),
        format!("ws:user:{user}"),
        "ws:room:ws-default".into(),
        "ws:room:ws-notification".into(),
    ]
}

//! Test harness: an engine on 127.0.0.1:0 with N shards, a WebSocket test client, and
//! assertion helpers that print what was expected and what came.

#![allow(dead_code)]

pub mod cdp;
pub mod client;
pub mod deflate_ws;
pub mod raw;
pub mod raw_ws;
pub mod redis;
pub mod served;
pub mod tls;

pub use client::Next;

use std::time::Duration;

use shardcast::hooks::DevAuthenticator;
use shardcast::rooms::glob::RoomPolicy;
use shardcast::{Engine, EngineBuilder};

pub use client::WsClient;

/// The headers of a valid WebSocket upgrade request (for [`http`] exchanges).
pub const UPGRADE_HEADERS: [(&str, &str); 4] = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
];

/// A complete upgrade request of `/ws`, as raw bytes.
pub const UPGRADE_REQUEST: &[u8] = b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test listens to make sure something does not happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// Test engine settings: N shards on a free port, public-* rooms allowed, dev auth.
pub fn builder(shards: usize) -> EngineBuilder {
    Engine::builder()
        .configure(|c| {
            c.listen = "127.0.0.1:0".parse().expect("loopback address");
            c.shards = shards;
            c.pin_shards = false;
        })
        .authenticator(DevAuthenticator)
        .room_validator(RoomPolicy::new(&["public-*", "user-{userId}-*"]).expect("patterns"))
}

/// `builder` joined to the Redis (or cluster nodes) at `urls`.
pub fn attach(builder: EngineBuilder, urls: &[String]) -> EngineBuilder {
    builder.redis(shardcast::redis::RedisSettings::new(urls.iter().cloned()))
}

/// [`attach`] with the subscriber listening in `mode`.
pub fn attach_in(
    builder: EngineBuilder,
    urls: &[String],
    mode: shardcast::redis::SubscribeMode,
) -> EngineBuilder {
    builder.redis(shardcast::redis::RedisSettings {
        subscribe: mode,
        ..shardcast::redis::RedisSettings::new(urls.iter().cloned())
    })
}

/// A running engine and its address.
pub struct TestServer {
    pub engine: Option<Engine>,
    pub addr: std::net::SocketAddr,
    pub handle: shardcast::Handle,
}

impl TestServer {
    /// Starts `builder`.
    pub fn start(builder: EngineBuilder) -> TestServer {
        let engine = builder.start().expect("engine starts");
        let addr = engine.local_addr().expect("the test engine listens");
        let handle = engine.handle();
        TestServer {
            engine: Some(engine),
            addr,
            handle,
        }
    }

    /// Starts the default test engine with `shards` shards.
    pub fn with_shards(shards: usize) -> TestServer {
        Self::start(builder(shards))
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Opens a connection without authenticating.
    pub async fn connect(&self) -> WsClient {
        WsClient::connect(&self.ws_url()).await
    }

    /// Opens a connection and authenticates as `user` (dev auth: token = user id).
    pub async fn login(&self, user: &str) -> (WsClient, String) {
        let mut client = self.connect().await;
        let id = client.authenticate(user).await;
        self.wait_subscribed().await;
        (client, id)
    }

    /// Stops the engine and waits for it.
    pub fn stop(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shard a client id lives on, for tests that need members on several shards.
pub fn shard_of(id: &str, shards: usize) -> usize {
    let id: shardcast::ClientId = id.parse().expect("client id");
    shardcast::internals::shard_for(&id, shards).index()
}

impl TestServer {
    /// Waits until `room` has exactly `n` local members (joins are asynchronous).
    pub async fn wait_members(&self, room: &str, n: usize) {
        wait_members(&self.handle, room, n).await;
        self.wait_subscribed().await;
    }

    /// Waits (at most [`WAIT`]) until Redis carries every channel this node needs, so a
    /// test that publishes from another node right after a login or join does not race
    /// the join-to-subscription window (`redis_interest.rs` tests that window itself).
    pub async fn wait_subscribed(&self) {
        let _ = tokio::time::timeout(WAIT, self.handle.wait_subscribed()).await;
    }
}

/// Waits until `room` has exactly `n` members on the engine of `handle`.
pub async fn wait_members(handle: &shardcast::Handle, room: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = handle.clients_of_room(room).await.len();
        if got == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "room {room}: expected {n} members, have {got}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A raw HTTP/1.1 exchange (`Connection: close`); returns status and body.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

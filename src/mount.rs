//! Mounting the engine on an application's [axum](https://docs.rs/axum) router (feature
//! `axum`): the WebSocket route on the application's own port, and the built-in
//! endpoints as handlers the application places where it wants.
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::Router;
//! use axum::routing::get;
//! use shardcast::Engine;
//! use shardcast::hooks::Identity;
//!
//! # async fn app() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder()
//!     .without_listener()
//!     .authenticate(|req| async move {
//!         // The application's own session, from the upgrade request's cookie.
//!         let user = req.upgrade.cookie("session").map(str::to_owned);
//!         Ok(user.map(|user| Identity { user_id: Some(user), ..Default::default() }))
//!     })
//!     .start()?;
//! let app = Router::new()
//!     .route("/", get(|| async { "the application's page" }))
//!     .route("/ws", shardcast::mount::websocket(&engine))
//!     .merge(shardcast::mount::endpoints(&engine));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! # Contract
//!
//! - **Same checks, same answers** as the engine's own port: 503 while shutting down,
//!   403 for an `Origin` outside `allowed_origins`, 400/426 for a bad handshake, 503/429
//!   at the connection caps or the failed-authentication throttle, each counted in the
//!   same metrics. The application's handler writes the `101`.
//! - **Then the socket changes hands.** Once hyper has written the `101`, the upgraded
//!   connection is taken apart (`hyper_util`'s `downcast`) into its `TcpStream` and the
//!   bytes hyper already read (and, under TLS, its rustls state); the stream leaves the
//!   application's reactor and goes to the next shard's handoff queue (round-robin).
//!   From there the connection behaves exactly like one the engine accepted: same
//!   socket, task, delivery path and state, allocated on the shard; the application's
//!   runtime keeps nothing of it.
//! - **Transports.** The router must be served by hyper's HTTP/1 server (what
//!   `axum::serve` does, or hyper-util's server) over a tokio `TcpStream`, plain or under
//!   tokio-rustls 0.26 (an application that terminates TLS itself, such as axum-server
//!   with rustls): the rustls state moves to the shard with the socket, as the engine's
//!   own TLS acceptor does it, plaintext rustls already decrypted included. Any other
//!   transport (a Unix socket, another TLS library) cannot be taken over and is closed
//!   after the `101`, logged once as an error that says so. Serve with
//!   `into_make_service_with_connect_info::<SocketAddr>()` so the peer address is known
//!   before the `101`: without it the per-address caps are checked after the upgrade, and
//!   a refusal is a close frame (1013) instead of an HTTP 503/429.
//! - **Endpoints.** [`endpoints`] routes every built-in endpoint that is on in
//!   [`EngineConfig::endpoints`](crate::EngineConfig::endpoints) (and the dashboard,
//!   unless [`EngineConfig::dashboard`](crate::EngineConfig::dashboard) is off) at its
//!   usual path, relative to where it is merged or nested. [`health`], [`ready`] and
//!   [`metrics`] are single handlers for any path the application picks; they serve
//!   whatever the builder said about the engine's own port, because mounting one is the
//!   application's explicit choice. Request bodies are bounded as on the engine's port
//!   (1 MiB, then 413).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{MethodRouter, any, get};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::Engine;
use crate::admission::Permit;
use crate::config::{DashboardMode, Endpoints};
use crate::engine::Doorway;
use crate::http::request::MAX_BODY;
use crate::http::{self, RequestHead};
use crate::metrics::HttpRoute;
use crate::shard::handoff::Handoff;
use crate::ws::extension::PerMessageDeflate;

/// The WebSocket route: `GET` upgrades go to the engine, anything else on the path
/// answers as on the engine's port (426 for a plain GET, 405 for other methods).
///
/// ```no_run
/// # fn demo(engine: &shardcast::Engine) {
/// let app: axum::Router = axum::Router::new().route("/ws", shardcast::mount::websocket(engine));
/// # }
/// ```
pub fn websocket<S>(engine: &Engine) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let doorway = engine.doorway();
    get(move |request: Request| upgrade(doorway.clone(), request))
}

/// Every built-in endpoint that is on, at its usual path (`/health`, `/ready`,
/// `/metrics`, `/api/…`, `/dashboard`): merge it into the application's router, or nest
/// it under a prefix (`Router::nest("/admin", endpoints(&engine))`: the dashboard's page
/// reaches its data relative to where it is served).
pub fn endpoints<S>(engine: &Engine) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let doorway = engine.doorway();
    let on = doorway.http.endpoints;
    let dashboard = doorway.http.dashboard.mode != DashboardMode::Off;
    let routed = any(move |request: Request| serve(doorway.clone(), None, request));
    let mut router = Router::new();
    let paths = [
        ("/health", on.health),
        ("/ready", on.ready),
        ("/metrics", on.metrics),
        ("/api/{*rest}", on.publish || on.api || dashboard),
        ("/dashboard", dashboard),
        ("/dashboard/", dashboard),
        ("/dashboard/{*rest}", dashboard),
    ];
    for (path, _) in paths.iter().filter(|(_, on)| *on) {
        router = router.route(path, routed.clone());
    }
    router
}

/// `GET /health` (`{"status":"ok"}`) at whatever path it is mounted on.
pub fn health<S>(engine: &Engine) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    single(engine, "/health")
}

/// `GET /ready` (200 once Redis, when configured, is subscribed; else 503) at whatever
/// path it is mounted on.
pub fn ready<S>(engine: &Engine) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    single(engine, "/ready")
}

/// `GET /metrics` (Prometheus text) at whatever path it is mounted on.
pub fn metrics<S>(engine: &Engine) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    single(engine, "/metrics")
}

/// One endpoint, answered as if requested at `path`, whatever the builder said.
fn single<S>(engine: &Engine, path: &'static str) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let doorway = engine.doorway();
    any(move |request: Request| serve(doorway.clone(), Some(path), request))
}

/// Answers a request through the engine's HTTP routes: at `as_path` with every endpoint
/// on, or (`None`) at its own path with the endpoints the builder turned on.
async fn serve(doorway: Arc<Doorway>, as_path: Option<&'static str>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut head = head_of(&parts.method, &parts.uri, &parts.version, &parts.headers);
    let service = &doorway.http;
    let endpoints = match as_path {
        Some(path) => {
            head.path = path.to_owned();
            Endpoints::ALL
        }
        None => service.endpoints,
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return answer(http::Response::error(413, "Payload Too Large"));
    };
    answer(http::route(service, &endpoints, &head, &body).await)
}

/// Checks an upgrade like the engine's port does, answers `101`, and hands the socket
/// to a shard once hyper has written it.
async fn upgrade(doorway: Arc<Doorway>, mut request: Request) -> Response {
    let accepted_at = crate::metrics::stamp_now();
    let service = &doorway.http;
    let head = head_of(
        request.method(),
        request.uri(),
        &request.version(),
        request.headers(),
    );
    if !head.is_websocket_upgrade() {
        service.handle.metrics().http.record(HttpRoute::WsPath, 426);
        let upgrade = http::Response::error(426, "Upgrade Required");
        return answer(upgrade.with_header("Upgrade", "websocket"));
    }
    let acceptance = match http::check_upgrade(&head, service) {
        Ok(acceptance) => acceptance,
        Err(refusal) => return answer(http::refused(service, refusal)),
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let permit = match peer.map(|peer| http::admit(service, peer)).transpose() {
        Ok(permit) => permit,
        Err(refusal) => return answer(http::refused(service, refusal)),
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        let refusal = http::Response::error(426, "This connection cannot be upgraded");
        return answer(http::refused(service, refusal));
    };
    service
        .handle
        .metrics()
        .http
        .record(HttpRoute::Upgrade, 101);
    let pending = Pending {
        head,
        peer,
        permit,
        accepted_at,
        deflate: acceptance.deflate,
    };
    tokio::spawn(hand_off(doorway, on_upgrade, pending));
    switching_protocols(&acceptance)
}

/// An accepted upgrade waiting for hyper to give the connection up.
struct Pending {
    head: RequestHead,
    peer: Option<SocketAddr>,
    permit: Option<Permit>,
    accepted_at: u64,
    deflate: Option<PerMessageDeflate>,
}

/// Takes the upgraded connection apart and queues its socket on a shard.
async fn hand_off(doorway: Arc<Doorway>, on_upgrade: hyper::upgrade::OnUpgrade, pending: Pending) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(err) => {
            tracing::debug!("a mounted upgrade did not complete: {err}");
            return;
        }
    };
    let Some((transport, read_buf)) = take_apart(upgraded) else {
        not_tcp();
        return;
    };
    let Some(peer) = pending.peer.or_else(|| transport.tcp().peer_addr().ok()) else {
        return;
    };
    let permit = match pending.permit {
        Some(permit) => permit,
        None => match http::admit(&doorway.http, peer) {
            Ok(permit) => permit,
            Err(refusal) => return refuse_after_upgrade(&doorway, transport, refusal).await,
        },
    };
    let Some((stream, tls, leftover)) = transport.split(read_buf.to_vec(), &doorway).await else {
        return;
    };
    let Ok(stream) = stream.into_std() else {
        return;
    };
    let handoff = Handoff {
        stream,
        tls,
        peer,
        leftover,
        permit,
        info: Box::new(http::upgrade_info(pending.head, peer)),
        deflate: pending.deflate,
        accepted_at: pending.accepted_at,
    };
    // Fails only when the engine has stopped: dropping the handoff closes the socket.
    let _ = doorway.next_shard().send(handoff).await;
}

/// A TLS connection as tokio-rustls serves it (axum-server's rustls acceptor, or an
/// application's own `TlsAcceptor`).
type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// The transport under an upgraded connection.
enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS the application terminated, over TCP.
    Tls(Box<TlsStream>),
}

impl Transport {
    /// The TCP stream underneath.
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(tls) => tls.get_ref().0,
        }
    }

    /// The TCP stream, the TLS state over it (records the application's stack still held
    /// are sent first) and every byte already received past the request: `leftover`,
    /// then what rustls decrypted that hyper did not read. `None` when the connection
    /// broke meanwhile.
    async fn split(
        self,
        leftover: Vec<u8>,
        doorway: &Doorway,
    ) -> Option<(TcpStream, Option<Box<rustls::ServerConnection>>, Vec<u8>)> {
        match self {
            Transport::Plain(tcp) => Some((tcp, None, leftover)),
            Transport::Tls(mut tls) => {
                let flushed = tokio::time::timeout(doorway.http.request_timeout, tls.flush());
                flushed.await.ok()?.ok()?;
                let (tcp, mut state) = tls.into_inner();
                let leftover = crate::tls::with_decrypted(&mut state, leftover)?;
                Some((tcp, Some(Box::new(state)), leftover))
            }
        }
    }
}

/// The transport under an upgraded connection and the bytes hyper read past the
/// request; `None` when it is neither a tokio `TcpStream` nor tokio-rustls over one.
fn take_apart(upgraded: hyper::upgrade::Upgraded) -> Option<(Transport, Bytes)> {
    // `axum::serve` (hyper-util's auto connection) wraps the transport in its own
    // buffered type, reached by hyper-util's `downcast`; a bare hyper HTTP/1 connection
    // does not, and hyper's own `downcast` reaches it.
    use hyper_util::server::conn::auto::upgrade::downcast;
    let plain = |io: TokioIo<TcpStream>| Transport::Plain(io.into_inner());
    let tls = |io: TokioIo<TlsStream>| Transport::Tls(Box::new(io.into_inner()));
    let upgraded = match downcast::<TokioIo<TcpStream>>(upgraded) {
        Ok(parts) => return Some((plain(parts.io), parts.read_buf)),
        Err(upgraded) => upgraded,
    };
    let upgraded = match downcast::<TokioIo<TlsStream>>(upgraded) {
        Ok(parts) => return Some((tls(parts.io), parts.read_buf)),
        Err(upgraded) => upgraded,
    };
    let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => return Some((plain(parts.io), parts.read_buf)),
        Err(upgraded) => upgraded,
    };
    let parts = upgraded.downcast::<TokioIo<TlsStream>>().ok()?;
    Some((tls(parts.io), parts.read_buf))
}

/// Logs, once per process, that an upgraded transport could not be taken over.
fn not_tcp() {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::error!(
            "a WebSocket upgraded by the application's router runs over neither a tokio \
             TcpStream nor tokio-rustls 0.26 over one (a Unix socket? another TLS \
             library?), so the engine cannot take it over and closes it: serve the router \
             over TCP (axum::serve, or TLS with tokio-rustls) or give the engine its own \
             listener"
        );
    }
}

/// A refusal the caps decided after the `101` (the peer address was unknown before):
/// a close frame, 1013 with the refusal's reason (through TLS when the application
/// terminated it), then the socket is dropped.
async fn refuse_after_upgrade(doorway: &Doorway, transport: Transport, refusal: http::Response) {
    let refusal = http::refused(&doorway.http, refusal);
    let body: Option<serde_json::Value> = serde_json::from_slice(&refusal.body).ok();
    let reason = body
        .as_ref()
        .and_then(|b| b["error"].as_str())
        .unwrap_or("");
    let frame = crate::ws::frame::close_frame(1013, reason);
    let write = async {
        match transport {
            Transport::Plain(mut tcp) => tcp.write_all(&frame).await,
            Transport::Tls(mut tls) => {
                tls.write_all(&frame).await?;
                tls.shutdown().await
            }
        }
    };
    let _ = tokio::time::timeout(doorway.http.request_timeout, write).await;
}

/// The `101 Switching Protocols` response.
fn switching_protocols(acceptance: &http::Acceptance) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(value) = HeaderValue::from_str(&acceptance.key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    if let Some(Ok(value)) = acceptance.extensions().map(HeaderValue::try_from) {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    response
}

/// The engine's view of a request head (header names are lowercase in `http`).
fn head_of(
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    version: &axum::http::Version,
    headers: &axum::http::HeaderMap,
) -> RequestHead {
    RequestHead {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        minor_version: u8::from(*version != axum::http::Version::HTTP_10),
        headers: headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
    }
}

/// An engine answer as an axum response.
fn answer(response: http::Response) -> Response {
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(response.content_type),
    );
    for (name, value) in response.extra_headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    out
}

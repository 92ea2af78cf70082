//! The engine mounted on an axum application's router (`shardcast::mount`): the socket
//! upgraded on the application's port moves to a shard and behaves like one the engine
//! accepted; the authenticator sees the upgrade request (cookies, headers, path, query,
//! peer); refusals match the engine's port; the built-in endpoints mount where the
//! application wants or not at all.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use serde_json::json;
use shardcast::hooks::{Identity, UpgradeInfo};
use shardcast::protocol::{CloseReason, ErrorText};
use shardcast::rooms::glob::RoomPolicy;
use shardcast::{Endpoints, Engine, EngineBuilder, EngineError, Handle, mount};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::client::WsClient;
use crate::support::deflate_ws::DeflateWs;
use crate::support::raw::{self, RawConn};
use crate::support::{WAIT, http, wait_members};

/// Upgrade requests the authenticator saw, in order.
type Seen = Arc<Mutex<Vec<UpgradeInfo>>>;

/// An engine without a listener whose authenticator accepts the cookie `session=u-NAME`
/// as user NAME (and records every upgrade request it sees).
fn engine_builder(seen: &Seen) -> EngineBuilder {
    let seen = seen.clone();
    Engine::builder()
        .without_listener()
        .configure(|c| {
            c.shards = 2;
            c.pin_shards = false;
        })
        .authenticate(move |request| {
            seen.lock().unwrap().push(request.upgrade.clone());
            let user = request
                .upgrade
                .cookie("session")
                .and_then(|s| s.strip_prefix("u-"));
            let identity = user.map(|user| Identity {
                user_id: Some(user.to_owned()),
                ..Default::default()
            });
            async move { Ok(identity) }
        })
        .room_validator(RoomPolicy::new(&["public-*"]).expect("patterns"))
}

/// An axum application serving `router` on a free loopback port, in this test's runtime.
struct App {
    addr: SocketAddr,
    handle: Handle,
    engine: Option<Engine>,
    server: tokio::task::JoinHandle<()>,
}

impl App {
    /// Serves `router(engine)` with the peer address known before the upgrade
    /// (`connect_info`) or not.
    async fn serve(engine: Engine, router: Router, connect_info: bool) -> App {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let served = match connect_info {
                true => {
                    let service = router.into_make_service_with_connect_info::<SocketAddr>();
                    axum::serve(listener, service).await
                }
                false => axum::serve(listener, router).await,
            };
            served.expect("the application serves");
        });
        App {
            addr,
            handle: engine.handle(),
            engine: Some(engine),
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(engine) = self.engine.take() {
            engine.shutdown();
        }
    }
}

/// The default app: the WebSocket at `/live`, the endpoints merged.
async fn default_app(seen: &Seen, connect_info: bool) -> App {
    let engine = engine_builder(seen).start().expect("engine starts");
    let router = Router::new()
        .route("/live", mount::websocket(&engine))
        .merge(mount::endpoints(&engine));
    App::serve(engine, router, connect_info).await
}

#[tokio::test]
async fn a_mounted_socket_authenticates_by_cookie_and_lives_on_a_shard() {
    let seen = Seen::default();
    let app = default_app(&seen, true).await;
    assert_eq!(app.engine.as_ref().and_then(Engine::local_addr), None);

    let url = app.url("/live?view=prices&v=2");
    let headers = [
        ("Cookie", "theme=dark; session=u-alice"),
        ("X-Tenant", "acme"),
    ];
    let mut client = WsClient::connect_with(&url, &headers).await;
    client
        .send_json(json!({ "event": "authenticate", "data": {} }))
        .await;
    let connected = client.expect_event("connected").await;
    assert_eq!(connected["data"]["userId"], "alice");
    let id = connected["data"]["id"]
        .as_str()
        .expect("client id")
        .to_owned();

    // The authenticator saw the upgrade request.
    let info = seen.lock().unwrap().pop().expect("the authenticator ran");
    assert_eq!(info.path, "/live");
    assert_eq!(info.query.as_deref(), Some("view=prices&v=2"));
    assert_eq!(info.query_param("view"), Some("prices"));
    assert_eq!(info.header("x-tenant"), Some("acme"));
    assert_eq!(info.cookie("session"), Some("u-alice"));
    assert!(info.peer.ip().is_loopback(), "peer {}", info.peer);

    // It lives on a shard, in the shard's indexes, on the delivery path.
    let client_info = app.handle.client_info(&id).await.expect("a local client");
    assert_eq!(
        client_info.shard,
        crate::support::shard_of(&id, 2),
        "placement"
    );
    assert_eq!(client_info.user_id.as_deref(), Some("alice"));
    client.join(&["public-news"]).await;
    wait_members(&app.handle, "public-news", 1).await;
    app.handle
        .send_to_room("public-news", "headline", &json!({ "n": 1 }), &[])
        .expect("send");
    assert_eq!(
        client.expect_event("headline").await["data"],
        json!({ "n": 1 })
    );
    app.handle
        .send_to_user("alice", "direct", &json!("hi"))
        .expect("send");
    assert_eq!(client.expect_event("direct").await["data"], json!("hi"));
    assert_eq!(app.handle.stats().authenticated, 1);
    client.close().await;
}

#[tokio::test]
async fn a_mounted_socket_negotiates_compression_like_the_engine_port() {
    let seen = Seen::default();
    let engine = engine_builder(&seen)
        .configure(|c| c.compression = true)
        .start()
        .expect("engine starts");
    let router = Router::new().route("/live", mount::websocket(&engine));
    let app = App::serve(engine, router, true).await;
    let offer = Some("permessage-deflate; client_max_window_bits");
    let cookie = "Cookie: session=u-carol\r\n";
    let mut client = DeflateWs::connect_path(app.addr, "/live", offer, cookie).await;
    assert_eq!(
        client.extensions.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        "hyper's 101 carries the agreement"
    );
    client.authenticate("by-cookie").await;
    client
        .emit_compressed("join", json!({ "rooms": ["public-z"] }))
        .await;
    wait_members(&app.handle, "public-z", 1).await;
    let long = json!({ "text": "mounted and compressed ".repeat(40) });
    app.handle
        .send_to_room("public-z", "note", &long, &[])
        .expect("send");
    let message = client.next().await;
    assert!(
        message.compressed,
        "the shard compresses for a mounted socket too"
    );
    assert_eq!(message.json()["data"], long);
}

#[tokio::test]
async fn frames_sent_behind_the_upgrade_request_reach_the_shard() {
    let seen = Seen::default();
    let app = default_app(&seen, true).await;
    let mut conn = RawConn::open(app.addr).await;
    // The upgrade and the first frame in one write: hyper reads both, and the frame must
    // travel with the socket to its shard.
    let mut bytes = b"GET /live HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: session=u-bob\r\n\r\n".to_vec();
    bytes.extend(masked_text(r#"{"event":"authenticate","data":{}}"#));
    conn.send(&bytes).await;
    let received = conn.read_for(WAIT / 5).await;
    assert!(
        received.text.starts_with("HTTP/1.1 101"),
        "{}",
        received.text
    );
    assert!(
        received.text.contains(r#""event":"connected""#)
            && received.text.contains(r#""userId":"bob""#),
        "no connected event: {}",
        received.text
    );
}

/// A masked client text frame (payload under 126 bytes).
fn masked_text(text: &str) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend(key);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

#[tokio::test]
async fn refusals_match_the_engine_port() {
    let seen = Seen::default();
    let engine = engine_builder(&seen)
        .configure(|c| c.allowed_origins = vec!["https://app.example".into()])
        .start()
        .expect("engine starts");
    let router = Router::new().route("/live", mount::websocket(&engine));
    let app = App::serve(engine, router, true).await;

    // No session cookie: authenticate fails with 4003.
    let mut anonymous = WsClient::connect_with(&app.url("/live"), &[]).await;
    anonymous
        .send_json(json!({ "event": "authenticate", "data": {} }))
        .await;
    anonymous
        .expect_error(ErrorText::AuthenticationFailed)
        .await;
    anonymous.expect_close(CloseReason::AuthFailed).await;
    // An unknown session: the same.
    let stranger = [("Cookie", "session=nobody")];
    let mut stranger = WsClient::connect_with(&app.url("/live"), &stranger).await;
    stranger
        .send_json(json!({ "event": "authenticate", "data": {} }))
        .await;
    stranger.expect_error(ErrorText::AuthenticationFailed).await;
    stranger.expect_close(CloseReason::AuthFailed).await;

    // The HTTP refusals, before any upgrade.
    let upgrade = |origin: Option<&str>| raw::upgrade("/live", origin);
    let status = |request: String| async move {
        let mut conn = RawConn::open(app.addr).await;
        conn.send(request.as_bytes()).await;
        raw::status_of(&conn.read_for(WAIT / 10).await.text)
    };
    assert_eq!(status(upgrade(Some("https://evil.example"))).await, 403);
    assert_eq!(status(upgrade(Some("https://app.example"))).await, 101);
    let old_version = upgrade(None).replace("Version: 13", "Version: 8");
    assert_eq!(status(old_version).await, 426);
    let bad_key = upgrade(None).replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=");
    assert_eq!(status(bad_key).await, 400);
    assert_eq!(status(raw::get("/live", "")).await, 426, "a plain GET");
    let metrics = app.handle.render_metrics();
    assert!(
        metrics.contains("shardcast_origin_refused_total 1"),
        "origin refusals are counted"
    );
}

#[tokio::test]
async fn caps_refuse_with_http_before_the_upgrade_or_1013_after_it() {
    let seen = Seen::default();
    for connect_info in [true, false] {
        let engine = engine_builder(&seen)
            .configure(|c| c.max_connections_per_ip = 1)
            .start()
            .expect("engine starts");
        let router = Router::new().route("/live", mount::websocket(&engine));
        let app = App::serve(engine, router, connect_info).await;
        let cookie = [("Cookie", "session=u-carol")];
        let mut first = WsClient::connect_with(&app.url("/live"), &cookie).await;
        first
            .send_json(json!({ "event": "authenticate", "data": {} }))
            .await;
        first.expect_event("connected").await;
        if connect_info {
            // The peer is known before the 101: the engine port's answer.
            let mut conn = RawConn::open(app.addr).await;
            conn.send(raw::upgrade("/live", None).as_bytes()).await;
            let received = conn.read_for(WAIT / 10).await;
            assert_eq!(raw::status_of(&received.text), 503, "{}", received.text);
            assert!(received.text.contains("Retry-After") || received.text.contains("retry-after"));
        } else {
            // Known only from the socket: a close frame 1013 right after the 101.
            let mut second = WsClient::connect_with(&app.url("/live"), &cookie).await;
            match second.next_within(WAIT).await {
                crate::support::client::Next::Close(code, reason) => {
                    assert_eq!(code, 1013);
                    assert_eq!(reason, "Too many connections");
                }
                other => panic!("expected close 1013, got {other:?}"),
            }
        }
        assert_eq!(app.handle.stats().connections, 1);
        drop(first);
    }
}

#[tokio::test]
async fn endpoints_mount_where_the_application_wants_or_not_at_all() {
    let seen = Seen::default();
    let engine = engine_builder(&seen)
        .api_key("key")
        .configure(|c| {
            c.endpoints = Endpoints {
                metrics: false,
                ..Endpoints::ALL
            }
        })
        .start()
        .expect("engine starts");
    let router = Router::new()
        .route("/live", mount::websocket(&engine))
        .route("/internal/metrics", mount::metrics(&engine))
        .route("/internal/up", mount::health(&engine))
        .merge(mount::endpoints(&engine))
        .nest("/admin", mount::endpoints(&engine));
    let app = App::serve(engine, router, true).await;
    let get = |path: &'static str| http(app.addr, "GET", path, &[], "");

    assert_eq!(get("/health").await, (200, r#"{"status":"ok"}"#.to_owned()));
    assert_eq!(get("/admin/health").await.0, 200);
    assert_eq!(get("/internal/up").await.0, 200);
    assert_eq!(get("/ready").await.0, 200);
    assert_eq!(get("/metrics").await.0, 404, "metrics are off");
    assert_eq!(get("/admin/metrics").await.0, 404, "metrics are off");
    let (status, body) = get("/internal/metrics").await;
    assert_eq!(status, 200, "mounted explicitly");
    assert!(
        body.contains("# TYPE shardcast_connections gauge"),
        "{body}"
    );
    assert_eq!(get("/api/stats").await.0, 200);
    assert_eq!(get("/dashboard").await.0, 200);
    assert_eq!(get("/admin/dashboard").await.0, 200);
    assert_eq!(get("/nothing").await.0, 404);

    // Publishing through the mounted API reaches a mounted socket.
    let cookie = [("Cookie", "session=u-dave")];
    let mut client = WsClient::connect_with(&app.url("/live"), &cookie).await;
    client
        .send_json(json!({ "event": "authenticate", "data": {} }))
        .await;
    client.expect_event("connected").await;
    let publish =
        json!({ "type": "user", "target": "dave", "event": "notice", "data": 7 }).to_string();
    let auth = [
        ("Authorization", "Bearer key"),
        ("Content-Type", "application/json"),
    ];
    let (status, body) = http(app.addr, "POST", "/admin/api/publish", &auth, &publish).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(client.expect_event("notice").await["data"], json!(7));
    let unauthorized = http(app.addr, "POST", "/api/publish", &[], &publish).await;
    assert_eq!(unauthorized.0, 401);
}

#[tokio::test]
async fn endpoints_off_answer_404_on_the_engine_port() {
    let server = crate::support::TestServer::start(crate::support::builder(1).configure(|c| {
        c.endpoints = Endpoints {
            health: false,
            publish: false,
            ..Endpoints::ALL
        }
    }));
    assert_eq!(http(server.addr, "GET", "/health", &[], "").await.0, 404);
    assert_eq!(http(server.addr, "POST", "/health", &[], "").await.0, 404);
    assert_eq!(
        http(server.addr, "POST", "/api/publish", &[], "{}").await.0,
        404
    );
    assert_eq!(http(server.addr, "GET", "/ready", &[], "").await.0, 200);
    assert_eq!(http(server.addr, "GET", "/metrics", &[], "").await.0, 200);
    let none = crate::support::TestServer::start(
        crate::support::builder(1).configure(|c| c.endpoints = Endpoints::NONE),
    );
    for path in ["/health", "/ready", "/metrics", "/api/stats"] {
        assert_eq!(http(none.addr, "GET", path, &[], "").await.0, 404, "{path}");
    }
    // The WebSocket is still served.
    let (mut client, _) = none.login("erin").await;
    client.join(&["public-x"]).await;
}

#[test]
fn tls_needs_the_engines_own_listener() {
    let refused = engine_builder(&Seen::default())
        .tls(shardcast::tls::TlsConfig::new("cert.pem", "key.pem"))
        .start();
    assert!(
        matches!(refused, Err(EngineError::TlsWithoutListener)),
        "{:?}",
        refused.err()
    );
}

#[tokio::test]
async fn shutdown_closes_mounted_clients_with_1001() {
    let seen = Seen::default();
    let mut app = default_app(&seen, true).await;
    let mut client =
        WsClient::connect_with(&app.url("/live"), &[("Cookie", "session=u-fay")]).await;
    client
        .send_json(json!({ "event": "authenticate", "data": {} }))
        .await;
    client.expect_event("connected").await;
    let engine = app.engine.take().expect("engine");
    let stopping = tokio::task::spawn_blocking(move || engine.shutdown());
    client.expect_close(CloseReason::ShuttingDown).await;
    stopping.await.expect("engine stops");
    // The application keeps serving; new upgrades are refused while the engine is down.
    let mut conn = RawConn::open(app.addr).await;
    conn.send(raw::upgrade("/live", None).as_bytes()).await;
    let mut head = [0u8; 12];
    let _ = tokio::time::timeout(WAIT, conn.stream.read_exact(&mut head)).await;
    assert_eq!(&head, b"HTTP/1.1 503", "{}", String::from_utf8_lossy(&head));
    let _ = conn.stream.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_nested_under_a_prefix_in_headless_chromium() {
    let seen = Seen::default();
    let engine = engine_builder(&seen)
        .configure(|c| c.dashboard = shardcast::config::DashboardMode::Public)
        .start()
        .expect("engine starts");
    let router = Router::new()
        .route("/live", mount::websocket(&engine))
        .nest("/admin", mount::endpoints(&engine));
    let app = App::serve(engine, router, true).await;
    let browser = crate::support::cdp::Chromium::launch();
    let mut page = crate::support::cdp::Page::open(&browser).await;
    for path in ["/admin/dashboard", "/admin/dashboard/"] {
        let url = format!("http://{}{path}", app.addr);
        page.call("Page.navigate", json!({ "url": url })).await;
        // Its script, style and data all load from under the prefix: two polls drawn.
        let drawn = "+document.querySelector('#chart-deliveries path.series')?.dataset.points >= 1";
        page.wait_for(drawn, WAIT).await;
        let styled = "getComputedStyle(document.body).backgroundColor === 'rgb(246, 247, 249)'";
        assert_eq!(page.eval(styled).await, json!(true), "{path}");
    }
    let errors = page.errors();
    assert!(
        errors.is_empty(),
        "the page logged errors:\n{}",
        errors.join("\n")
    );
}

/// A rustls server configuration for `cert` (HTTP/1.1 by ALPN), as an application that
/// terminates TLS itself builds one.
fn app_tls_config(cert: &crate::support::tls::ServerCert) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert_path)
        .expect("certificate file")
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(&cert.key_path).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves `router` over TLS the way an application that terminates TLS does it:
/// tokio-rustls, then hyper-util's HTTP/1-or-2 server with upgrades.
async fn serve_tls(
    router: Router,
    config: Arc<rustls::ServerConfig>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let executor = hyper_util::rt::TokioExecutor::new();
                let builder = hyper_util::server::conn::auto::Builder::new(executor);
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = builder.serve_connection_with_upgrades(io, service).await;
            });
        }
    });
    (addr, server)
}

#[tokio::test]
async fn an_application_that_terminates_tls_hands_its_sockets_over_too() {
    let ca = crate::support::tls::TestCa::new();
    let dir = crate::support::tls::tempdir();
    let cert = ca.issue(&dir, "app");
    let seen = Seen::default();
    let engine = engine_builder(&seen)
        .configure(|c| c.max_connections_per_ip = 1)
        .start()
        .expect("engine starts");
    let handle = engine.handle();
    let router = Router::new().route("/live", mount::websocket(&engine));
    let (addr, server) = serve_tls(router, app_tls_config(&cert)).await;
    let url = format!("wss://localhost:{}/live", addr.port());
    let cookie = [("Cookie", "session=u-tina")];

    let tls = ca.connect(addr).await.expect("TLS handshake");
    let mut client = WsClient::over_with(&url, &cookie, Box::new(tls)).await;
    client
        .send_json(json!({ "event": "authenticate", "data": {} }))
        .await;
    let connected = client.expect_event("connected").await;
    assert_eq!(connected["data"]["userId"], "tina");
    let id = connected["data"]["id"].as_str().expect("client id");
    assert!(handle.client_info(id).await.is_some(), "on a shard");
    handle
        .send_to_user("tina", "direct", &json!("over TLS"))
        .expect("send");
    assert_eq!(
        client.expect_event("direct").await["data"],
        json!("over TLS")
    );
    client.join(&["public-tls"]).await;
    wait_members(&handle, "public-tls", 1).await;

    // Without connect-info the caps decide after the upgrade: the close frame goes
    // through TLS.
    let tls = ca.connect(addr).await.expect("TLS handshake");
    let mut second = WsClient::over_with(&url, &cookie, Box::new(tls)).await;
    match second.next_within(WAIT).await {
        crate::support::client::Next::Close(code, _) => assert_eq!(code, 1013),
        other => panic!("expected close 1013, got {other:?}"),
    }
    server.abort();
    drop(client);
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .expect("engine stops");
}

//! A live dashboard in an axum application, with shardcast mounted on the application's
//! own router and port: the page, its script, a login, the WebSocket and a publishing
//! route all share one origin.
//!
//! ```text
//! cargo run --release --example axum_dashboard -- 127.0.0.1:3000
//! ```
//!
//! prints `READY <port>` once listening, then serves:
//!
//! - `GET /`: the dashboard page (a live chart on a canvas; no CDN), `GET /app.js`;
//! - `POST /login` with `{"user":"name"}`: a session cookie (`session`, HttpOnly);
//! - `GET /ws`: the WebSocket (Ignis protocol). `authenticate` succeeds, with the
//!   logged-in user as `userId`, only when the upgrade request carried a session cookie
//!   this application issued; otherwise the socket is closed with 4003;
//! - `POST /announce` with `{"text":"..."}` (logged in): an `announcement` to the room
//!   `dashboard` through the engine's `Handle`;
//! - `/health`, `/ready`, `/metrics`: the engine's built-in endpoints.
//!
//! Every authenticated client is in the room `dashboard` (a default room here), and the
//! application pushes a `sample` event to it four times a second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use shardcast::hooks::Identity;
use shardcast::hooks::upgrade::cookie_in;
use shardcast::{Engine, Handle};

/// The session cookie's name.
const SESSION: &str = "session";
/// The room every authenticated client is in.
const ROOM: &str = "dashboard";
/// How often a `sample` is pushed.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Logged-in sessions: cookie value → user name.
#[derive(Clone, Default)]
struct Sessions(Arc<Mutex<HashMap<String, String>>>);

impl Sessions {
    /// The user of a session cookie value.
    fn user(&self, token: &str) -> Option<String> {
        let sessions = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.get(token).cloned()
    }

    /// A new session for `user`; its cookie value.
    fn open(&self, user: &str) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut sessions = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.insert(token.clone(), user.to_owned());
        token
    }
}

/// What the routes share.
#[derive(Clone)]
struct App {
    handle: Handle,
    sessions: Sessions,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned())
        .parse()
        .map_err(|e| format!("the argument must be an address such as 127.0.0.1:3000: {e}"))?;
    let sessions = Sessions::default();
    let engine = engine(sessions.clone())?;
    let app = App {
        handle: engine.handle(),
        sessions,
    };
    tokio::spawn(push_samples(app.handle.clone()));

    let router = Router::new()
        .route(
            "/",
            get(|| async { Html(include_str!("assets/dashboard.html")) }),
        )
        .route("/app.js", get(script))
        .route("/login", post(login))
        .route("/announce", post(announce))
        .route("/ws", shardcast::mount::websocket(&engine))
        .merge(shardcast::mount::endpoints(&engine))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("READY {}", listener.local_addr()?.port());
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    tokio::task::spawn_blocking(move || engine.shutdown()).await?;
    Ok(())
}

/// The engine: no listener of its own; sockets authenticate by the session cookie of
/// their upgrade request.
fn engine(sessions: Sessions) -> Result<Engine, shardcast::EngineError> {
    Engine::builder()
        .without_listener()
        .configure(|c| c.default_rooms.push(ROOM.to_owned()))
        .authenticate(move |request| {
            let cookie = request.upgrade.cookie(SESSION);
            let user = cookie.and_then(|token| sessions.user(token));
            async move {
                Ok(user.map(|user| Identity {
                    user_id: Some(user),
                    ..Default::default()
                }))
            }
        })
        .start()
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/dashboard.js"),
    )
}

/// `POST /login {"user": name}`: a session cookie for a name of 1 to 32 letters, digits,
/// `-`, `_` or `.`.
async fn login(State(app): State<App>, Json(body): Json<Value>) -> Response {
    let user = body["user"].as_str().unwrap_or_default();
    let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if user.is_empty() || user.len() > 32 || !user.chars().all(valid) {
        let error = json!({ "error": "user must be 1 to 32 letters, digits, '-', '_' or '.'" });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let token = app.sessions.open(user);
    let cookie = format!("{SESSION}={token}; Path=/; HttpOnly; SameSite=Strict");
    (
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "user": user })),
    )
        .into_response()
}

/// `POST /announce {"text": ...}` (logged in): an `announcement` to the room.
async fn announce(State(app): State<App>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let Some(user) = session_user(&app.sessions, &headers) else {
        let error = json!({ "error": "log in first (POST /login)" });
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    };
    let text = body["text"].as_str().unwrap_or_default();
    if text.is_empty() || text.len() > 500 {
        let error = json!({ "error": "text must be 1 to 500 bytes" });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let announcement = json!({ "text": text, "from": user });
    match app
        .handle
        .send_to_room(ROOM, "announcement", &announcement, &[])
    {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "sent": true }))).into_response(),
        Err(err) => {
            let error = json!({ "error": err.to_string() });
            (StatusCode::SERVICE_UNAVAILABLE, Json(error)).into_response()
        }
    }
}

/// The user of the request's session cookie.
fn session_user(sessions: &Sessions, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get_all(header::COOKIE).iter();
    let cookies = cookies.filter_map(|value| value.to_str().ok());
    cookie_in(cookies, SESSION).and_then(|token| sessions.user(token))
}

/// Pushes a `sample` to the room every [`SAMPLE_EVERY`]: a smooth signal (two sines and
/// a drift) and how many clients the engine holds.
async fn push_samples(handle: Handle) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for n in 0u64.. {
        tick.tick().await;
        let t = n as f64 * SAMPLE_EVERY.as_secs_f64();
        let value = 50.0 + 30.0 * (t / 3.0).sin() + 10.0 * (t * 1.7).sin() + (t / 40.0).cos();
        let sample = json!({
            "seq": n,
            "at": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()),
            "value": (value * 100.0).round() / 100.0,
            "clients": handle.stats().connections,
        });
        if handle.send_to_room(ROOM, "sample", &sample, &[]).is_err() {
            return; // the engine stopped
        }
    }
}

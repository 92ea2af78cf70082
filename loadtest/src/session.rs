//! Establishing one authenticated connection, shared by every scenario: TCP connect from
//! the client's source address, HTTP upgrade, `authenticate`, then wait for `connected`.
//!
//! Messages that arrive in the same read as `connected` are counted as `early` and
//! dropped (nothing a scenario measures is sent before its clients are ready).

use crate::nodes::Nodes;
use crate::stats::Failures;
use crate::target::SourceAddrs;
use crate::token::TokenSource;
use crate::ws::{ConnOptions, ReadStatus, TlsClient, WsConn, WsError};
use serde::Deserialize;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How to reach and authenticate against the server.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The WebSocket endpoints (one unless `fanout --node`) and which client goes where.
    pub nodes: Nodes,
    /// Source addresses, round-robin by client index.
    pub sources: SourceAddrs,
    /// Token per client.
    pub token: TokenSource,
    /// Limit for TCP connect + upgrade.
    pub connect_timeout: Duration,
    /// Limit for `authenticate` → `connected`.
    pub auth_timeout: Duration,
    /// TLS for `wss://` targets.
    pub tls: Option<TlsClient>,
    /// The permessage-deflate offer (`--compression`) and the run's wire meter.
    pub conn: ConnOptions,
}

/// An authenticated connection and how long it took.
pub struct Established {
    /// The connection, ready for the scenario.
    pub conn: WsConn,
    /// TCP connect + upgrade, µs.
    pub connect_us: u64,
    /// `authenticate` sent → `connected` received, µs.
    pub auth_us: u64,
    /// The server's `Server` header, if it sent one.
    pub server_header: Option<String>,
    /// Messages that arrived right after `connected` and were dropped.
    pub early: u64,
}

/// Why a connection could not be established.
#[derive(Debug, Error)]
pub enum SessionError {
    /// TCP connect or upgrade failed.
    #[error(transparent)]
    Ws(WsError),
    /// Connect + upgrade took longer than the connect timeout.
    #[error("connect + upgrade timed out")]
    ConnectTimeout,
    /// The server answered `authenticate` with an `error` event.
    #[error("authentication rejected: {0}")]
    AuthRejected(String),
    /// No `connected` before the auth timeout.
    #[error("no `connected` within the auth timeout")]
    AuthTimeout,
    /// The server closed the connection while we waited for `connected`.
    #[error("closed during authentication (code {0:?})")]
    ClosedDuringAuth(Option<u16>),
    /// Read/write/protocol error while authenticating.
    #[error("during authentication: {0}")]
    AuthIo(WsError),
}

impl SessionError {
    /// Counts this error in the matching [`Failures`] field and keeps its text.
    pub fn record(&self, f: &mut Failures) {
        let field = match self {
            SessionError::Ws(WsError::Connect(_)) => &mut f.connect,
            SessionError::Ws(_) => &mut f.upgrade,
            SessionError::ConnectTimeout => &mut f.connect_timeout,
            SessionError::AuthRejected(_) => &mut f.auth_rejected,
            SessionError::AuthTimeout => &mut f.auth_timeout,
            SessionError::ClosedDuringAuth(_) => &mut f.closed_during_auth,
            SessionError::AuthIo(_) => &mut f.io,
        };
        *field += 1;
        f.sample(self.to_string());
    }
}

/// Connects client `i` to its node, upgrades and authenticates.
pub async fn establish(cfg: &SessionConfig, i: u64) -> Result<Established, SessionError> {
    let t0 = Instant::now();
    let t = cfg.nodes.target_for(i);
    let tls = cfg.tls.as_ref();
    let connect = WsConn::connect(
        t.addr,
        cfg.sources.pick(i),
        tls,
        &t.host,
        &t.path,
        &cfg.conn,
    );
    let (mut conn, up) = match tokio::time::timeout(cfg.connect_timeout, connect).await {
        Ok(r) => r.map_err(SessionError::Ws)?,
        Err(_) => return Err(SessionError::ConnectTimeout),
    };
    let connect_us = t0.elapsed().as_micros() as u64;
    let t1 = Instant::now();
    let early = match tokio::time::timeout(
        cfg.auth_timeout,
        authenticate(&mut conn, &cfg.token.token_for(i)),
    )
    .await
    {
        Ok(r) => r?,
        Err(_) => return Err(SessionError::AuthTimeout),
    };
    let auth_us = t1.elapsed().as_micros() as u64;
    Ok(Established {
        conn,
        connect_us,
        auth_us,
        server_header: up.server,
        early,
    })
}

/// The `authenticate` message for `token`.
pub fn authenticate_message(token: &str) -> String {
    serde_json::json!({"event": "authenticate", "data": {"token": token}}).to_string()
}

#[derive(Deserialize)]
struct Incoming {
    event: String,
    #[serde(default)]
    data: serde_json::Value,
}

enum AuthState {
    Waiting,
    Connected,
    Rejected(String),
}

/// Sends `authenticate` and waits for `connected`; returns the count of early messages.
async fn authenticate(conn: &mut WsConn, token: &str) -> Result<u64, SessionError> {
    conn.send_text(authenticate_message(token).as_bytes())
        .await
        .map_err(|e| SessionError::AuthIo(e.into()))?;
    let mut state = AuthState::Waiting;
    let mut early = 0u64;
    loop {
        let mut on_msg = |m: &[u8], _: u64| on_auth_message(m, &mut state, &mut early);
        let drained = conn.drain(&mut on_msg).map_err(SessionError::AuthIo)?;
        conn.flush_control()
            .await
            .map_err(|e| SessionError::AuthIo(e.into()))?;
        match std::mem::replace(&mut state, AuthState::Waiting) {
            AuthState::Connected => return Ok(early),
            AuthState::Rejected(msg) => return Err(SessionError::AuthRejected(msg)),
            AuthState::Waiting => {}
        }
        match drained.status {
            ReadStatus::Closed(code) => return Err(SessionError::ClosedDuringAuth(code)),
            ReadStatus::Eof => return Err(SessionError::ClosedDuringAuth(None)),
            ReadStatus::Open => conn
                .readable()
                .await
                .map_err(|e| SessionError::AuthIo(e.into()))?,
        }
    }
}

fn on_auth_message(m: &[u8], state: &mut AuthState, early: &mut u64) {
    if matches!(state, AuthState::Connected) {
        *early += 1;
        return;
    }
    let Ok(msg) = serde_json::from_slice::<Incoming>(m) else {
        return;
    };
    match msg.event.as_str() {
        "connected" => *state = AuthState::Connected,
        "error" => {
            let text = msg
                .data
                .get("message")
                .and_then(|v| v.as_str())
                .unwrap_or("error")
                .to_string();
            *state = AuthState::Rejected(text);
        }
        _ => {}
    }
}

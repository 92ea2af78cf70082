//! One accepted TCP connection's HTTP/1.1: requests answered in turn (keep-alive,
//! pipelining) until the peer leaves, a response says `Connection: close`, an error ends
//! it, or a GET upgrade on the WebSocket path hands the socket back as [`Upgraded`].
//!
//! # Contract
//!
//! - Each request's body framing ([`request::body_length`]) is decided before anything
//!   else, and its body is read whatever the answer, so the next request starts exactly
//!   where this one ends.
//! - A request that cannot be read is answered once with `Connection: close` (400, 408,
//!   413, 431; see [`RequestError`]) and the connection is closed; an idle connection
//!   (no byte of a new request) and a failed write are closed without an answer.
//! - An upgrade is checked in this order: no body, not shutting down (503), `Origin` in
//!   the allow-list when one is configured (403, counted in `origin_refused`), a valid
//!   handshake (400, 426). Only then is `101` written; every refusal closes.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::HttpService;
use super::io::HttpStream;
use super::request::{self, RequestError, RequestHead};
use super::response::Response;
use crate::admission::{CAPACITY_RETRY, Permit, Refusal};
use crate::hooks::UpgradeInfo;
use crate::metrics::HttpRoute;
use crate::rooms::glob::RoomPolicy;
use crate::ws::extension::{self, PerMessageDeflate};
use crate::ws::handshake::{self, HandshakeError, UpgradeRequest};

/// A socket that completed the WebSocket handshake (`101` written).
pub(crate) struct Upgraded<S = TcpStream> {
    /// The socket, now speaking WebSocket.
    pub stream: S,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Bytes that arrived after the request head (the client's first frames, if any).
    pub leftover: Vec<u8>,
    /// The connection's place under the connection caps, held for its whole life.
    pub permit: Permit,
    /// What the upgrade request said, for the authenticator.
    pub info: Box<UpgradeInfo>,
    /// permessage-deflate, when it was agreed.
    pub deflate: Option<PerMessageDeflate>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Upgraded<S> {
    /// The socket of `conn`, which has just written `101` for `head`, holding `permit`.
    fn new(
        conn: HttpStream<S>,
        peer: SocketAddr,
        permit: Permit,
        (head, deflate): (RequestHead, Option<PerMessageDeflate>),
    ) -> Self {
        let (stream, leftover) = conn.into_parts();
        Upgraded {
            stream,
            peer,
            leftover,
            permit,
            info: Box::new(upgrade_info(head, peer)),
            deflate,
        }
    }
}

/// An upgrade that passed every check: what the `101` says.
#[derive(Debug)]
pub(crate) struct Acceptance {
    /// The `Sec-WebSocket-Accept` value.
    pub key: String,
    /// permessage-deflate, when the engine has compression on and the client offered
    /// it acceptably.
    pub deflate: Option<PerMessageDeflate>,
}

impl Acceptance {
    /// The `Sec-WebSocket-Extensions` value of the `101`, if any.
    pub fn extensions(&self) -> Option<String> {
        self.deflate.map(|agreed| agreed.response())
    }
}

/// The facts of an upgrade request the authenticator sees.
pub(crate) fn upgrade_info(head: RequestHead, peer: SocketAddr) -> UpgradeInfo {
    UpgradeInfo {
        peer,
        path: head.path,
        query: head.query,
        headers: head.headers,
    }
}

/// What follows an answered request.
enum Next {
    /// Read the next request.
    KeepAlive,
    /// The response said `Connection: close`.
    Close,
    /// The request is an upgrade of the WebSocket path.
    Upgrade,
}

/// Serves `stream` until it upgrades (returned) or ends.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    service: &HttpService,
) -> Option<Upgraded<S>> {
    let mut conn = HttpStream::new(stream, service.request_timeout);
    loop {
        let head = match conn.read_head().await {
            Ok(head) => head,
            Err(err) => return fail(conn, &err, false, service).await,
        };
        match exchange(&mut conn, &head, service).await {
            Ok(Next::KeepAlive) => {}
            Ok(Next::Close) => return close(conn).await,
            Ok(Next::Upgrade) => return upgrade(conn, peer, head, service).await,
            Err(err) => return fail(conn, &err, head.is_head(), service).await,
        }
    }
}

/// Reads the body of `head` and answers it, unless it is an upgrade.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut HttpStream<S>,
    head: &RequestHead,
    service: &HttpService,
) -> Result<Next, RequestError> {
    let len = request::body_length(head)?;
    if is_upgrade(head, service) {
        return bodiless_upgrade(len);
    }
    let body = conn.read_body(len).await?;
    let response = super::api::route(service, &service.endpoints, head, &body).await;
    let keep_alive = head.keep_alive() && !service.handle.is_shutting_down();
    conn.send(&response.encode(keep_alive, head.is_head()))
        .await?;
    Ok(if keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    })
}

/// An upgrade request carries no body: its bytes after the head are WebSocket frames.
fn bodiless_upgrade(len: usize) -> Result<Next, RequestError> {
    match len {
        0 => Ok(Next::Upgrade),
        _ => Err(RequestError::Malformed(
            "an upgrade request carries no body",
        )),
    }
}

/// Ends after a response that said `Connection: close`.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(conn: HttpStream<S>) -> Option<Upgraded<S>> {
    conn.close().await;
    None
}

/// Whether `head` is a WebSocket upgrade of the WebSocket path (only GET upgrades).
fn is_upgrade(head: &RequestHead, service: &HttpService) -> bool {
    head.method == "GET" && head.path == service.path && head.is_websocket_upgrade()
}

/// Answers a request that could not be read (when an answer makes sense, counted as
/// route `invalid`) and ends.
async fn fail<S: AsyncRead + AsyncWrite + Unpin>(
    conn: HttpStream<S>,
    err: &RequestError,
    head_request: bool,
    service: &HttpService,
) -> Option<Upgraded<S>> {
    if let Some(response) = error_response(err) {
        let metrics = service.handle.metrics();
        metrics.http.record(HttpRoute::Invalid, response.status);
        answer_and_close(conn, &response, head_request).await;
    }
    None
}

/// The answer to a request that could not be read; `None`: close without one.
fn error_response(err: &RequestError) -> Option<Response> {
    match err {
        RequestError::Closed | RequestError::Idle | RequestError::Io(_) => None,
        RequestError::Timeout => Some(Response::error(408, "Request Timeout")),
        RequestError::HeadTooLarge => Some(Response::error(431, "Request Header Fields Too Large")),
        RequestError::BodyTooLarge => Some(Response::error(413, "Payload Too Large")),
        RequestError::Malformed(why) => Some(Response::error(400, why)),
    }
}

/// Writes a final response (`Connection: close`) and closes gracefully; a peer that does
/// not take it in time is dropped.
async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: HttpStream<S>,
    response: &Response,
    head_request: bool,
) {
    if conn
        .send(&response.encode(false, head_request))
        .await
        .is_ok()
    {
        conn.close().await;
    }
}

/// Completes the handshake, or refuses it and closes.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: HttpStream<S>,
    peer: SocketAddr,
    head: RequestHead,
    service: &HttpService,
) -> Option<Upgraded<S>> {
    let checked = check_upgrade(&head, service).and_then(|ok| Ok((ok, admit(service, peer)?)));
    match checked {
        Ok((acceptance, permit)) => {
            service
                .handle
                .metrics()
                .http
                .record(HttpRoute::Upgrade, 101);
            let extensions = acceptance.extensions();
            conn.send(&handshake::switching_protocols(
                &acceptance.key,
                extensions.as_deref(),
            ))
            .await
            .ok()?;
            Some(Upgraded::new(
                conn,
                peer,
                permit,
                (head, acceptance.deflate),
            ))
        }
        Err(response) => {
            answer_and_close(conn, &refused(service, response), false).await;
            None
        }
    }
}

/// Counts a refused upgrade (by its status) and hands the refusal back.
pub(crate) fn refused(service: &HttpService, response: Response) -> Response {
    let metrics = service.handle.metrics();
    metrics.upgrades_refused.inc();
    metrics.http.record(HttpRoute::Upgrade, response.status);
    response
}

/// What the `101` of an acceptable upgrade says (with permessage-deflate when it is on
/// and offered), or the refusal: 503 while shutting down, 403 for an `Origin` outside
/// the allow-list, 400 or 426 for a bad handshake. The caller counts a refusal
/// ([`refused`]).
pub(crate) fn check_upgrade(
    head: &RequestHead,
    service: &HttpService,
) -> Result<Acceptance, Response> {
    if service.handle.is_shutting_down() {
        return Err(Response::error(503, "Shutting down"));
    }
    if !origin_allowed(head, service.origins.as_ref()) {
        service.handle.metrics().origin_refused.inc();
        return Err(Response::error(403, "Origin not allowed"));
    }
    let key = handshake::accept_key(&upgrade_request(head)).map_err(refusal)?;
    let deflate = match service.compression {
        true => extension::negotiate(head.headers_named("sec-websocket-extensions")),
        false => None,
    };
    Ok(Acceptance { key, deflate })
}

/// A place under the connection caps, or the answer that refuses it (503 at a cap, 429
/// for an address that failed authentication too often), counted.
pub(crate) fn admit(service: &HttpService, peer: SocketAddr) -> Result<Permit, Response> {
    let refusal = match service.admission.admit(peer.ip(), Instant::now()) {
        Ok(permit) => return Ok(permit),
        Err(refusal) => refusal,
    };
    let metrics = service.handle.metrics();
    let (status, message, retry) = match refusal {
        Refusal::Full | Refusal::AddressFull => {
            metrics.connections_refused.inc();
            (503, "Too many connections", CAPACITY_RETRY)
        }
        Refusal::Throttled(left) => {
            metrics.auth_throttled.inc();
            (429, "Too many failed authentications", left)
        }
    };
    let retry_after = retry.as_secs().max(1).to_string();
    Err(Response::error(status, message).with_header("Retry-After", retry_after))
}

/// Whether every `Origin` header matches the allow-list. No allow-list, or no `Origin`
/// header (a non-browser client), passes.
fn origin_allowed(head: &RequestHead, origins: Option<&RoomPolicy>) -> bool {
    let Some(policy) = origins else {
        return true;
    };
    head.headers_named("origin")
        .all(|origin| policy.allows(origin.trim(), None))
}

/// The header values the handshake checks.
fn upgrade_request(head: &RequestHead) -> UpgradeRequest<'_> {
    UpgradeRequest {
        method: &head.method,
        connection_upgrade: head.header_has_token("connection", "upgrade"),
        version: head.header("sec-websocket-version"),
        key: head.header("sec-websocket-key"),
    }
}

/// The answer to a refused handshake: 426 with the supported version, else 400.
fn refusal(err: HandshakeError) -> Response {
    match err {
        HandshakeError::UnsupportedVersion => {
            Response::error(426, &err.to_string()).with_header("Sec-WebSocket-Version", "13")
        }
        _ => Response::error(400, &err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_with_origins(origins: &[&str]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: "/ws".into(),
            query: None,
            minor_version: 1,
            headers: origins
                .iter()
                .map(|o| ("origin".to_owned(), (*o).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn origin_allow_list() {
        let policy = RoomPolicy::new(&["https://*.example.com", "http://localhost:?*"]).unwrap();
        let allowed = |origins: &[&str]| origin_allowed(&head_with_origins(origins), Some(&policy));
        assert!(allowed(&["https://app.example.com"]));
        assert!(allowed(&["http://localhost:3000"]));
        assert!(allowed(&[]), "no Origin: a non-browser client passes");
        assert!(!allowed(&["https://evil.com"]));
        assert!(!allowed(&["https://example.com"]));
        assert!(!allowed(&["null"]));
        assert!(!allowed(&["https://app.example.com", "https://evil.com"]));
        assert!(origin_allowed(
            &head_with_origins(&["https://evil.com"]),
            None
        ));
    }
}

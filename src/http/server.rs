//! One accepted TCP connection's HTTP/1.1: requests answered in turn (keep-alive) until
//! the peer leaves, an error ends it, or a valid WebSocket upgrade on the WebSocket path
//! hands the socket back as [`Upgraded`].

use std::net::SocketAddr;

use std::time::Instant;

use tokio::net::TcpStream;

use super::HttpService;
use super::request::{self, RequestError, RequestHead};
use super::response::Response;
use crate::admission::{CAPACITY_RETRY, Permit, Refusal};
use crate::ws::handshake::{self, HandshakeError, UpgradeRequest};

/// A socket that completed the WebSocket handshake (`101` written).
pub(crate) struct Upgraded {
    /// The socket, now speaking WebSocket.
    pub stream: TcpStream,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Bytes that arrived after the request head (the client's first frames, if any).
    pub leftover: Vec<u8>,
    /// The connection's place under the connection caps, held for its whole life.
    pub permit: Permit,
}

/// Serves `stream` until it upgrades (returned) or ends.
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    service: &HttpService,
) -> Option<Upgraded> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let head = match request::read_head(&mut stream, &mut buf, service.request_timeout).await {
            Ok(head) => head,
            Err(err) => return fail(&mut stream, &err).await,
        };
        if head.path == service.path && head.is_websocket_upgrade() {
            let leftover = std::mem::take(&mut buf);
            return upgrade(stream, peer, &head, leftover, service).await;
        }
        let response = match answer(&mut stream, &head, &mut buf, service).await {
            Ok(response) => response,
            Err(err) => return fail(&mut stream, &err).await,
        };
        let keep_alive = head.keep_alive() && !service.handle.is_shutting_down();
        if response.write(&mut stream, keep_alive).await.is_err() || !keep_alive {
            return None;
        }
    }
}

/// The answer to a request that is not an upgrade of the WebSocket path.
async fn answer(
    stream: &mut TcpStream,
    head: &RequestHead,
    buf: &mut Vec<u8>,
    service: &HttpService,
) -> Result<Response, RequestError> {
    if head.path == service.path {
        return Ok(Response::error(426, "Upgrade Required").with_header("Upgrade", "websocket"));
    }
    if head.is_websocket_upgrade() {
        return Ok(Response::error(404, "Not Found"));
    }
    let body = request::read_body(stream, head, buf, service.request_timeout).await?;
    service.handle.metrics().http_requests.inc();
    Ok(super::api::route(service, head, &body).await)
}

/// Answers a request that could not be read (when an answer makes sense) and ends.
async fn fail(stream: &mut TcpStream, err: &RequestError) -> Option<Upgraded> {
    if let Some(response) = error_response(err) {
        let _ = response.write(stream, false).await;
    }
    None
}

fn error_response(err: &RequestError) -> Option<Response> {
    match err {
        RequestError::Closed | RequestError::Io(_) => None,
        RequestError::Timeout => Some(Response::error(408, "Request Timeout")),
        RequestError::HeadTooLarge => Some(Response::error(431, "Request Header Fields Too Large")),
        RequestError::BodyTooLarge => Some(Response::error(413, "Payload Too Large")),
        RequestError::Malformed(why) => Some(Response::error(400, why)),
    }
}

/// Completes the handshake (or refuses it: 503 while shutting down, 400, 426).
async fn upgrade(
    mut stream: TcpStream,
    peer: SocketAddr,
    head: &RequestHead,
    leftover: Vec<u8>,
    service: &HttpService,
) -> Option<Upgraded> {
    let accepted = match service.handle.is_shutting_down() {
        true => Err(Response::error(503, "Shutting down")),
        false => admit(service, peer).and_then(|permit| {
            let switching = handshake::accept(&upgrade_request(head)).map_err(refusal)?;
            Ok((switching, permit))
        }),
    };
    match accepted {
        Ok((switching, permit)) => {
            let written = tokio::io::AsyncWriteExt::write_all(&mut stream, &switching).await;
            let upgraded = Upgraded {
                stream,
                peer,
                leftover,
                permit,
            };
            written.ok().map(|()| upgraded)
        }
        Err(response) => {
            service.handle.metrics().upgrades_refused.inc();
            let _ = response.write(&mut stream, false).await;
            None
        }
    }
}

/// A place under the connection caps, or the answer that refuses it (503 at a cap, 429
/// for an address that failed authentication too often), counted.
fn admit(service: &HttpService, peer: SocketAddr) -> Result<Permit, Response> {
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

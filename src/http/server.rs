//! One accepted TCP connection's HTTP/1.1: requests answered in turn (keep-alive) until
//! the peer leaves, an error ends it, or a valid WebSocket upgrade on the WebSocket path
//! hands the socket back as [`Upgraded`].

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::HttpService;
use super::request::{self, RequestError, RequestHead};
use super::response::Response;
use crate::ws::handshake::{self, HandshakeError, UpgradeRequest};

/// A socket that completed the WebSocket handshake (`101` written).
pub(crate) struct Upgraded<S = TcpStream> {
    /// The socket, now speaking WebSocket.
    pub stream: S,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Bytes that arrived after the request head (the client's first frames, if any).
    pub leftover: Vec<u8>,
}

/// Serves `stream` until it upgrades (returned) or ends.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    service: &HttpService,
) -> Option<Upgraded<S>> {
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
async fn answer<S: AsyncRead + Unpin>(
    stream: &mut S,
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
async fn fail<S: AsyncWrite + Unpin>(stream: &mut S, err: &RequestError) -> Option<Upgraded<S>> {
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
async fn upgrade<S: AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    head: &RequestHead,
    leftover: Vec<u8>,
    service: &HttpService,
) -> Option<Upgraded<S>> {
    let accepted = match service.handle.is_shutting_down() {
        true => Err(Response::error(503, "Shutting down")),
        false => handshake::accept(&upgrade_request(head)).map_err(refusal),
    };
    match accepted {
        Ok(switching) => {
            let written = tokio::io::AsyncWriteExt::write_all(&mut stream, &switching).await;
            written.ok().map(|()| Upgraded {
                stream,
                peer,
                leftover,
            })
        }
        Err(response) => {
            service.handle.metrics().upgrades_refused.inc();
            let _ = response.write(&mut stream, false).await;
            None
        }
    }
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

//! The acceptor, run by every shard on the one shared listening socket: accepts TCP
//! connections, reads the request head (bounded in time and size), answers plain HTTP
//! itself, and keeps upgraded sockets.
//!
//! A shard that accepts an upgrade gives the connection an id that hashes to itself
//! ([`Shard::fresh_client_id`]), so placement stays `hash(client_id) % shards` while the
//! socket never changes thread or reactor. Which shard accepts is up to the kernel (the
//! least busy one tends to win the race), which spreads connections by load.

use std::net::SocketAddr;
use std::rc::Rc;

use tokio::net::{TcpListener, TcpStream};

use super::request::{self, RequestError, RequestHead};
use super::response::Response;
use crate::shard::state::Shard;
use crate::ws::handshake::{self, HandshakeError};

/// Accepts until the task is aborted (the shard stops accepting at shutdown).
pub(crate) async fn accept_loop(listener: TcpListener, shard: Rc<Shard>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::task::spawn_local(serve_connection(stream, peer, shard.clone()));
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(shard = %shard.id, "accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, shard: Rc<Shard>) {
    let _ = stream.set_nodelay(true);
    let engine = shard.engine.clone();
    let handle = shard.handle.clone();
    let timeout = engine.config.request_timeout;
    let mut buf = Vec::new();
    loop {
        let head = match request::read_head(&mut stream, &mut buf, timeout).await {
            Ok(head) => head,
            Err(err) => {
                if let Some(response) = error_response(&err) {
                    let _ = response.write(&mut stream, false).await;
                }
                return;
            }
        };
        if head.path == engine.config.path && head.is_websocket_upgrade() {
            upgrade(stream, peer, head, buf, &shard).await;
            return;
        }
        let response = if head.path == engine.config.path {
            Response::error(426, "Upgrade Required").with_header("Upgrade", "websocket")
        } else if head.is_websocket_upgrade() {
            Response::error(404, "Not Found")
        } else {
            let body = match request::read_body(&mut stream, &head, &mut buf, timeout).await {
                Ok(body) => body,
                Err(err) => {
                    if let Some(response) = error_response(&err) {
                        let _ = response.write(&mut stream, false).await;
                    }
                    return;
                }
            };
            engine.metrics.http_requests.inc();
            super::api::route(&handle, engine.http.api_key.as_deref(), &head, &body).await
        };
        let keep_alive = head.keep_alive() && !engine.is_shutting_down();
        if response.write(&mut stream, keep_alive).await.is_err() || !keep_alive {
            return;
        }
    }
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

async fn upgrade(
    mut stream: TcpStream,
    peer: SocketAddr,
    head: RequestHead,
    leftover: Vec<u8>,
    shard: &Rc<Shard>,
) {
    let engine = &shard.engine;
    if engine.is_shutting_down() {
        engine.metrics.upgrades_refused.inc();
        let _ = Response::error(503, "Shutting down")
            .write(&mut stream, false)
            .await;
        return;
    }
    let accept = match handshake::accept(&head) {
        Ok(accept) => accept,
        Err(err) => {
            engine.metrics.upgrades_refused.inc();
            let response = match err {
                HandshakeError::UnsupportedVersion => Response::error(426, &err.to_string())
                    .with_header("Sec-WebSocket-Version", "13"),
                _ => Response::error(400, &err.to_string()),
            };
            let _ = response.write(&mut stream, false).await;
            return;
        }
    };
    if tokio::io::AsyncWriteExt::write_all(&mut stream, &accept)
        .await
        .is_err()
    {
        return;
    }
    let client_id = shard.fresh_client_id();
    crate::conn::task::adopt(shard, stream, client_id, peer, leftover);
}

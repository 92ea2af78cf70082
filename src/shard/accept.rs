//! The acceptor, run by every shard on the one shared listening socket: accepts TCP
//! connections, runs the TLS handshake when the engine serves TLS, lets [`crate::http`]
//! serve each one, and adopts those that upgrade.
//!
//! A shard that accepts an upgrade gives the connection an id that hashes to itself
//! ([`Shard::fresh_client_id`]), so placement stays `hash(client_id) % shards` while the
//! socket never changes thread or reactor. Which shard accepts is up to the kernel (the
//! least busy one tends to win the race), which spreads connections by load.
//!
//! With TLS every connection on the port is TLS: the handshake runs here, on the accepting
//! shard, bounded by the request timeout; a client that does not speak TLS is closed. After
//! the upgrade the rustls connection is split off its stream ([`Socket::tls`]); plaintext
//! it already decrypted that HTTP did not read joins the connection's leftover bytes, and
//! the shard drives it like any socket. A connection that ends without upgrading gets
//! `close_notify`.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::socket::Socket;
use super::state::Shard;
use super::task;
use crate::http::{HttpService, Upgraded};

/// How long the acceptor pauses after a failed accept (EMFILE and friends).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// How long a TLS connection that ends without upgrading may take its `close_notify`.
const TLS_CLOSE: Duration = Duration::from_secs(1);

/// How often a failing accept is logged (each failure is counted).
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Accepts until the task is aborted (the shard stops accepting at shutdown).
///
/// A failed accept (out of file descriptors, most often) pauses the acceptor for
/// [`ACCEPT_BACKOFF`] instead of spinning, is counted in `shardcast_accept_errors_total`
/// and logged at most once per [`ACCEPT_LOG_EVERY`]; established connections are served
/// meanwhile.
pub(crate) async fn accept_loop(listener: TcpListener, shard: Rc<Shard>) {
    let mut logged: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::task::spawn_local(serve(shard.clone(), stream, peer));
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => {
                shard.metrics.accept_errors.inc();
                log_accept_error(&shard, &err, &mut logged);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Logs a failed accept unless one was logged within [`ACCEPT_LOG_EVERY`].
fn log_accept_error(shard: &Shard, err: &std::io::Error, logged: &mut Option<Instant>) {
    let now = Instant::now();
    if logged.is_none_or(|at| now.duration_since(at) >= ACCEPT_LOG_EVERY) {
        let failures = shard.metrics.accept_errors.get();
        tracing::warn!(shard = %shard.id, failures, "accept failed: {err}; backing off");
        *logged = Some(now);
    }
}

/// Serves one accepted connection's HTTP (over TLS when configured); adopts it if it
/// upgrades.
async fn serve(shard: Rc<Shard>, stream: TcpStream, peer: SocketAddr) {
    let accepted_at = crate::metrics::stamp_now();
    let _ = stream.set_nodelay(true);
    let http = shard.ctx.http.clone();
    let upgraded = match shard.ctx.tls.clone() {
        None => crate::http::serve(stream, peer, &http).await.map(plain),
        // Boxed: the handshake's state would otherwise widen every plain connection's
        // accept task too.
        Some(tls) => Box::pin(serve_tls(stream, peer, &http, tls)).await,
    };
    if let Some(upgraded) = upgraded {
        let id = shard.fresh_client_id();
        task::adopt(&shard, upgraded, id, accepted_at);
    }
}

fn plain(upgraded: Upgraded) -> Upgraded<Socket> {
    Upgraded {
        stream: Socket::Plain(upgraded.stream),
        peer: upgraded.peer,
        leftover: upgraded.leftover,
        permit: upgraded.permit,
        info: upgraded.info,
        deflate: upgraded.deflate,
    }
}

/// The TLS handshake (bounded), then HTTP over it; an upgraded connection comes back
/// split into its TCP stream and rustls state.
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    http: &HttpService,
    tls: Arc<rustls::ServerConfig>,
) -> Option<Upgraded<Socket>> {
    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
    let mut stream = match tokio::time::timeout(http.request_timeout, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return handshake_failed(peer, &err.to_string()),
        Err(_) => return handshake_failed(peer, "timed out"),
    };
    let served = crate::http::serve(&mut stream, peer, http).await;
    let Some(Upgraded {
        peer,
        leftover,
        permit,
        info,
        deflate,
        ..
    }) = served
    else {
        let _ = tokio::time::timeout(TLS_CLOSE, stream.shutdown()).await;
        return None;
    };
    // The 101 may still sit in rustls: send it before the shard takes the socket over.
    let flushed = tokio::time::timeout(http.request_timeout, stream.flush()).await;
    if !matches!(flushed, Ok(Ok(()))) {
        return None;
    }
    let (tcp, mut connection) = stream.into_inner();
    let leftover = crate::tls::with_decrypted(&mut connection, leftover)?;
    Some(Upgraded {
        stream: Socket::tls(tcp, connection),
        peer,
        leftover,
        permit,
        info,
        deflate,
    })
}

fn handshake_failed(peer: SocketAddr, why: &str) -> Option<Upgraded<Socket>> {
    tracing::debug!(%peer, "TLS handshake failed: {why}");
    None
}

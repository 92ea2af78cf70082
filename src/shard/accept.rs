//! The acceptor, run by every shard on the one shared listening socket: accepts TCP
//! connections, lets [`crate::http`] serve each one, and adopts those that upgrade.
//!
//! A shard that accepts an upgrade gives the connection an id that hashes to itself
//! ([`Shard::fresh_client_id`]), so placement stays `hash(client_id) % shards` while the
//! socket never changes thread or reactor. Which shard accepts is up to the kernel (the
//! least busy one tends to win the race), which spreads connections by load.

use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use super::state::Shard;
use super::task;

/// How long the acceptor pauses after a failed accept (EMFILE and friends).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

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

/// Serves one accepted connection's HTTP; adopts it if it upgrades.
async fn serve(shard: Rc<Shard>, stream: tokio::net::TcpStream, peer: std::net::SocketAddr) {
    let http = shard.ctx.http.clone();
    if let Some(upgraded) = crate::http::serve(stream, peer, &http).await {
        let id = shard.fresh_client_id();
        task::adopt(&shard, upgraded, id);
    }
}

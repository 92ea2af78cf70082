//! The acceptor, run by every shard on the one shared listening socket: accepts TCP
//! connections, lets [`crate::http`] serve each one, and adopts those that upgrade.
//!
//! A shard that accepts an upgrade gives the connection an id that hashes to itself
//! ([`Shard::fresh_client_id`]), so placement stays `hash(client_id) % shards` while the
//! socket never changes thread or reactor. Which shard accepts is up to the kernel (the
//! least busy one tends to win the race), which spreads connections by load.

use std::rc::Rc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::state::Shard;
use super::task;

/// How long the acceptor pauses after a failed accept (EMFILE and friends).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Accepts until the task is aborted (the shard stops accepting at shutdown).
pub(crate) async fn accept_loop(listener: TcpListener, shard: Rc<Shard>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::task::spawn_local(serve(shard.clone(), stream, peer));
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => {
                // Back off briefly instead of spinning.
                tracing::warn!(shard = %shard.id, "accept failed: {err}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
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

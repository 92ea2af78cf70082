//! Sockets upgraded by an application's HTTP stack (an axum router, see `crate::mount`)
//! and handed to the shard that will own them: the second way in, beside [`super::accept`].
//!
//! # Contract
//!
//! - A handoff arrives after the application wrote the `101` and after the connection
//!   passed the same checks as on the engine's port (shutdown, origin, handshake, caps:
//!   the [`Permit`] rides along). Its socket is already out of the application's reactor
//!   (`into_std`), with its rustls state beside it when the application terminated TLS;
//!   the shard registers it with its own, so from here on the connection is
//!   indistinguishable from one the shard accepted: same [`Socket`] (plain or TLS), same
//!   task, same delivery path, the same state allocated on the shard.
//! - Each shard has one bounded queue of [`HANDOFF_QUEUE`] handoffs; the application's
//!   task waits when it is full (a connection storm is paced, never dropped here).
//! - The queue is drained by a local task that stops with the acceptor at shutdown; a
//!   handoff still queued then is dropped, which closes its socket.

use std::net::SocketAddr;
use std::rc::Rc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::socket::Socket;
use super::state::Shard;
use super::task;
use crate::admission::Permit;
use crate::hooks::UpgradeInfo;
use crate::http::Upgraded;
use crate::ws::extension::PerMessageDeflate;

/// Handoffs a shard's queue holds before the application's tasks wait.
pub(crate) const HANDOFF_QUEUE: usize = 1024;

/// An upgraded socket on its way to its shard.
pub(crate) struct Handoff {
    /// The socket, out of the application's reactor (non-blocking).
    pub stream: std::net::TcpStream,
    /// The TLS state over it, when the application terminated TLS (tokio-rustls).
    pub tls: Option<Box<rustls::ServerConnection>>,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Bytes the application's HTTP stack read past the upgrade request (the client's
    /// first frames, if any).
    pub leftover: Vec<u8>,
    /// The connection's place under the connection caps.
    pub permit: Permit,
    /// What the upgrade request said, for the authenticator.
    pub info: Box<UpgradeInfo>,
    /// permessage-deflate, when it was agreed.
    pub deflate: Option<PerMessageDeflate>,
    /// When the request arrived ([`crate::metrics::stamp_now`]).
    pub accepted_at: u64,
}

/// Where an application hands sockets to one shard.
pub(crate) type HandoffSender = mpsc::Sender<Handoff>;
/// A shard's end of its handoff queue.
pub(crate) type HandoffReceiver = mpsc::Receiver<Handoff>;

/// A shard's handoff queue.
pub(crate) fn queue() -> (HandoffSender, HandoffReceiver) {
    mpsc::channel(HANDOFF_QUEUE)
}

/// Adopts every handoff until the task is aborted (at shutdown) or every sender is gone.
pub(crate) async fn adopt_loop(mut handoffs: HandoffReceiver, shard: Rc<Shard>) {
    while let Some(handoff) = handoffs.recv().await {
        adopt(&shard, handoff);
    }
}

/// Registers the socket with this shard's reactor and starts its connection task.
fn adopt(shard: &Rc<Shard>, handoff: Handoff) {
    let stream = match TcpStream::from_std(handoff.stream) {
        Ok(stream) => stream,
        Err(err) => {
            tracing::warn!(shard = %shard.id, peer = %handoff.peer, "cannot adopt a socket: {err}");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let socket = match handoff.tls {
        Some(tls) => Socket::tls(stream, *tls),
        None => Socket::Plain(stream),
    };
    let upgraded = Upgraded {
        stream: socket,
        peer: handoff.peer,
        leftover: handoff.leftover,
        permit: handoff.permit,
        info: handoff.info,
        deflate: handoff.deflate,
    };
    let id = shard.fresh_client_id();
    task::adopt(shard, upgraded, id, handoff.accepted_at);
}

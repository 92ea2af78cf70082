//! The lingering close: flush the close frame (bounded in time), half-close the write
//! side (TLS: after `close_notify`), discard input until the peer closes (bounded), then
//! forget the connection.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::ConnTask;
use crate::shard::socket::Socket;
use crate::shard::state::Shard;

/// How long a closing connection may take to take its close frame.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// How long to wait for the peer's side of the close after half-closing.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

impl ConnTask {
    /// Flushes the close frame (bounded), half-closes, lingers for the peer, forgets.
    pub(super) async fn finish(self, socket: &Socket, wake: &Notify) {
        let stream = socket.tcp();
        let deadline = tokio::time::Instant::now() + CLOSE_FLUSH;
        while let Some(blocked) = self.close_waiting() {
            tokio::select! {
                ready = stream.writable(), if blocked => match ready {
                    Ok(()) => self.shard.flush_one(self.slot),
                    Err(_) => break,
                },
                () = wake.notified() => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
            self.shard.flush_dirty();
        }
        if !self.peer_gone {
            let _ = tokio::time::timeout(CLOSE_FLUSH, socket.shutdown_write()).await;
            let _ =
                tokio::time::timeout(CLOSE_LINGER, discard_until_eof(&self.shard, stream)).await;
        }
        self.shard.hold_buffered(self.decoder.buffered(), 0);
        self.shard.remove(self.slot);
    }

    /// `Some(write blocked)` while the close frame (or what precedes it) is unwritten and
    /// the peer is still there.
    fn close_waiting(&self) -> Option<bool> {
        if self.peer_gone {
            return None;
        }
        let state = self.shard.state.borrow();
        let entry = state.conns.get(self.slot)?;
        entry.conn.close_pending().then(|| entry.write_blocked())
    }
}

/// Reads and drops input until the peer closes. Reads go to the shard's scratch buffer:
/// a buffer in this future would sit in every connection's task for its whole life.
async fn discard_until_eof(shard: &Shard, stream: &TcpStream) {
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let read = stream.try_read(&mut shard.scratch.borrow_mut());
        match read {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

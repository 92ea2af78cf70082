//! The task that drives one connection's socket on its shard.
//!
//! It reads into the shard's scratch buffer, decodes frames, carries out the
//! connection's decisions ([`read`]), awaits the authenticator ([`auth`]), enforces the
//! auth deadline, and flushes its own queue when the socket was full. Deliveries from
//! other sources are queued by the shard directly; this task only waits on the socket
//! when the shard could not write. Closing is a lingering close ([`close`]).
//!
//! The task future lives as long as its connection, so it is kept small (a unit test pins
//! its size): no buffers, one readiness future, timers boxed and only while needed.

mod auth;
mod close;
mod read;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use tokio::io::Interest;
use tokio::sync::Notify;
use tokio::time::Sleep;

use super::index::Slot;
use super::socket::Socket;
use super::state::Shard;
use crate::hooks::UpgradeInfo;
use crate::http::Upgraded;
use crate::id::ClientId;
use crate::ws::decode::FrameDecoder;
use auth::{AuthFuture, AuthOutcome};

/// Takes an upgraded socket (already on this shard's reactor) and starts its task;
/// `accepted_at` is the [`crate::metrics::stamp_now`] of its TCP accept.
pub(crate) fn adopt(
    shard: &Rc<Shard>,
    upgraded: Upgraded<Socket>,
    client_id: ClientId,
    accepted_at: u64,
) {
    let stream = Rc::new(upgraded.stream);
    let permit = upgraded.permit;
    let socket = (stream.clone(), permit, accepted_at);
    let deflate = upgraded.deflate;
    let window = deflate.and_then(|agreed| agreed.outbound_window_bits());
    let admitted = shard.admit(client_id, socket, window, Instant::now());
    let task = ConnTask {
        shard: shard.clone(),
        slot: admitted.slot,
        client_id,
        peer: upgraded.peer,
        upgrade: Some(upgraded.info),
        decoder: FrameDecoder::new(shard.limits()).with_permessage_deflate(deflate.is_some()),
        auth: None,
        peer_gone: false,
    };
    tokio::task::spawn_local(task.run(stream, admitted.wake, upgraded.leftover));
}

/// What woke the connection task.
enum Wakeup {
    /// The socket is readable and/or writable.
    Ready(tokio::io::Ready),
    /// Waiting on the socket failed.
    Failed,
    /// The shard changed something (closing, write blocked, aborted).
    Notified,
    /// The authenticator (and handshake) finished.
    Auth(Box<AuthOutcome>),
    /// The authentication deadline passed.
    Deadline,
}

/// The connection's state as the task waits on it.
struct Status {
    auth_deadline: Option<Instant>,
    write_blocked: bool,
}

struct ConnTask {
    shard: Rc<Shard>,
    slot: Slot,
    client_id: ClientId,
    peer: SocketAddr,
    /// What the upgrade request said, until the authenticator takes it.
    upgrade: Option<Box<UpgradeInfo>>,
    decoder: FrameDecoder,
    auth: Option<AuthFuture>,
    /// The peer closed its side (EOF) or the socket failed.
    peer_gone: bool,
}

impl ConnTask {
    async fn run(mut self, stream: Rc<Socket>, wake: Rc<Notify>, mut leftover: Vec<u8>) {
        if !leftover.is_empty() {
            self.on_bytes(&mut leftover, Instant::now());
        }
        drop(leftover);
        self.shard.flush_dirty();
        // Boxed and only while unauthenticated: the timer would otherwise sit in every
        // connection's task for its whole life.
        let mut auth_timer: Option<Pin<Box<Sleep>>> = None;
        while let Some(interest) = self.prepare(&mut auth_timer) {
            // The select only picks what happened; the work (which may await) runs after
            // it, so the branch futures are not kept alive across that await.
            let wakeup = tokio::select! {
                ready = stream.ready(interest) => match ready {
                    Ok(ready) => Wakeup::Ready(ready),
                    Err(_) => Wakeup::Failed,
                },
                () = wake.notified() => Wakeup::Notified,
                result = poll_auth(&mut self.auth), if self.auth.is_some() => Wakeup::Auth(result),
                () = poll_timer(&mut auth_timer), if auth_timer.is_some() => Wakeup::Deadline,
            };
            if self.on_wakeup(wakeup, &stream) {
                // A flooding client: let the shard's other tasks run before reading on.
                self.shard.flush_dirty();
                tokio::task::yield_now().await;
            }
            self.shard.flush_dirty();
        }
        // Boxed: the closing sequence's timers exist only while a connection closes.
        Box::pin(self.finish(&stream, &wake)).await;
    }

    /// Acts on what woke the task; true when input is still waiting (read budget spent).
    fn on_wakeup(&mut self, wakeup: Wakeup, stream: &Socket) -> bool {
        match wakeup {
            Wakeup::Ready(ready) => {
                if ready.is_writable() {
                    self.shard.flush_one(self.slot);
                }
                if ready.is_readable() || ready.is_read_closed() {
                    return self.read_available(stream);
                }
            }
            Wakeup::Failed => self.peer_gone = true,
            Wakeup::Notified => {}
            Wakeup::Auth(result) => {
                self.auth = None;
                self.on_auth_result(*result);
            }
            Wakeup::Deadline => self.on_deadline(),
        }
        false
    }

    /// `None` once the connection is closing or gone; else sets the auth timer and says
    /// what to wait for on the socket.
    fn prepare(&self, auth_timer: &mut Option<Pin<Box<Sleep>>>) -> Option<Interest> {
        let status = self.status()?;
        arm(auth_timer, status.auth_deadline);
        Some(interest(&status))
    }

    /// `None` once the connection is closing or gone; else what the task waits for.
    fn status(&self) -> Option<Status> {
        if self.peer_gone {
            return None;
        }
        let state = self.shard.state.borrow();
        let entry = state.conns.get(self.slot)?;
        entry.conn.is_open().then(|| Status {
            auth_deadline: entry.conn.auth_deadline(),
            write_blocked: entry.write_blocked(),
        })
    }
}

/// Readable, and writable while the shard could not write everything.
fn interest(status: &Status) -> Interest {
    match status.write_blocked {
        true => Interest::READABLE | Interest::WRITABLE,
        false => Interest::READABLE,
    }
}

/// Keeps the auth timer set to `deadline` (created or moved as needed; dropped with it).
fn arm(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Option<Instant>) {
    match deadline {
        Some(at) if timer.as_ref().is_none_or(|t| t.deadline() != at.into()) => {
            *timer = Some(Box::pin(tokio::time::sleep_until(at.into())));
        }
        Some(_) => {}
        None => *timer = None,
    }
}

fn poll_auth(slot: &mut Option<AuthFuture>) -> impl Future<Output = Box<AuthOutcome>> + '_ {
    std::future::poll_fn(move |cx| match slot {
        Some(future) => future.as_mut().poll(cx),
        None => Poll::Pending,
    })
}

fn poll_timer(timer: &mut Option<Pin<Box<Sleep>>>) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| match timer {
        Some(sleep) => sleep.as_mut().poll(cx),
        None => Poll::Pending,
    })
}

#[cfg(test)]
mod tests {
    /// The task future lives as long as its connection: keep it small (memory per idle
    /// connection). This pins its size so a regression shows up here.
    #[test]
    fn connection_task_future_stays_small() {
        fn size_of_run() -> usize {
            let future = super::ConnTask::run;
            // The size of the future returned by `run`, via a never-called closure.
            fn size<F, A, B, C, D, Fut>(_: &F) -> usize
            where
                F: Fn(A, B, C, D) -> Fut,
            {
                std::mem::size_of::<Fut>()
            }
            size(&future)
        }
        let bytes = size_of_run();
        eprintln!("ConnTask::run future: {bytes} bytes");
        assert!(bytes <= 640, "ConnTask::run future is {bytes} bytes");
    }
}

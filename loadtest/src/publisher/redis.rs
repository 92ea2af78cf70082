//! Publishing over Redis: one connection, pipelined `PUBLISH ws:room:<room> <envelope>`.
//!
//! The publisher task writes each due batch in one `write_all`; a reader task on the same
//! thread matches replies (`:<receivers>` or `-ERR`) to messages in FIFO order.

use super::endpoint::RedisEndpoint;
use super::resp::{self, Reply};
use super::{Item, Messages, Tally};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;

/// A message awaiting its reply: room, measured?, write time.
type Pending = (usize, bool, Instant);

struct Shared {
    pending: VecDeque<Pending>,
    tally: Tally,
    dead: bool,
}

/// Pipelined Redis publisher.
pub struct RedisSink {
    wr: OwnedWriteHalf,
    msgs: Arc<Messages>,
    shared: Rc<RefCell<Shared>>,
    reader: JoinHandle<()>,
    out: Vec<u8>,
    body: Vec<u8>,
}

impl RedisSink {
    /// Connects (AUTH/SELECT as configured) and starts the reply reader.
    pub async fn connect(
        ep: &RedisEndpoint,
        msgs: Arc<Messages>,
        rooms: usize,
    ) -> Result<Self, String> {
        let stream = ep.connect().await?;
        let (rd, wr) = stream.into_split();
        let shared = Rc::new(RefCell::new(Shared {
            pending: VecDeque::new(),
            tally: Tally::new(rooms),
            dead: false,
        }));
        let reader = tokio::task::spawn_local(read_replies(rd, shared.clone()));
        Ok(RedisSink {
            wr,
            msgs,
            shared,
            reader,
            out: Vec::with_capacity(64 * 1024),
            body: Vec::with_capacity(512),
        })
    }

    /// Writes one pipelined batch.
    pub async fn send(&mut self, items: impl Iterator<Item = Item>) -> Result<(), String> {
        self.out.clear();
        let now = Instant::now();
        let mut pending = Vec::new();
        for item in items {
            self.body.clear();
            self.msgs.write_body(item, true, &mut self.body);
            let (room, seq) = self.msgs.slot(item);
            resp::command(
                &[b"PUBLISH", self.msgs.channel(room).as_bytes(), &self.body],
                &mut self.out,
            );
            pending.push((room, seq.is_some(), now));
        }
        {
            let mut s = self.shared.borrow_mut();
            if s.dead {
                return Err(s
                    .tally
                    .first_error
                    .clone()
                    .unwrap_or_else(|| "Redis connection lost".into()));
            }
            s.tally.sent += pending.len() as u64;
            s.pending.extend(pending);
        }
        self.wr
            .write_all(&self.out)
            .await
            .map_err(|e| format!("writing to Redis: {e}"))
    }

    /// Waits up to `wait` for outstanding replies, then returns the tally.
    pub async fn finish(self, wait: Duration) -> Tally {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let settled = {
                let s = self.shared.borrow();
                s.pending.is_empty() || s.dead
            };
            if settled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.reader.abort();
        let mut s = self.shared.borrow_mut();
        let lost = s.pending.len() as u64;
        if lost > 0 {
            s.tally
                .error(format!("{lost} PUBLISH replies never arrived"));
            s.tally.errors += lost - 1;
        }
        std::mem::take(&mut s.tally)
    }
}

async fn read_replies(mut rd: OwnedReadHalf, shared: Rc<RefCell<Shared>>) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) => return fail(&shared, "Redis closed the connection".into()),
            Ok(n) => n,
            Err(e) => return fail(&shared, format!("reading from Redis: {e}")),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        let mut s = shared.borrow_mut();
        loop {
            match resp::parse(&buf[pos..]) {
                Ok(Some((reply, used))) => {
                    pos += used;
                    on_reply(&mut s, reply);
                }
                Ok(None) => break,
                Err(e) => {
                    drop(s);
                    return fail(&shared, e);
                }
            }
        }
        buf.drain(..pos);
    }
}

fn on_reply(s: &mut Shared, reply: Reply) {
    let Some((room, measured, at)) = s.pending.pop_front() else {
        return;
    };
    match reply {
        Reply::Int(_) => s.tally.ack(room, measured, at),
        Reply::Error(e) => s.tally.error(format!("Redis: {e}")),
        other => s.tally.error(format!("unexpected Redis reply {other:?}")),
    }
}

fn fail(shared: &Rc<RefCell<Shared>>, msg: String) {
    let mut s = shared.borrow_mut();
    s.dead = true;
    s.tally.error(msg);
}

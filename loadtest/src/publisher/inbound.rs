//! The chat observer: a sidecar thread (`load-inbound`) subscribed to the channel the
//! server forwards client events to (`ws:inbound`), timing each stamped message from the
//! client's send to its arrival here.

use super::endpoint::{RedisEndpoint, request};
use super::resp::{self, Reply};
use crate::error::{Error, Result};
use crate::payload;
use crate::runtime::{Role, Spawned, ThreadOutput, ThreadRegistry, spawn_thread};
use crate::stats::{Latency, LatencySummary, Live};
use crate::ws::conn::now_us;
use serde::Serialize;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};

/// What the observer saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InboundReport {
    /// Messages received on the channel.
    pub received: u64,
    /// Of those, messages carrying a bench stamp.
    pub stamped: u64,
    /// Client send → arrival on the channel.
    pub latency: LatencySummary,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

/// Handle to the observer thread.
pub struct Inbound {
    stop: watch::Sender<bool>,
    ready: Option<super::ReadySignal>,
    done: Spawned<InboundReport>,
}

impl Inbound {
    /// Starts the thread and subscribes; stamped arrivals are added to `live.frames`.
    pub fn start(
        ep: RedisEndpoint,
        channel: String,
        live: Arc<Live>,
        registry: &ThreadRegistry,
    ) -> Result<Inbound> {
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready) = oneshot::channel();
        let done = spawn_thread("load-inbound".into(), Role::Sidecar, registry, move || {
            observe(ep, channel, ready_tx, stop_rx, live)
        })?;
        Ok(Inbound {
            stop,
            ready: Some(ready),
            done,
        })
    }

    /// Waits until the subscription is confirmed.
    pub async fn ready(&mut self) -> Result<()> {
        super::await_ready(&mut self.ready, "observer died").await
    }

    /// Stops observing and returns the report.
    pub async fn finish(self) -> Result<ThreadOutput<InboundReport>> {
        let _ = self.stop.send(true);
        self.done
            .join()
            .await?
            .pop()
            .ok_or_else(|| Error::Worker("load-inbound".into()))
    }
}

async fn observe(
    ep: RedisEndpoint,
    channel: String,
    ready: oneshot::Sender<std::result::Result<(), String>>,
    mut stop: watch::Receiver<bool>,
    live: Arc<Live>,
) -> InboundReport {
    let mut stream = match subscribe(&ep, &channel).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            return InboundReport {
                error: Some(e),
                ..Default::default()
            };
        }
    };
    let _ = ready.send(Ok(()));
    let mut state = State::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = stream.read(&mut chunk) => match r {
                Ok(n) if n > 0 => {
                    let before = state.latency.count();
                    let fed = state.feed(&chunk[..n]);
                    Live::add(&live.frames, state.latency.count() - before);
                    if let Err(e) = fed {
                        state.error = Some(e);
                        break;
                    }
                }
                Ok(_) => { state.error = Some("Redis closed the connection".into()); break }
                Err(e) => { state.error = Some(e.to_string()); break }
            }
        }
    }
    state.report()
}

async fn subscribe(ep: &RedisEndpoint, channel: &str) -> std::result::Result<TcpStream, String> {
    let mut s = ep.connect().await?;
    request(&mut s, &[b"SUBSCRIBE", channel.as_bytes()]).await?;
    Ok(s)
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    received: u64,
    latency: Latency,
    error: Option<String>,
}

impl State {
    fn feed(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        self.buf.extend_from_slice(bytes);
        let now = now_us();
        let mut pos = 0;
        while let Some((reply, used)) = resp::parse(&self.buf[pos..])? {
            pos += used;
            if let Some(msg) = message_payload(&reply) {
                self.received += 1;
                if let Some(stamp) = payload::scan(msg) {
                    self.latency.record(now.saturating_sub(stamp.t));
                }
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }

    fn report(self) -> InboundReport {
        InboundReport {
            received: self.received,
            stamped: self.latency.count(),
            latency: self.latency.summary(),
            error: self.error,
        }
    }
}

/// The payload of a `message` push, if `reply` is one.
fn message_payload(reply: &Reply) -> Option<&[u8]> {
    let Reply::Array(Some(items)) = reply else {
        return None;
    };
    match items.as_slice() {
        [Reply::Bulk(Some(kind)), _, Reply::Bulk(Some(payload))] if kind == b"message" => {
            Some(payload)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stamped_messages_across_reads() {
        let mut s = State::default();
        let t = now_us() - 1500;
        let body = format!(r#"{{"event":"chat","data":{{"t":{t},"s":1,"p":""}}}}"#);
        let mut push = Vec::new();
        resp::command(&[b"message", b"ws:inbound", body.as_bytes()], &mut push);
        let (a, b) = push.split_at(10);
        s.feed(a).unwrap();
        s.feed(b).unwrap();
        let r = s.report();
        assert_eq!((r.received, r.stamped), (1, 1));
        assert!(r.latency.p50_us >= 1500);
    }
}

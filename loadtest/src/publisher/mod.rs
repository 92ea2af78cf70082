//! The fan-out publisher: a sidecar thread (`load-publisher`) with its own runtime, so
//! publishing keeps its pace however busy the readers are.
//!
//! Life: connect (reported through [`Publisher::ready`]) → warm-up rounds, one warm-up
//! message per room every [`WARMUP_PERIOD`], until [`Publisher::go`] → `rate` messages/s
//! for `duration`, message `j` going to room `j % M` with per-room sequence `j / M` and
//! a send timestamp → wait for every acknowledgement (Redis reply / HTTP 202) →
//! [`PublishReport`]. Only acknowledged messages count as expected deliveries.

pub mod endpoint;
pub mod http;
pub mod inbound;
pub mod redis;
pub mod resp;

/// The readiness signal a publisher-side thread sends once it is connected.
pub(crate) type ReadySignal = oneshot::Receiver<std::result::Result<(), String>>;

/// Waits (once) for a thread's readiness signal; `died` names a thread that vanished.
pub(crate) async fn await_ready(ready: &mut Option<ReadySignal>, died: &str) -> Result<()> {
    match ready.take() {
        Some(rx) => rx
            .await
            .map_err(|_| Error::Publisher(died.into()))?
            .map_err(Error::Publisher),
        None => Ok(()),
    }
}

use crate::error::{Error, Result};
use crate::payload::{BENCH_EVENT, PayloadShape, WARMUP_EVENT};
use crate::runtime::{Pacer, Role, Spawned, ThreadOutput, ThreadRegistry, spawn_thread};
use crate::stats::{Latency, LatencySummary, Live};
use crate::ws::conn::now_us;
pub use endpoint::{HttpEndpoint, RedisEndpoint};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Pause between warm-up rounds.
pub const WARMUP_PERIOD: Duration = Duration::from_millis(200);
/// Longest wait for outstanding acknowledgements at the end.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Redis envelopes on `ws:room:<room>`.
    Redis(RedisEndpoint),
    /// `POST /api/publish`.
    Http(HttpEndpoint),
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Room names.
    pub rooms: Vec<String>,
    /// Messages per second.
    pub rate: f64,
    /// Publishing time.
    pub duration: Duration,
    /// Payload padding.
    pub shape: PayloadShape,
}

impl Plan {
    /// Messages the run will publish.
    pub fn planned(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round() as u64
    }
}

/// One message to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A warm-up message to room index `.0`.
    Warmup(usize),
    /// Measured message number `.0`.
    Bench(u64),
}

/// Renders messages for both publish paths. Room names are JSON-escaped once.
#[derive(Debug)]
pub struct Messages {
    rooms_json: Vec<String>,
    channels: Vec<String>,
    shape: PayloadShape,
}

impl Messages {
    /// Prepares the rooms of `plan`.
    pub fn new(plan: &Plan) -> Self {
        Messages {
            rooms_json: plan
                .rooms
                .iter()
                .map(|r| serde_json::Value::from(r.as_str()).to_string())
                .collect(),
            channels: plan.rooms.iter().map(|r| format!("ws:room:{r}")).collect(),
            shape: plan.shape.clone(),
        }
    }

    /// Room index and per-room sequence of an item.
    pub fn slot(&self, item: Item) -> (usize, Option<u64>) {
        let m = self.rooms_json.len() as u64;
        match item {
            Item::Warmup(r) => (r, None),
            Item::Bench(j) => ((j % m) as usize, Some(j / m)),
        }
    }

    /// Redis channel of room `r`.
    pub fn channel(&self, r: usize) -> &str {
        &self.channels[r]
    }

    /// Appends the body: a Redis envelope (`with_server_id`) or an `/api/publish` body.
    /// The timestamp is taken now.
    pub fn write_body(&self, item: Item, with_server_id: bool, out: &mut Vec<u8>) {
        let (room, seq) = self.slot(item);
        out.push(b'{');
        if with_server_id {
            out.extend_from_slice(br#""serverId":"emitter","#);
        }
        out.extend_from_slice(br#""type":"room","target":"#);
        out.extend_from_slice(self.rooms_json[room].as_bytes());
        out.extend_from_slice(br#","event":""#);
        out.extend_from_slice(
            if seq.is_some() {
                BENCH_EVENT
            } else {
                WARMUP_EVENT
            }
            .as_bytes(),
        );
        out.extend_from_slice(br#"","data":"#);
        match seq {
            Some(s) => self.shape.write_data(now_us(), s, out),
            None => out.extend_from_slice(b"{}"),
        }
        out.push(b'}');
    }
}

/// Acknowledgement bookkeeping shared by a sink's tasks.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages written.
    pub sent: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages refused or lost with their connection.
    pub errors: u64,
    /// Acknowledged measured messages per room.
    pub per_room: Vec<u64>,
    /// Write → acknowledgement time.
    pub rtt: Latency,
    /// First error text.
    pub first_error: Option<String>,
}

impl Tally {
    /// A tally for `rooms` rooms.
    pub fn new(rooms: usize) -> Self {
        Tally {
            per_room: vec![0; rooms],
            ..Default::default()
        }
    }

    /// Records an acknowledgement of a message to `room` (measured ones only).
    pub fn ack(&mut self, room: usize, measured: bool, sent_at: Instant) {
        self.acked += 1;
        if measured {
            self.per_room[room] += 1;
            self.rtt.record(sent_at.elapsed().as_micros() as u64);
        }
    }

    /// Records a failed message.
    pub fn error(&mut self, msg: String) {
        self.errors += 1;
        self.first_error.get_or_insert(msg);
    }
}

/// Outcome of a publisher run.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// `redis` or `http`.
    pub via: &'static str,
    /// Measured messages planned.
    pub planned: u64,
    /// Measured messages written.
    pub sent: u64,
    /// Measured messages acknowledged.
    pub acked: u64,
    /// Messages refused or lost.
    pub errors: u64,
    /// Seconds from the first to the last measured write.
    pub elapsed_s: f64,
    /// sent / elapsed_s.
    pub achieved_rate: f64,
    /// Warm-up rounds before the measured run.
    pub warmup_rounds: u64,
    /// Write → acknowledgement time of measured messages.
    pub ack_rtt: LatencySummary,
    /// First error text.
    pub first_error: Option<String>,
    /// Acknowledged measured messages per room.
    #[serde(skip)]
    pub per_room: Vec<u64>,
}

/// Orders from the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Warmup,
    Go,
    Abort,
}

/// Handle to the publisher thread.
pub struct Publisher {
    ctl: watch::Sender<Control>,
    ready: Option<ReadySignal>,
    done: Spawned<std::result::Result<PublishReport, String>>,
}

impl Publisher {
    /// Starts the thread; it connects and begins warming up at once.
    pub fn start(
        endpoint: Endpoint,
        plan: Plan,
        live: Arc<Live>,
        registry: &ThreadRegistry,
    ) -> Result<Publisher> {
        let (ctl, ctl_rx) = watch::channel(Control::Warmup);
        let (ready_tx, ready) = oneshot::channel();
        let done = spawn_thread(
            "load-publisher".into(),
            Role::Sidecar,
            registry,
            move || run(endpoint, plan, ctl_rx, ready_tx, live),
        )?;
        Ok(Publisher {
            ctl,
            ready: Some(ready),
            done,
        })
    }

    /// Waits until the publisher is connected.
    pub async fn ready(&mut self) -> Result<()> {
        await_ready(&mut self.ready, "thread died").await
    }

    /// Ends the warm-up and starts the measured run.
    pub fn go(&self) {
        let _ = self.ctl.send(Control::Go);
    }

    /// Stops early (the report covers what was sent).
    pub fn abort(&self) {
        let _ = self.ctl.send(Control::Abort);
    }

    /// Waits for the report.
    pub async fn finish(self) -> Result<ThreadOutput<PublishReport>> {
        let mut out = self.done.join().await?;
        let o = out
            .pop()
            .ok_or_else(|| Error::Worker("load-publisher".into()))?;
        let result = o.result.map_err(Error::Publisher)?;
        Ok(ThreadOutput {
            result,
            name: o.name,
            lag: o.lag,
        })
    }
}

enum Sink {
    Redis(redis::RedisSink),
    Http(http::HttpSink),
}

impl Sink {
    async fn connect(
        endpoint: &Endpoint,
        msgs: Arc<Messages>,
        rooms: usize,
    ) -> std::result::Result<Sink, String> {
        Ok(match endpoint {
            Endpoint::Redis(ep) => Sink::Redis(redis::RedisSink::connect(ep, msgs, rooms).await?),
            Endpoint::Http(ep) => Sink::Http(http::HttpSink::connect(ep, msgs, rooms).await?),
        })
    }

    async fn send(&mut self, items: impl Iterator<Item = Item>) -> std::result::Result<(), String> {
        match self {
            Sink::Redis(s) => s.send(items).await,
            Sink::Http(s) => {
                s.send(items);
                Ok(())
            }
        }
    }

    async fn finish(self, wait: Duration) -> Tally {
        match self {
            Sink::Redis(s) => s.finish(wait).await,
            Sink::Http(s) => s.finish(wait).await,
        }
    }

    fn via(&self) -> &'static str {
        match self {
            Sink::Redis(_) => "redis",
            Sink::Http(_) => "http",
        }
    }
}

async fn run(
    endpoint: Endpoint,
    plan: Plan,
    mut ctl: watch::Receiver<Control>,
    ready: oneshot::Sender<std::result::Result<(), String>>,
    live: Arc<Live>,
) -> std::result::Result<PublishReport, String> {
    let msgs = Arc::new(Messages::new(&plan));
    let rooms = plan.rooms.len();
    let mut sink = match Sink::connect(&endpoint, msgs, rooms).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            return Err(e);
        }
    };
    let _ = ready.send(Ok(()));
    let warmup_rounds = warm_up(&mut sink, rooms, &mut ctl).await?;
    let aborted = *ctl.borrow() == Control::Abort;
    let (sent, elapsed_s) = if aborted {
        (0, 0.0)
    } else {
        measured(&mut sink, &plan, &ctl, &live).await?
    };
    let via = sink.via();
    let t = sink.finish(ACK_WAIT).await;
    let acked = t.per_room.iter().sum();
    Ok(PublishReport {
        via,
        planned: plan.planned(),
        sent,
        acked,
        errors: t.errors,
        elapsed_s,
        achieved_rate: if elapsed_s > 0.0 {
            sent as f64 / elapsed_s
        } else {
            0.0
        },
        warmup_rounds,
        ack_rtt: t.rtt.summary(),
        first_error: t.first_error,
        per_room: t.per_room,
    })
}

async fn warm_up(
    sink: &mut Sink,
    rooms: usize,
    ctl: &mut watch::Receiver<Control>,
) -> std::result::Result<u64, String> {
    let mut rounds = 0;
    while *ctl.borrow_and_update() == Control::Warmup {
        sink.send((0..rooms).map(Item::Warmup)).await?;
        rounds += 1;
        tokio::select! {
            _ = tokio::time::sleep(WARMUP_PERIOD) => {}
            _ = ctl.changed() => {}
        }
    }
    Ok(rounds)
}

async fn measured(
    sink: &mut Sink,
    plan: &Plan,
    ctl: &watch::Receiver<Control>,
    live: &Live,
) -> std::result::Result<(u64, f64), String> {
    let mut pacer = Pacer::new(plan.rate, plan.planned());
    let t0 = Instant::now();
    let mut last = t0;
    let mut j = 0u64;
    loop {
        let n = pacer.next().await;
        if n == 0 || *ctl.borrow() == Control::Abort {
            break;
        }
        sink.send((j..j + n).map(Item::Bench)).await?;
        last = Instant::now();
        j += n;
        Live::add(&live.sent, n);
    }
    Ok((j, last.duration_since(t0).as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload;

    fn plan(rooms: &[&str]) -> Plan {
        Plan {
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            rate: 10.0,
            duration: Duration::from_secs(1),
            shape: PayloadShape::for_frame(BENCH_EVENT, 100),
        }
    }

    #[test]
    fn messages_round_robin_rooms_with_per_room_sequences() {
        let m = Messages::new(&plan(&["a", "b", "c"]));
        let slots: Vec<_> = (0..7).map(|j| m.slot(Item::Bench(j))).collect();
        assert_eq!(
            slots[..4],
            [(0, Some(0)), (1, Some(0)), (2, Some(0)), (0, Some(1))]
        );
        assert_eq!(slots[6], (0, Some(2)));
    }

    #[test]
    fn envelope_is_valid_json_with_a_stamp() {
        let m = Messages::new(&plan(&["public-\"1"]));
        let mut out = Vec::new();
        m.write_body(Item::Bench(5), true, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["serverId"], "emitter");
        assert_eq!(
            (
                v["type"].as_str(),
                v["target"].as_str(),
                v["event"].as_str()
            ),
            (Some("room"), Some("public-\"1"), Some("bench"))
        );
        assert_eq!(payload::scan(&out).unwrap().s, 5);
        out.clear();
        m.write_body(Item::Warmup(0), false, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("serverId").is_none());
        assert!(payload::is_warmup(&out));
    }
}

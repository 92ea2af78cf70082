//! The subscriber task: owns the one pub/sub connection, keeps it subscribed, probes it,
//! and hands envelopes to the sink in arrival order. Contract: see [`crate::redis`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::Msg;
use redis::aio::{PubSub, PubSubSink};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};

use super::backoff::{Backoff, LogLimiter};
use super::bridge::EnvelopeSink;
use super::bridge::{LOG_EVERY, Shared, StopSignal};
use super::nodes::{LinkError, Node, Nodes, pubsub_connection, within};
use super::{LinkState, RedisSettings};
use crate::protocol::channel::{BROADCAST as BROADCAST_CHANNEL, PATTERNS};
use crate::protocol::envelope::Envelope;

/// How long a clean unsubscribe may take at shutdown.
const UNSUBSCRIBE_GRACE: Duration = Duration::from_millis(500);

pub(crate) struct Subscriber {
    nodes: Nodes,
    shared: Arc<Shared>,
    sink: Arc<dyn EnvelopeSink>,
    /// Probe requests to the publisher (capacity 1: one outstanding probe is enough).
    probe: mpsc::Sender<Instant>,
    backoff: Backoff,
    probe_interval: Duration,
    probe_timeout: Duration,
    malformed_log: LogLimiter,
    /// A "Redis is down" line was logged and no "restored" line since.
    announced_down: bool,
}

/// Why listening on a connection ended.
enum Ended {
    Stopped,
    Lost(String),
}

impl Subscriber {
    pub(crate) fn new(
        settings: &RedisSettings,
        nodes: Nodes,
        shared: Arc<Shared>,
        sink: Arc<dyn EnvelopeSink>,
        probe: mpsc::Sender<Instant>,
    ) -> Self {
        Subscriber {
            nodes,
            shared,
            sink,
            probe,
            backoff: Backoff::new(settings.backoff_min, settings.backoff_max),
            probe_interval: settings.probe_interval,
            probe_timeout: settings.probe_timeout,
            malformed_log: LogLimiter::new(LOG_EVERY),
            announced_down: false,
        }
    }

    /// Connect, subscribe, listen; on any failure reconnect; until stopped.
    pub(crate) async fn run(mut self, mut stop: StopSignal) {
        loop {
            self.shared.set_subscriber(LinkState::Connecting);
            let node = self.nodes.current().clone();
            let attempt = tokio::select! {
                biased;
                () = stop.wait() => break,
                attempt = self.connect(&node) => attempt,
            };
            match attempt {
                Ok(pubsub) => {
                    self.on_up(&node);
                    match self.listen(pubsub, &mut stop).await {
                        Ended::Stopped => break,
                        Ended::Lost(why) => self.on_lost(&node, &why),
                    }
                }
                Err(e) => {
                    if self.on_failed(&node, &e, &mut stop).await {
                        break;
                    }
                }
            }
        }
        self.shared.set_subscriber(LinkState::Stopped);
        tracing::debug!("redis: subscriber stopped");
    }

    /// Open a pub/sub connection and subscribe to everything, all within `probe_timeout`
    /// per step.
    async fn connect(&self, node: &Node) -> Result<PubSub, LinkError> {
        let limit = self.probe_timeout;
        let mut pubsub = pubsub_connection(node, limit).await?;
        let channels = [BROADCAST_CHANNEL, self.shared.probe_channel.as_str()];
        within(limit, pubsub.subscribe(&channels[..])).await?;
        within(limit, pubsub.psubscribe(&PATTERNS[..])).await?;
        Ok(pubsub)
    }

    fn on_up(&mut self, node: &Node) {
        let failed = self.backoff.attempts();
        self.backoff.reset();
        self.shared.set_subscriber(LinkState::Up);
        if self.announced_down {
            tracing::info!(node = %node.addr, failed_attempts = failed, "redis: subscriber restored, all channels resubscribed");
        } else {
            tracing::info!(node = %node.addr, "redis: subscriber ready (ws:broadcast, ws:room:*, ws:client:*, ws:user:*)");
        }
        self.announced_down = false;
    }

    fn on_lost(&mut self, node: &Node, why: &str) {
        self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
        self.shared.set_subscriber(LinkState::Down);
        tracing::warn!(node = %node.addr, "redis: subscriber connection lost ({why}); reconnecting");
        self.announced_down = true;
        // Try the next node (a no-op for a single Redis) at once; backoff applies after that.
        self.nodes.rotate();
    }

    /// Log (once per outage), rotate, and sleep the backoff. Returns true when stopped.
    async fn on_failed(&mut self, node: &Node, error: &LinkError, stop: &mut StopSignal) -> bool {
        self.shared.set_subscriber(LinkState::Down);
        if !self.announced_down {
            tracing::warn!(node = %node.addr, "redis: subscriber cannot connect ({error}); retrying with backoff");
            self.announced_down = true;
        } else {
            tracing::debug!(node = %node.addr, "redis: subscriber attempt failed ({error})");
        }
        self.nodes.rotate();
        let delay = self.backoff.next_delay();
        tokio::select! {
            biased;
            () = stop.wait() => true,
            () = sleep(delay) => false,
        }
    }

    /// Deliver messages until the connection fails, the probe goes unanswered, or stop.
    async fn listen(&mut self, pubsub: PubSub, stop: &mut StopSignal) -> Ended {
        let (mut control, mut stream) = pubsub.split();
        let mut last_heard = Instant::now();
        let mut probe_sent: Option<Instant> = None;
        let timer = sleep(self.probe_interval);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                () = stop.wait() => {
                    self.unsubscribe(&mut control).await;
                    return Ended::Stopped;
                }
                msg = stream.next() => match msg {
                    Some(msg) => {
                        last_heard = Instant::now();
                        probe_sent = None;
                        self.handle(&msg);
                    }
                    None => return Ended::Lost("connection closed".to_owned()),
                },
                () = &mut timer => {
                    let now = Instant::now();
                    if let Some(sent) = probe_sent {
                        if now >= sent + self.probe_timeout {
                            self.shared.probe_timeouts.fetch_add(1, Ordering::Relaxed);
                            return Ended::Lost(format!(
                                "liveness probe unanswered for {} ms",
                                self.probe_timeout.as_millis()
                            ));
                        }
                        timer.as_mut().reset(sent + self.probe_timeout);
                    } else if now >= last_heard + self.probe_interval {
                        // A full channel means a probe is already waiting: fine.
                        let _ = self.probe.try_send(now);
                        probe_sent = Some(now);
                        timer.as_mut().reset(now + self.probe_timeout);
                    } else {
                        timer.as_mut().reset(last_heard + self.probe_interval);
                    }
                }
            }
        }
    }

    /// One pub/sub message: skip probes and our own envelopes, count and log malformed ones,
    /// deliver the rest.
    fn handle(&self, msg: &Msg) {
        let channel = msg.get_channel_name();
        if channel == self.shared.probe_channel {
            return;
        }
        self.shared.received.fetch_add(1, Ordering::Relaxed);
        let mut buf = msg.get_payload_bytes().to_vec();
        match Envelope::parse(&mut buf) {
            // A history room's message is delivered here too, when Redis sends it
            // back: that is what puts it in the room's one order on every node.
            Ok(envelope)
                if envelope.server_id == self.shared.server_id && envelope.position.is_none() =>
            {
                self.shared.ignored_own.fetch_add(1, Ordering::Relaxed);
            }
            Ok(envelope) => {
                self.shared.delivered.fetch_add(1, Ordering::Relaxed);
                let sink = &self.sink;
                if catch_unwind(AssertUnwindSafe(|| sink.deliver(envelope))).is_err() {
                    tracing::error!(channel, "redis: envelope sink panicked; envelope lost");
                }
            }
            Err(error) => {
                self.shared.malformed.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = self.malformed_log.check() {
                    tracing::warn!(
                        channel,
                        suppressed,
                        "redis: ignoring malformed envelope: {error}"
                    );
                }
            }
        }
    }

    /// Best-effort clean goodbye before the connection is dropped.
    async fn unsubscribe(&self, control: &mut PubSubSink) {
        let channels = [BROADCAST_CHANNEL, self.shared.probe_channel.as_str()];
        let _ = tokio::time::timeout(UNSUBSCRIBE_GRACE, async {
            control.unsubscribe(&channels[..]).await?;
            control.punsubscribe(&PATTERNS[..]).await
        })
        .await;
    }
}

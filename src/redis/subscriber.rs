//! The subscriber task: owns the one pub/sub connection, keeps it subscribed (to the
//! patterns, or to the channels of the process's interest: [`super::subscriptions`]),
//! probes it, and hands envelopes to the sink in arrival order. Contract: see
//! [`crate::redis`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use redis::Msg;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep, sleep};

use super::backoff::{Backoff, LogLimiter};
use super::bridge::EnvelopeSink;
use super::bridge::{LOG_EVERY, Shared, StopSignal};
use super::nodes::{LinkError, Node, Nodes, pubsub_connection, within};
use super::subscriptions::{Op, OpKind, Subscriptions};
use super::{LinkState, RedisSettings, SubscribeMode};
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
    /// Patterns, or the channels of the interest.
    mode: SubscribeMode,
    /// The channels held in interest mode (and the interest, in every mode: it tells
    /// which envelopes nobody here wanted).
    subscriptions: Subscriptions,
}

/// A SUBSCRIBE or UNSUBSCRIBE on its way, with its answer.
type InFlight = BoxFuture<'static, (Op, Result<(), LinkError>)>;

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
        subscriptions: Subscriptions,
    ) -> Self {
        Subscriber {
            mode: settings.subscribe,
            subscriptions,
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

    /// Open a pub/sub connection and subscribe to everything (in interest mode: to every
    /// wanted channel, in batches), all within `probe_timeout` per step.
    async fn connect(&mut self, node: &Node) -> Result<(PubSubSink, PubSubStream), LinkError> {
        let limit = self.probe_timeout;
        let (mut control, stream) = pubsub_connection(node, limit).await?.split();
        let channels = [BROADCAST_CHANNEL, self.shared.probe_channel.as_str()];
        within(limit, control.subscribe(&channels[..])).await?;
        if self.mode == SubscribeMode::Patterns {
            within(limit, control.psubscribe(&PATTERNS[..])).await?;
            self.subscriptions.interest().cover_all();
        } else {
            for batch in self.subscriptions.reset() {
                within(limit, control.subscribe(names(&batch))).await?;
                self.subscriptions.restored(&batch);
                self.shared.count_subscribed(batch.len());
            }
        }
        self.report_held();
        Ok((control, stream))
    }

    fn on_up(&mut self, node: &Node) {
        let failed = self.backoff.attempts();
        self.backoff.reset();
        self.shared.set_subscriber(LinkState::Up);
        if self.announced_down {
            tracing::info!(node = %node.addr, failed_attempts = failed, "redis: subscriber restored, all channels resubscribed");
        } else {
            tracing::info!(node = %node.addr, mode = %self.mode, channels = self.subscriptions.held(), "redis: subscriber ready");
        }
        self.announced_down = false;
    }

    fn on_lost(&mut self, node: &Node, why: &str) {
        self.subscriptions.lost();
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

    /// Deliver messages, and keep the subscriptions in step with the interest, until the
    /// connection fails, the probe goes unanswered, or stop.
    async fn listen(
        &mut self,
        (mut control, mut stream): (PubSubSink, PubSubStream),
        stop: &mut StopSignal,
    ) -> Ended {
        let interest = self.subscriptions.interest().clone();
        let per_channel = self.mode != SubscribeMode::Patterns;
        let mut probe = Probe::new();
        let mut in_flight: Option<InFlight> = None;
        // Changes may have come while the connection was being set up.
        let mut look = per_channel;
        let timer = sleep(self.probe_interval);
        tokio::pin!(timer);
        loop {
            if look && in_flight.is_none() {
                in_flight = self.subscriptions.next().map(|op| self.send(&control, op));
                look = false;
            }
            // Subscription work goes before messages: under a flood of messages a join
            // still gets its SUBSCRIBE out at once.
            tokio::select! {
                biased;
                () = stop.wait() => {
                    self.unsubscribe(&mut control).await;
                    return Ended::Stopped;
                }
                (op, result) = async { in_flight.as_mut().expect("guarded by is_some").await },
                    if in_flight.is_some() => {
                    in_flight = None;
                    if let Err(e) = result {
                        return Ended::Lost(format!("{} failed: {e}", op.kind.command()));
                    }
                    self.completed(&op);
                    look = true;
                }
                () = interest.changed(), if per_channel && !look && in_flight.is_none() => {
                    look = true;
                }
                msg = stream.next() => match msg {
                    Some(msg) => {
                        probe.heard();
                        self.handle(&msg);
                    }
                    None => return Ended::Lost("connection closed".to_owned()),
                },
                () = &mut timer => {
                    if let Err(why) = self.on_timer(&mut probe, timer.as_mut()) {
                        return Ended::Lost(why);
                    }
                }
            }
        }
    }

    /// The probe timer fired: probe, give up on an unanswered probe, or wait on.
    fn on_timer(&self, probe: &mut Probe, timer: Pin<&mut Sleep>) -> Result<(), String> {
        let now = Instant::now();
        if let Some(sent) = probe.sent {
            if now >= sent + self.probe_timeout {
                self.shared.probe_timeouts.fetch_add(1, Ordering::Relaxed);
                let waited = self.probe_timeout.as_millis();
                return Err(format!("liveness probe unanswered for {waited} ms"));
            }
            timer.reset(sent + self.probe_timeout);
        } else if now >= probe.last_heard + self.probe_interval {
            // A full channel means a probe is already waiting: fine.
            let _ = self.probe.try_send(now);
            probe.sent = Some(now);
            timer.reset(now + self.probe_timeout);
        } else {
            timer.reset(probe.last_heard + self.probe_interval);
        }
        Ok(())
    }

    /// Sends one SUBSCRIBE or UNSUBSCRIBE; its answer comes back through the future.
    fn send(&self, control: &PubSubSink, op: Op) -> InFlight {
        let mut control = control.clone();
        let limit = self.probe_timeout;
        self.shared
            .subscribe_commands
            .fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let result = {
                let channels = names(&op.channels);
                match op.kind {
                    OpKind::Subscribe => within(limit, control.subscribe(channels)).await,
                    OpKind::Unsubscribe => within(limit, control.unsubscribe(channels)).await,
                }
            };
            (op, result)
        })
    }

    /// Redis answered `op`: count it, and end the window of each channel it subscribed.
    fn completed(&mut self, op: &Op) {
        self.subscriptions.completed(op);
        let count = op.channels.len();
        match op.kind {
            OpKind::Subscribe => {
                self.shared.count_subscribed(count);
                let now = std::time::Instant::now();
                for since in &op.since {
                    self.sink
                        .subscription_window(now.saturating_duration_since(*since));
                }
            }
            OpKind::Unsubscribe => self.shared.count_unsubscribed(count),
        }
        self.report_held();
    }

    /// One pub/sub message: skip probes and our own envelopes, count and log malformed ones,
    /// deliver the rest.
    fn handle(&self, msg: &Msg) {
        let channel = msg.get_channel_name();
        if channel == self.shared.probe_channel {
            return;
        }
        self.shared.received.fetch_add(1, Ordering::Relaxed);
        if self.is_unwanted(channel) {
            self.shared.unwanted.fetch_add(1, Ordering::Relaxed);
        }
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

    /// Whether a message on `channel` is for nobody here. In interest mode the connection
    /// holds what is wanted, so its own set answers (no lock on the message path; what
    /// still arrives is a straggler after an UNSUBSCRIBE); in patterns mode, which hears
    /// everything, the interest does.
    fn is_unwanted(&self, channel: &str) -> bool {
        channel != BROADCAST_CHANNEL
            && match self.mode {
                SubscribeMode::Interest => !self.subscriptions.holds(channel),
                SubscribeMode::Patterns => !self.subscriptions.interest().wants(channel),
            }
    }

    /// Publishes what the connection holds now, for the status and metrics.
    fn report_held(&self) {
        match self.mode {
            SubscribeMode::Patterns => self.shared.set_held(BASE_CHANNELS, PATTERNS.len()),
            SubscribeMode::Interest => self
                .shared
                .set_held(BASE_CHANNELS + self.subscriptions.held(), 0),
        }
    }

    /// Best-effort clean goodbye before the connection is dropped: UNSUBSCRIBE and
    /// PUNSUBSCRIBE without arguments leave everything.
    async fn unsubscribe(&self, control: &mut PubSubSink) {
        let none: [&str; 0] = [];
        let _ = tokio::time::timeout(UNSUBSCRIBE_GRACE, async {
            control.unsubscribe(&none[..]).await?;
            match self.mode {
                SubscribeMode::Patterns => control.punsubscribe(&none[..]).await,
                _ => Ok(()),
            }
        })
        .await;
    }
}

/// `ws:broadcast` and the probe channel, held in every mode.
const BASE_CHANNELS: usize = 2;

/// The liveness probe's clock.
struct Probe {
    /// When the connection last delivered anything.
    last_heard: Instant,
    /// When the unanswered probe was asked for.
    sent: Option<Instant>,
}

impl Probe {
    fn new() -> Self {
        Probe {
            last_heard: Instant::now(),
            sent: None,
        }
    }

    /// Anything that arrives answers the probe.
    fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.sent = None;
    }
}

/// Channel names as redis-rs takes them.
fn names(channels: &[Box<str>]) -> Vec<&str> {
    channels.iter().map(|c| &**c).collect()
}

impl OpKind {
    /// The Redis command, for logs.
    fn command(self) -> &'static str {
        match self {
            OpKind::Subscribe => "SUBSCRIBE",
            OpKind::Unsubscribe => "UNSUBSCRIBE",
        }
    }
}

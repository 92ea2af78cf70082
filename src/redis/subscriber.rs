//! The subscriber task: owns the one pub/sub connection (in sharded mode: one cluster
//! connection, [`super::sharded`]), keeps it subscribed (to the patterns, or to the
//! channels of the process's interest: [`super::subscriptions`]), probes it, and hands
//! envelopes to the sink in arrival order. Contract: see [`crate::redis`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{Msg, PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep, sleep};

use super::backoff::{Backoff, LogLimiter};
use super::bridge::EnvelopeSink;
use super::bridge::{LOG_EVERY, Shared, StopSignal};
use super::nodes::{LinkError, Node, Nodes, pubsub_connection, within};
use super::sharded::{self, check_sharded, per_slot};
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
    /// Patterns, or the channels of the interest (classic or sharded).
    mode: SubscribeMode,
    /// Every configured URL (sharded mode connects to the cluster through all of them).
    urls: Vec<String>,
    /// Sharded mode: whether [`check_sharded`] ran (once, on the first connection).
    checked: bool,
    /// The channels held in interest mode (and the interest, in every mode: it tells
    /// which envelopes nobody here wanted).
    subscriptions: Subscriptions,
}

/// A SUBSCRIBE or UNSUBSCRIBE on its way, with its answer.
type InFlight = BoxFuture<'static, (Op, Result<(), LinkError>)>;

/// The command half of the subscriber's connection.
#[derive(Clone)]
enum Control {
    /// A classic pub/sub connection to one node.
    Classic(PubSubSink),
    /// A cluster connection (sharded mode): one connection per master, by slot.
    Sharded(ClusterConnection),
}

/// Where the connection's messages arrive.
enum Pushes {
    Classic(PubSubStream),
    /// Every RESP3 push of every master's connection.
    Sharded(mpsc::UnboundedReceiver<PushInfo>),
}

/// One thing that arrived on the connection.
enum Arrival {
    Classic(Msg),
    Push(PushInfo),
    Closed,
}

impl Control {
    /// SUBSCRIBE/UNSUBSCRIBE `channels` (in sharded mode SSUBSCRIBE/SUNSUBSCRIBE, one
    /// command per slot, all at once), bounded by `limit`.
    async fn change(
        &mut self,
        kind: OpKind,
        channels: Vec<&str>,
        limit: Duration,
    ) -> Result<(), LinkError> {
        match self {
            Control::Classic(sink) => match kind {
                OpKind::Subscribe => within(limit, sink.subscribe(channels)).await,
                OpKind::Unsubscribe => within(limit, sink.unsubscribe(channels)).await,
            },
            Control::Sharded(conn) => {
                let each = per_slot(
                    conn,
                    channels,
                    |c| c.as_bytes(),
                    |mut conn, group| async move {
                        match kind {
                            OpKind::Subscribe => conn.ssubscribe(group).await,
                            OpKind::Unsubscribe => conn.sunsubscribe(group).await,
                        }
                    },
                );
                within(limit, each).await
            }
        }
    }
}

impl Pushes {
    async fn next(&mut self) -> Arrival {
        match self {
            Pushes::Classic(stream) => stream
                .next()
                .await
                .map_or(Arrival::Closed, Arrival::Classic),
            Pushes::Sharded(rx) => rx.recv().await.map_or(Arrival::Closed, Arrival::Push),
        }
    }
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
        subscriptions: Subscriptions,
    ) -> Self {
        Subscriber {
            mode: settings.subscribe,
            urls: settings.urls.clone(),
            checked: false,
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
            let node = self.nodes.for_attempt(self.mode == SubscribeMode::Sharded);
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

    /// Open a pub/sub connection and subscribe to everything (in interest and sharded mode:
    /// to every wanted channel, in batches), all within `probe_timeout` per step.
    async fn connect(&mut self, node: &Node) -> Result<(Control, Pushes), LinkError> {
        let limit = self.probe_timeout;
        let (mut control, pushes) = match self.mode {
            SubscribeMode::Sharded => {
                self.check_once(limit).await;
                let (conn, rx) = sharded::subscriber_connection(&self.urls, limit).await?;
                (Control::Sharded(conn), Pushes::Sharded(rx))
            }
            _ => {
                let (sink, stream) = pubsub_connection(node, limit).await?.split();
                (Control::Classic(sink), Pushes::Classic(stream))
            }
        };
        let base = vec![BROADCAST_CHANNEL, self.shared.probe_channel.as_str()];
        control.change(OpKind::Subscribe, base, limit).await?;
        match &mut control {
            Control::Classic(sink) if self.mode == SubscribeMode::Patterns => {
                within(limit, sink.psubscribe(&PATTERNS[..])).await?;
                self.subscriptions.interest().cover_all();
            }
            _ => {
                for batch in self.subscriptions.reset() {
                    control
                        .change(OpKind::Subscribe, names(&batch), limit)
                        .await?;
                    self.subscriptions.restored(&batch);
                    self.shared.count_subscribed(batch.len());
                }
            }
        }
        self.report_held();
        Ok((control, pushes))
    }

    /// Sharded mode, first connection: say loudly when the cluster cannot carry the mode
    /// (`shardcast serve` refuses to start on the same check; an embedded engine logs it).
    async fn check_once(&mut self, limit: Duration) {
        if std::mem::replace(&mut self.checked, true) {
            return;
        }
        match check_sharded(&self.urls, limit).await {
            Ok(()) => {}
            Err(e @ sharded::ShardedCheckError::Unreachable { .. }) => {
                tracing::debug!("redis: sharded check skipped: {e}");
                self.checked = false;
            }
            Err(e) => tracing::error!("redis: sharded pub/sub will lose messages: {e}"),
        }
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
        (mut control, mut pushes): (Control, Pushes),
        stop: &mut StopSignal,
    ) -> Ended {
        let interest = self.subscriptions.interest().clone();
        let per_channel = self.mode.per_channel();
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
                arrival = pushes.next() => match arrival {
                    Arrival::Classic(msg) => {
                        probe.heard();
                        let payload = msg.get_payload_bytes().to_vec();
                        self.handle(msg.get_channel_name(), payload);
                    }
                    Arrival::Push(push) => {
                        probe.heard();
                        match self.on_push(push) {
                            Ok(dropped) => look |= dropped,
                            Err(why) => return Ended::Lost(why),
                        }
                    }
                    Arrival::Closed => return Ended::Lost("connection closed".to_owned()),
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
    fn send(&self, control: &Control, op: Op) -> InFlight {
        let mut control = control.clone();
        let limit = self.probe_timeout;
        self.shared
            .subscribe_commands
            .fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let result = control.change(op.kind, names(&op.channels), limit).await;
            (op, result)
        })
    }

    /// A RESP3 push (sharded mode). `Ok(true)` when Redis dropped a channel we hold (its
    /// slot moved to another master), which must be subscribed again; `Err` when one of
    /// the cluster's connections closed (everything is then set up anew).
    fn on_push(&mut self, push: PushInfo) -> Result<bool, String> {
        match push.kind {
            PushKind::SMessage => {
                // The push owns its payload: parse it in place, no copy.
                let mut data = push.data.into_iter();
                if let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
                    (data.next(), data.next())
                    && let Ok(channel) = std::str::from_utf8(&channel)
                {
                    self.handle(channel, payload);
                }
                Ok(false)
            }
            // Our own SUNSUBSCRIBEs are answered with these too, but by then the channel
            // is no longer held; one for a held channel comes from Redis itself.
            PushKind::SUnsubscribe => match text(push.data.first()) {
                Some(channel) if self.subscriptions.holds(channel) => {
                    tracing::debug!(
                        channel,
                        "redis: Redis dropped a sharded channel (slot moved); subscribing again"
                    );
                    self.subscriptions.dropped(channel);
                    self.report_held();
                    Ok(true)
                }
                _ => Ok(false),
            },
            PushKind::Disconnection => Err("a cluster node's connection closed".to_owned()),
            _ => Ok(false),
        }
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
    fn handle(&self, channel: &str, mut payload: Vec<u8>) {
        if channel == self.shared.probe_channel {
            return;
        }
        self.shared.received.fetch_add(1, Ordering::Relaxed);
        if self.is_unwanted(channel) {
            self.shared.unwanted.fetch_add(1, Ordering::Relaxed);
        }
        match Envelope::parse(&mut payload) {
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
                SubscribeMode::Interest | SubscribeMode::Sharded => {
                    !self.subscriptions.holds(channel)
                }
                SubscribeMode::Patterns => !self.subscriptions.interest().wants(channel),
            }
    }

    /// Publishes what the connection holds now, for the status and metrics.
    fn report_held(&self) {
        match self.mode {
            SubscribeMode::Patterns => self.shared.set_held(BASE_CHANNELS, PATTERNS.len()),
            SubscribeMode::Interest | SubscribeMode::Sharded => self
                .shared
                .set_held(BASE_CHANNELS + self.subscriptions.held(), 0),
        }
    }

    /// Best-effort clean goodbye before the connection is dropped: UNSUBSCRIBE and
    /// PUNSUBSCRIBE without arguments leave everything. (A cluster connection's
    /// subscriptions end with its connections.)
    async fn unsubscribe(&self, control: &mut Control) {
        let Control::Classic(control) = control else {
            return;
        };
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

/// A push's text argument.
fn text(value: Option<&Value>) -> Option<&str> {
    match value {
        Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes).ok(),
        _ => None,
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

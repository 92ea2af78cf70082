//! The [`RedisBridge`] handle and the state it shares with its two tasks.
//!
//! Ownership: [`Shared`] (atomics only) is read and written by the handle (any thread) and
//! both tasks; the publish queue sender lives in the handle, its receiver in the publisher
//! task; the probe channel goes from the subscriber task to the publisher task. The stop
//! signal is a `watch` whose sender lives in the handle: sending `true` or dropping the last
//! handle stops both tasks (see the module doc of [`crate::redis`] for what they do then).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;

use super::backoff::LogLimiter;
use super::link::{BridgeStatus, LinkState};
use super::nodes::{Nodes, parse_url};
use super::publisher::Publisher;
use super::reader::Reader;
use super::scripts::LuaScript;
use super::subscriber::Subscriber;
use super::subscriptions::Subscriptions;
use super::{PROBE_CHANNEL_PREFIX, RedisConfigError, RedisSettings, SubscribeMode};
use crate::interest::Interest;
use crate::protocol::envelope::Envelope;

/// Receives every envelope from other processes, in Redis order.
///
/// Called on the bridge's subscriber task: it must be cheap and must not block (hand the
/// envelope to the broker and return). Envelopes with our own `serverId` never reach it.
pub trait EnvelopeSink: Send + Sync + 'static {
    /// Deliver one envelope to local clients.
    fn deliver(&self, envelope: Envelope);

    /// A channel's subscription took effect `window` after it was first wanted (interest
    /// mode): the join-to-subscription window, for metrics. Does nothing by default.
    fn subscription_window(&self, window: Duration) {
        let _ = window;
    }
}

/// Why [`RedisBridge::publish`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The publish queue is at its message or byte bound (Redis down or too slow); the
    /// message was dropped and counted. Raise `publish_queue`/`publish_queue_bytes` or fix Redis.
    #[error("Redis publish queue full; message dropped")]
    QueueFull,
    /// The bridge was shut down; nothing more is published.
    #[error("Redis bridge is shut down")]
    Closed,
}

/// The one Redis bridge of a process: a cheap, cloneable `Send + Sync` handle to the
/// subscriber and publisher tasks. See the [module docs](crate::redis) for the contract;
/// `tests/it/redis_bridge.rs` drives it against real Redis servers.
#[derive(Clone)]
pub struct RedisBridge {
    inner: Arc<Inner>,
}

const _: fn() = || {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<RedisBridge>();
};

struct Inner {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Outgoing>,
    max_bytes: usize,
    /// `publish_queue`: messages queued or in flight, at most.
    max_messages: usize,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Answers history and presence reads.
    reader: Arc<Reader>,
    /// The runtime the tasks (and reads) run on.
    runtime: tokio::runtime::Handle,
    /// The channels the subscriber follows in interest mode.
    interest: Arc<Interest>,
    /// How the subscriber listens.
    mode: SubscribeMode,
    /// How long [`RedisBridge::settled`] waits (`probe_timeout`).
    settle_limit: Duration,
}

/// Dropped when its message leaves the publish queue (published, refused or abandoned):
/// lets a publisher count what it has waiting.
pub type Release = Box<dyn Send + Sync>;

/// One queued command.
pub(crate) struct Outgoing {
    pub(crate) command: OutCommand,
    /// The publisher's sequence number of a sequenced [`OutCommand::Script`],
    /// given when it first goes into a pipeline and kept if the pipeline is sent again.
    pub(crate) seq: Option<u64>,
    /// Dropped with the message.
    _release: Option<Release>,
}

/// What a queued command does.
pub(crate) enum OutCommand {
    /// `PUBLISH channel payload`.
    Publish { channel: String, payload: Bytes },
    /// `EVALSHA` of one of [`super::scripts`] (history and presence). A sequenced
    /// script ([`LuaScript::sequenced`]) also gets this node's server id and the
    /// message's sequence number as its last two arguments, so that running it again (a
    /// pipeline resent after a failure that may have run part of it) changes nothing.
    Script {
        script: &'static LuaScript,
        keys: [String; 2],
        args: Vec<Bytes>,
    },
}

impl Outgoing {
    /// What this message counts against `publish_queue_bytes`.
    pub(crate) fn size(&self) -> usize {
        match &self.command {
            OutCommand::Publish { channel, payload } => channel.len() + payload.len(),
            OutCommand::Script { keys, args, .. } => {
                keys.iter().map(String::len).sum::<usize>()
                    + args.iter().map(Bytes::len).sum::<usize>()
            }
        }
    }
}

/// State shared by the handle and both tasks (atomics only, no locks).
pub(crate) struct Shared {
    pub(crate) server_id: String,
    pub(crate) probe_channel: String,
    subscriber: AtomicU8,
    publisher: AtomicU8,
    pub(crate) queued: AtomicUsize,
    pub(crate) queued_bytes: AtomicUsize,
    pub(crate) published: AtomicU64,
    pub(crate) publish_dropped: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) ignored_own: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) publisher_reconnects: AtomicU64,
    pub(crate) probe_timeouts: AtomicU64,
    /// Channels the subscriber holds (SUBSCRIBEs sent on its connection, base included).
    channels_held: AtomicUsize,
    /// Patterns the subscriber holds.
    patterns_held: AtomicUsize,
    /// Channels subscribed (each reconnect's restore included).
    subscribed: AtomicU64,
    /// Channels unsubscribed.
    unsubscribed: AtomicU64,
    /// SUBSCRIBE and UNSUBSCRIBE commands sent for the interest.
    pub(crate) subscribe_commands: AtomicU64,
    /// Messages received on a channel nobody here wanted at arrival.
    pub(crate) unwanted: AtomicU64,
    drop_log: LogLimiter,
}

/// Interval of every rate-limited warning of the bridge.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

impl Shared {
    fn new(server_id: String) -> Self {
        let probe_channel = format!("{PROBE_CHANNEL_PREFIX}{server_id}");
        let zero = || AtomicU64::new(0);
        Shared {
            server_id,
            probe_channel,
            subscriber: AtomicU8::new(LinkState::Connecting as u8),
            publisher: AtomicU8::new(LinkState::Connecting as u8),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            published: zero(),
            publish_dropped: zero(),
            received: zero(),
            delivered: zero(),
            ignored_own: zero(),
            malformed: zero(),
            reconnects: zero(),
            publisher_reconnects: zero(),
            probe_timeouts: zero(),
            channels_held: AtomicUsize::new(0),
            patterns_held: AtomicUsize::new(0),
            subscribed: zero(),
            unsubscribed: zero(),
            subscribe_commands: zero(),
            unwanted: zero(),
            drop_log: LogLimiter::new(LOG_EVERY),
        }
    }

    /// What the subscriber's connection holds now.
    pub(crate) fn set_held(&self, channels: usize, patterns: usize) {
        self.channels_held.store(channels, Ordering::Relaxed);
        self.patterns_held.store(patterns, Ordering::Relaxed);
    }

    /// Counts channels subscribed.
    pub(crate) fn count_subscribed(&self, channels: usize) {
        self.subscribed
            .fetch_add(channels as u64, Ordering::Relaxed);
    }

    /// Counts channels unsubscribed.
    pub(crate) fn count_unsubscribed(&self, channels: usize) {
        self.unsubscribed
            .fetch_add(channels as u64, Ordering::Relaxed);
    }

    pub(crate) fn set_subscriber(&self, state: LinkState) {
        self.subscriber.store(state as u8, Ordering::Release);
    }

    pub(crate) fn set_publisher(&self, state: LinkState) {
        self.publisher.store(state as u8, Ordering::Release);
    }

    fn subscriber(&self) -> LinkState {
        decode_state(self.subscriber.load(Ordering::Acquire))
    }

    fn publisher(&self) -> LinkState {
        decode_state(self.publisher.load(Ordering::Acquire))
    }

    /// Give back the queue budget of messages that left the queue (sent or abandoned).
    pub(crate) fn release(&self, messages: usize, bytes: usize) {
        self.queued.fetch_sub(messages, Ordering::AcqRel);
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Count dropped messages, with a warning at most once per [`LOG_EVERY`].
    pub(crate) fn count_dropped(&self, messages: u64, why: &str) {
        self.publish_dropped.fetch_add(messages, Ordering::Relaxed);
        if let Some(suppressed) = self.drop_log.check() {
            tracing::warn!(
                dropped = messages,
                suppressed,
                "redis: {why}; message dropped (publish_dropped counts them all)"
            );
        }
    }
}

fn decode_state(raw: u8) -> LinkState {
    match raw {
        x if x == LinkState::Up as u8 => LinkState::Up,
        x if x == LinkState::Down as u8 => LinkState::Down,
        x if x == LinkState::Stopped as u8 => LinkState::Stopped,
        _ => LinkState::Connecting,
    }
}

/// The stop signal as seen by a task.
#[derive(Clone)]
pub(crate) struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Completes once stop was requested or every handle is gone. Cancel-safe.
    pub(crate) async fn wait(&mut self) {
        loop {
            if *self.0.borrow_and_update() {
                return;
            }
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

impl RedisBridge {
    /// Spawns the subscriber and publisher tasks on `runtime` and returns at once: Redis being down at start is not an error.
    ///
    /// `server_id` is this process' id (a UUID v4): envelopes carrying it are skipped. Errors
    /// only for settings that can never work (no URL, unparsable URL, zero bounds). In
    /// interest mode the bridge starts with an empty [`Interest`] (see
    /// [`RedisBridge::interest`]); an engine hands its own with
    /// [`RedisBridge::start_with_interest`].
    pub fn start(
        settings: RedisSettings,
        server_id: String,
        sink: Arc<dyn EnvelopeSink>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<RedisBridge, RedisConfigError> {
        Self::start_with_interest(settings, server_id, sink, Arc::default(), runtime)
    }

    /// [`RedisBridge::start`] with the channels `interest` holds: in interest mode the
    /// subscriber SUBSCRIBEs exactly those (and `ws:broadcast`), following its changes.
    pub fn start_with_interest(
        settings: RedisSettings,
        server_id: String,
        sink: Arc<dyn EnvelopeSink>,
        interest: Arc<Interest>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<RedisBridge, RedisConfigError> {
        let nodes = validate(&settings)?;
        let shared = Arc::new(Shared::new(server_id));
        let (queue_tx, queue_rx) = mpsc::channel(settings.publish_queue);
        let (probe_tx, probe_rx) = mpsc::channel(1);
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop = StopSignal(stop_rx);
        let subscriptions = Subscriptions::new(interest.clone());
        let subscriber = Subscriber::new(
            &settings,
            nodes.clone(),
            shared.clone(),
            sink,
            probe_tx,
            subscriptions,
        );
        let reader = Arc::new(Reader::new(nodes.clone(), settings.probe_timeout));
        let publisher = Publisher::new(&settings, nodes, shared.clone(), queue_rx, probe_rx);
        let tasks = vec![
            runtime.spawn(subscriber.run(stop.clone())),
            runtime.spawn(publisher.run(stop)),
        ];
        Ok(RedisBridge {
            inner: Arc::new(Inner {
                shared,
                queue: queue_tx,
                max_bytes: settings.publish_queue_bytes,
                max_messages: settings.publish_queue,
                stop: stop_tx,
                tasks: Mutex::new(tasks),
                reader,
                runtime: runtime.clone(),
                interest,
                mode: settings.subscribe,
                settle_limit: settings.probe_timeout,
            }),
        })
    }

    /// The channels the subscriber follows in interest mode.
    pub fn interest(&self) -> &Arc<Interest> {
        &self.inner.interest
    }

    /// How the subscriber listens.
    pub fn subscribe_mode(&self) -> SubscribeMode {
        self.inner.mode
    }

    /// Completes once `channel` is confirmed subscribed or not wanted (in patterns mode:
    /// once the patterns are), or after `probe_timeout` (then `false`): a history or presence read awaits
    /// this first, so that every later message of the room reaches this node.
    pub fn settled(&self, channel: &str) -> impl std::future::Future<Output = bool> + Send + use<> {
        let inner = self.inner.clone();
        let channel = channel.to_owned();
        async move {
            let settled = inner.interest.settled(&channel);
            tokio::time::timeout(inner.settle_limit, settled)
                .await
                .is_ok()
        }
    }

    /// Non-blocking, callable from any thread (including threads that are not in a tokio runtime): queue PUBLISH channel payload.
    ///
    /// Fails (and counts `publish_dropped`) when the queue is at its message or byte bound.
    pub fn publish(&self, channel: String, payload: Bytes) -> Result<(), PublishError> {
        self.publish_with(channel, payload, None)
    }

    /// Like [`RedisBridge::publish`]; `release` is dropped when the message leaves the
    /// queue (published, refused, or abandoned at shutdown).
    pub fn publish_with(
        &self,
        channel: String,
        payload: Bytes,
        release: Option<Release>,
    ) -> Result<(), PublishError> {
        self.enqueue(OutCommand::Publish { channel, payload }, release)
    }

    /// Queues one of the history and presence scripts, in order with the PUBLISHes and
    /// under the same bounds.
    pub(crate) fn run_script(
        &self,
        script: &'static LuaScript,
        keys: [String; 2],
        args: Vec<Bytes>,
    ) -> Result<(), PublishError> {
        self.enqueue(OutCommand::Script { script, keys, args }, None)
    }

    /// Runs a script now on the query connection and returns its answer (history and
    /// presence reads). Callable from any runtime: the work runs on the bridge's.
    pub(crate) fn query_script(
        &self,
        script: &'static LuaScript,
        keys: [String; 2],
        args: Vec<Bytes>,
    ) -> impl std::future::Future<Output = Result<redis::Value, String>> + Send + 'static {
        let reader = self.inner.reader.clone();
        let task = self
            .inner
            .runtime
            .spawn(async move { reader.eval(script, &keys, &args).await });
        async move { task.await.map_err(|e| e.to_string())? }
    }

    fn enqueue(&self, command: OutCommand, release: Option<Release>) -> Result<(), PublishError> {
        let inner = &*self.inner;
        let shared = &*inner.shared;
        let message = Outgoing {
            command,
            seq: None,
            _release: release,
        };
        let size = message.size();
        let before = shared.queued_bytes.fetch_add(size, Ordering::AcqRel);
        if before.saturating_add(size) > inner.max_bytes {
            shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            shared.count_dropped(1, "publish queue byte bound reached");
            return Err(PublishError::QueueFull);
        }
        // The channel alone bounds what waits in it; the messages the publisher took
        // into its pipeline (in flight, possibly held across a reconnect) count too.
        if shared.queued.fetch_add(1, Ordering::AcqRel) >= inner.max_messages {
            shared.release(1, size);
            shared.count_dropped(1, "publish queue full");
            return Err(PublishError::QueueFull);
        }
        match inner.queue.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                shared.release(1, size);
                shared.count_dropped(1, "publish queue full");
                Err(PublishError::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                shared.release(1, size);
                Err(PublishError::Closed)
            }
        }
    }

    /// Queue an envelope on its Ignis channel (see [`Envelope::channel`]).
    pub fn publish_envelope(&self, envelope: &Envelope) -> Result<(), PublishError> {
        self.publish(envelope.channel(), Bytes::from(envelope.encode()))
    }

    /// Subscriber state, publisher state and counters.
    pub fn status(&self) -> BridgeStatus {
        let s = &*self.inner.shared;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BridgeStatus {
            subscriber: s.subscriber(),
            publisher: s.publisher(),
            queued: s.queued.load(Ordering::Relaxed),
            queued_bytes: s.queued_bytes.load(Ordering::Relaxed),
            published: get(&s.published),
            publish_dropped: get(&s.publish_dropped),
            received: get(&s.received),
            delivered: get(&s.delivered),
            ignored_own: get(&s.ignored_own),
            malformed: get(&s.malformed),
            reconnects: get(&s.reconnects),
            publisher_reconnects: get(&s.publisher_reconnects),
            probe_timeouts: get(&s.probe_timeouts),
            channels: s.channels_held.load(Ordering::Relaxed),
            patterns: s.patterns_held.load(Ordering::Relaxed),
            subscribed: get(&s.subscribed),
            unsubscribed: get(&s.unsubscribed),
            subscribe_commands: get(&s.subscribe_commands),
            unwanted: get(&s.unwanted),
        }
    }

    /// True when the subscriber is connected AND subscribed to every channel and pattern.
    pub fn is_ready(&self) -> bool {
        self.inner.shared.subscriber() == LinkState::Up
    }

    /// This process' `serverId`.
    pub fn server_id(&self) -> &str {
        &self.inner.shared.server_id
    }

    /// Stop both tasks and wait for them: the subscriber unsubscribes and disconnects, the
    /// publisher flushes its queue (at most 2 s, when connected) and sends QUIT. Idempotent;
    /// concurrent callers all return once the tasks are gone.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let mut tasks = self.inner.tasks.lock().await;
        for task in tasks.drain(..) {
            if let Err(e) = task.await {
                tracing::error!("redis: bridge task ended abnormally: {e}");
            }
        }
    }
}

/// Upper bound of `publish_queue` (tokio's channel capacity limit is far above it).
const MAX_QUEUE: usize = 1 << 28;

/// Check settings and parse every URL.
fn validate(settings: &RedisSettings) -> Result<Nodes, RedisConfigError> {
    let invalid = |name, reason| Err(RedisConfigError::InvalidSetting { name, reason });
    if settings.urls.is_empty() {
        return Err(RedisConfigError::NoUrls);
    }
    if settings.publish_queue == 0 || settings.publish_queue > MAX_QUEUE {
        return invalid("publish_queue", "must be between 1 and 2^28");
    }
    if settings.publish_queue_bytes == 0 {
        return invalid("publish_queue_bytes", "must be at least 1");
    }
    if settings.probe_interval.is_zero() {
        return invalid("probe_interval", "must be above zero");
    }
    if settings.probe_timeout.is_zero() {
        return invalid("probe_timeout", "must be above zero");
    }
    if settings.backoff_min > settings.backoff_max {
        return invalid("backoff_min", "must not exceed backoff_max");
    }
    let list = settings
        .urls
        .iter()
        .map(|url| {
            parse_url(url).map_err(|(url, source)| RedisConfigError::InvalidUrl { url, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Nodes::new(list).ok_or(RedisConfigError::NoUrls)
}

//! The publisher task: owns the one command connection and drains the publish queue into
//! pipelined PUBLISHes, probes first (in sharded mode: a cluster connection, and one
//! pipeline of SPUBLISHes per slot). Contract (bounds, resend, shutdown flush): see
//! [`crate::redis`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout_at};

use super::backoff::{Backoff, LogLimiter};
use super::bridge::{LOG_EVERY, OutCommand, Outgoing, Shared, StopSignal};
use super::nodes::{LinkError, Node, Nodes, command_connection, is_connection_problem, within};
use super::sharded::{self, per_slot};
use super::{LinkState, RedisSettings, SubscribeMode};

/// Most messages per pipeline.
const BATCH_MESSAGES: usize = 512;
/// Pipelines stop growing past this many bytes.
const BATCH_BYTES: usize = 1 << 20;
/// How long shutdown may spend flushing the queue.
const FLUSH_GRACE: Duration = Duration::from_secs(2);
/// Payload of a liveness probe (any payload would do; the channel is what matters).
const PROBE_PAYLOAD: &str = "probe";

pub(crate) struct Publisher {
    nodes: Nodes,
    shared: Arc<Shared>,
    queue: mpsc::Receiver<Outgoing>,
    probes: mpsc::Receiver<Instant>,
    backoff: Backoff,
    /// Bound of connects and commands (= `probe_timeout`).
    limit: Duration,
    /// A "down" line was logged and no "restored" line since.
    announced_down: bool,
    rejected_log: LogLimiter,
    /// The last sequence number given to a sequenced script (numbers only grow, in queue
    /// order: the order the scripts run in).
    next_seq: u64,
    /// Sharded mode: SPUBLISH through a cluster connection to `urls`.
    sharded: bool,
    urls: Vec<String>,
}

/// The publisher's connection.
enum Conn {
    /// One node: PUBLISH (a cluster's bus carries it to every node).
    Classic(MultiplexedConnection),
    /// The whole cluster, by slot: SPUBLISH.
    Sharded(ClusterConnection),
}

/// Loads every history and presence script on a new connection (`EVALSHA` needs them).
pub(crate) async fn load_scripts(
    mut conn: MultiplexedConnection,
    limit: Duration,
) -> Result<MultiplexedConnection, LinkError> {
    let mut pipe = redis::pipe();
    for script in super::scripts::all() {
        pipe.add_command(script.load_cmd()).ignore();
    }
    within(limit, pipe.query_async::<()>(&mut conn)).await?;
    Ok(conn)
}

/// The next pipeline: an optional probe followed by queued messages, in queue order.
#[derive(Default)]
struct Batch {
    probe: bool,
    items: Vec<Outgoing>,
    bytes: usize,
}

impl Batch {
    fn is_empty(&self) -> bool {
        !self.probe && self.items.is_empty()
    }

    fn is_full(&self) -> bool {
        self.items.len() >= BATCH_MESSAGES || self.bytes >= BATCH_BYTES
    }

    fn push(&mut self, message: Outgoing) {
        self.bytes += message.size();
        self.items.push(message);
    }
}

/// What ended the wait for work.
enum Idle {
    Work,
    Stop,
}

/// What a failed pipeline means.
enum Failure {
    /// The connection is gone or wedged: reconnect and resend the batch.
    Connection(LinkError),
    /// Redis answered with an error (ACL, …): resending would fail again; drop the batch.
    Rejected(redis::RedisError),
}

impl Publisher {
    pub(crate) fn new(
        settings: &RedisSettings,
        nodes: Nodes,
        shared: Arc<Shared>,
        queue: mpsc::Receiver<Outgoing>,
        probes: mpsc::Receiver<Instant>,
    ) -> Self {
        Publisher {
            nodes,
            shared,
            queue,
            probes,
            backoff: Backoff::new(settings.backoff_min, settings.backoff_max),
            limit: settings.probe_timeout,
            announced_down: false,
            rejected_log: LogLimiter::new(LOG_EVERY),
            next_seq: 0,
            sharded: settings.subscribe == SubscribeMode::Sharded,
            urls: settings.urls.clone(),
        }
    }

    /// Connect, publish, reconnect on failure; until stopped or every handle is gone.
    pub(crate) async fn run(mut self, mut stop: StopSignal) {
        let mut batch = Batch::default();
        loop {
            self.shared.set_publisher(LinkState::Connecting);
            let node = self.nodes.for_attempt(self.sharded);
            let attempt = tokio::select! {
                biased;
                () = stop.wait() => return self.finish(None, batch).await,
                attempt = self.connect(&node) => attempt,
            };
            let mut conn = match attempt {
                Ok(conn) => conn,
                Err(e) => {
                    if self.on_failed(&node, &e, &mut stop).await {
                        return self.finish(None, batch).await;
                    }
                    continue;
                }
            };
            self.on_up(&node);
            loop {
                if batch.is_empty()
                    && let Idle::Stop = self.next_batch(&mut batch, &mut stop).await
                {
                    return self.finish(Some(conn), batch).await;
                }
                match self.send(&mut conn, &batch).await {
                    Ok(()) => self.sent(&mut batch),
                    Err(Failure::Rejected(e)) => self.rejected(&mut batch, &e),
                    Err(Failure::Connection(e)) => {
                        // The probe is stale by the time we are back; the messages are not.
                        batch.probe = false;
                        self.on_lost(&node, &e);
                        break;
                    }
                }
            }
        }
    }

    /// A classic connection with the scripts loaded, or a cluster connection (sharded mode
    /// has no history or presence, so no scripts).
    async fn connect(&self, node: &Node) -> Result<Conn, LinkError> {
        if self.sharded {
            let conn = sharded::command_connection_to(&self.urls, self.limit).await?;
            return Ok(Conn::Sharded(conn));
        }
        let conn = command_connection(node, self.limit).await?;
        Ok(Conn::Classic(load_scripts(conn, self.limit).await?))
    }

    /// Wait for a probe request or a queued message, then top the batch up without waiting.
    async fn next_batch(&mut self, batch: &mut Batch, stop: &mut StopSignal) -> Idle {
        while batch.is_empty() {
            tokio::select! {
                biased;
                () = stop.wait() => return Idle::Stop,
                Some(asked) = self.probes.recv() => {
                    // A probe older than its deadline would only confuse a newer connection.
                    batch.probe = asked.elapsed() < self.limit;
                }
                message = self.queue.recv() => match message {
                    Some(message) => batch.push(self.sequence(message)),
                    None => return Idle::Stop,
                },
            }
        }
        self.top_up(batch);
        Idle::Work
    }

    /// Move queued messages into the batch until it is full or the queue is empty.
    fn top_up(&mut self, batch: &mut Batch) {
        while !batch.is_full() {
            match self.queue.try_recv() {
                Ok(message) => batch.push(self.sequence(message)),
                Err(_) => break,
            }
        }
    }

    /// Gives a sequenced script its number (once: a resent pipeline keeps it).
    fn sequence(&mut self, mut message: Outgoing) -> Outgoing {
        if let OutCommand::Script { script, .. } = &message.command
            && script.sequenced
            && message.seq.is_none()
        {
            self.next_seq += 1;
            message.seq = Some(self.next_seq);
        }
        message
    }

    /// One pipeline of PUBLISHes (probe first); in sharded mode one pipeline of
    /// SPUBLISHes per slot, all at once (a channel's messages keep their order: a channel
    /// is one slot).
    async fn send(&self, conn: &mut Conn, batch: &Batch) -> Result<(), Failure> {
        let result = match conn {
            Conn::Classic(conn) => {
                let mut pipe = redis::pipe();
                if batch.probe {
                    pipe.add_command(self.probe_cmd("PUBLISH").1).ignore();
                }
                for message in &batch.items {
                    pipe.add_command(self.command("PUBLISH", message).1)
                        .ignore();
                }
                within(self.limit, pipe.query_async::<()>(conn)).await
            }
            Conn::Sharded(conn) => {
                let probe = batch.probe.then(|| self.probe_cmd("SPUBLISH"));
                let commands = probe
                    .into_iter()
                    .chain(batch.items.iter().map(|m| self.command("SPUBLISH", m)));
                let each = per_slot(conn, commands, slot_key, |mut conn, group| {
                    let mut pipe = redis::pipe();
                    for (_, cmd) in group {
                        pipe.add_command(cmd).ignore();
                    }
                    async move { pipe.query_async::<()>(&mut conn).await }
                });
                within(self.limit, each).await
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(LinkError::Redis(e)) if !is_connection_problem(&e) => Err(Failure::Rejected(e)),
            Err(e) => Err(Failure::Connection(e)),
        }
    }

    /// The liveness probe, `publish` (PUBLISH or SPUBLISH) to our probe channel, with the
    /// channel (its slot's key).
    fn probe_cmd(&self, publish: &str) -> (&[u8], redis::Cmd) {
        let channel = &self.shared.probe_channel;
        let mut cmd = redis::cmd(publish);
        cmd.arg(channel).arg(PROBE_PAYLOAD);
        (channel.as_bytes(), cmd)
    }

    /// The command of one queued message, with its channel or first key (its slot's key).
    fn command<'m>(&self, publish: &str, message: &'m Outgoing) -> (&'m [u8], redis::Cmd) {
        match &message.command {
            OutCommand::Publish { channel, payload } => {
                let mut cmd = redis::cmd(publish);
                cmd.arg(channel).arg(&payload[..]);
                (channel.as_bytes(), cmd)
            }
            OutCommand::Script { script, keys, args } => {
                let mut cmd = script.eval_cmd(keys, args);
                if script.sequenced {
                    cmd.arg(&self.shared.server_id)
                        .arg(message.seq.unwrap_or(0));
                }
                (keys[0].as_bytes(), cmd)
            }
        }
    }

    fn sent(&self, batch: &mut Batch) {
        let n = batch.items.len();
        self.shared.published.fetch_add(n as u64, Ordering::Relaxed);
        self.shared.release(n, batch.bytes);
        *batch = Batch::default();
    }

    fn rejected(&self, batch: &mut Batch, error: &redis::RedisError) {
        let n = batch.items.len();
        self.shared.release(n, batch.bytes);
        self.shared
            .publish_dropped
            .fetch_add(n as u64, Ordering::Relaxed);
        if let Some(suppressed) = self.rejected_log.check() {
            tracing::error!(
                dropped = n,
                suppressed,
                "redis: PUBLISH refused by Redis ({error}); batch dropped"
            );
        }
        *batch = Batch::default();
    }

    fn on_up(&mut self, node: &Node) {
        let failed = self.backoff.attempts();
        self.backoff.reset();
        self.shared.set_publisher(LinkState::Up);
        let queued = self.shared.queued.load(Ordering::Relaxed);
        if self.announced_down {
            tracing::info!(node = %node.addr, failed_attempts = failed, queued, "redis: publisher restored; sending queued messages");
        } else {
            tracing::info!(node = %node.addr, "redis: publisher connected");
        }
        self.announced_down = false;
    }

    fn on_lost(&mut self, node: &Node, error: &LinkError) {
        self.shared
            .publisher_reconnects
            .fetch_add(1, Ordering::Relaxed);
        self.shared.set_publisher(LinkState::Down);
        tracing::warn!(node = %node.addr, "redis: publisher connection lost ({error}); queuing while reconnecting");
        self.announced_down = true;
        self.nodes.rotate();
    }

    /// Log (once per outage), rotate, sleep the backoff. Returns true when stopped.
    async fn on_failed(&mut self, node: &Node, error: &LinkError, stop: &mut StopSignal) -> bool {
        self.shared.set_publisher(LinkState::Down);
        if self.announced_down {
            tracing::debug!(node = %node.addr, "redis: publisher attempt failed ({error})");
        } else {
            tracing::warn!(node = %node.addr, "redis: publisher cannot connect ({error}); queuing and retrying with backoff");
            self.announced_down = true;
        }
        self.nodes.rotate();
        let delay = self.backoff.next_delay();
        tokio::select! {
            biased;
            () = stop.wait() => true,
            () = sleep(delay) => false,
        }
    }

    /// Stop accepting, flush for at most [`FLUSH_GRACE`] when connected, QUIT, and count
    /// whatever could not be sent as dropped.
    async fn finish(mut self, conn: Option<Conn>, mut batch: Batch) {
        self.queue.close();
        batch.probe = false;
        if let Some(mut conn) = conn {
            let deadline = Instant::now() + FLUSH_GRACE;
            loop {
                self.top_up(&mut batch);
                if batch.is_empty() {
                    break;
                }
                match timeout_at(deadline, self.send(&mut conn, &batch)).await {
                    Ok(Ok(())) => self.sent(&mut batch),
                    _ => break,
                }
            }
            if let Conn::Classic(conn) = &mut conn {
                let quit = redis::cmd("QUIT");
                let _ = within(Duration::from_millis(500), quit.query_async::<()>(conn)).await;
            }
        }
        let (mut count, mut bytes) = (batch.items.len(), batch.bytes);
        while let Ok(message) = self.queue.try_recv() {
            count += 1;
            bytes += message.size();
        }
        if count > 0 {
            self.shared.release(count, bytes);
            self.shared
                .count_dropped(count as u64, "bridge shut down before the queue was sent");
        }
        self.shared.set_publisher(LinkState::Stopped);
        tracing::debug!("redis: publisher stopped");
    }
}

/// A command's slot key, as [`Publisher::command`] pairs it.
fn slot_key<'k>(item: &'k (&[u8], redis::Cmd)) -> &'k [u8] {
    item.0
}

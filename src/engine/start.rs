//! Starting an engine, in order: validate, bind (unless it runs without a listener),
//! create the router and every shard's inbox, start the control thread (and the Redis
//! bridge), then the shards with their handoff queues; wait until every shard runs. A
//! failure at any step stops what already started.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use super::builder::{EngineBuilder, Listener};
use super::{Doorway, Engine, EngineError};
use crate::admission::Admission;
use crate::http::{ApiKey, Dashboard, HttpService, Keys};
use crate::metrics::{Metrics, ShardMetrics};
use crate::redis::SubscribeMode;
use crate::rooms::glob::RoomPolicy;
use crate::routing::broker::Broker;
use crate::routing::inbox::{ShardInbox, inbox};
use crate::routing::placement::ShardId;
use crate::routing::rooms::RoomFeatures;
use crate::routing::{Handle, Router};
use crate::shard::handoff::{HandoffReceiver, queue};
use crate::shard::{ShardContext, ShardStart};
use crate::tls::Tls;

/// The accept backlog: deep, for connection storms.
const LISTEN_BACKLOG: i32 = 4096;

/// Starts everything `builder` describes.
pub(super) fn start(mut builder: EngineBuilder) -> Result<Engine, EngineError> {
    builder.config.validate()?;
    let origins = builder.config.origin_policy()?;
    if builder.hooks.authenticator.is_none() {
        return Err(EngineError::NoAuthenticator);
    }
    if builder.tls.is_some() && matches!(builder.listener, Listener::None) {
        return Err(EngineError::TlsWithoutListener);
    }
    let tls = builder.tls.take().map(Tls::load).transpose()?.map(Arc::new);
    let listener = listen(&mut builder)?;
    let local_addr = listener.as_ref().map(|(_, addr)| *addr);
    let shard_count = builder.config.resolved_shards().min(usize::from(u16::MAX));
    let (router, inboxes, shard_metrics) = create_router(shard_count, &builder)?;
    // The remote exists before any connection is accepted.
    let control_thread = super::control::spawn(router.clone(), builder.redis, &builder.config)?;
    let handle = Handle::new(router);
    let api_key = ApiKey::new(builder.api_key);
    let keys = Keys {
        api: api_key.clone(),
        dashboard: builder.dashboard_key,
    };
    let mut ctx = context(builder.config, builder.hooks, (keys, origins), &handle);
    ctx.echo = builder.echo;
    ctx.tls = tls.as_ref().map(|tls| tls.server_config());
    let ctx = Arc::new(ctx);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..shard_count).map(|_| queue()).unzip();
    let listener = listener.map(|(listener, _)| listener);
    let shards = start_shards(listener.as_ref(), (inboxes, receivers), shard_metrics, &ctx);
    let shard_threads = shards.inspect_err(|_| handle.shutdown())?;
    log_started(&handle, &ctx, local_addr);
    Ok(Engine {
        handle,
        local_addr,
        shard_threads,
        control_thread: Some(control_thread),
        tls,
        api_key,
        doorway: Arc::new(Doorway::new(ctx.http.clone(), senders)),
    })
}

/// The engine's listening socket and its address (non-blocking), unless it runs without.
fn listen(builder: &mut EngineBuilder) -> Result<Option<(StdListener, SocketAddr)>, EngineError> {
    let addr = builder.config.listen;
    let listener = match std::mem::replace(&mut builder.listener, Listener::None) {
        Listener::Bind => bind(addr)?,
        Listener::Given(listener) => listener,
        Listener::None => return Ok(None),
    };
    let local_addr = listener
        .local_addr()
        .map_err(|source| EngineError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| EngineError::Runtime(e.to_string()))?;
    Ok(Some((listener, local_addr)))
}

/// The router, every shard's inbox and every shard's counters.
type Created = (Arc<Router>, Vec<ShardInbox>, Vec<Arc<ShardMetrics>>);

/// The router (with the shards' inboxes and counters), before any shard exists.
fn create_router(shard_count: usize, builder: &EngineBuilder) -> Result<Created, EngineError> {
    let config = &builder.config;
    let (history, presence) = (config.history_policy()?, config.presence_policy()?);
    let cluster = builder
        .redis
        .as_ref()
        .is_some_and(|r| r.urls.len() > 1 || r.subscribe == SubscribeMode::Sharded);
    if cluster && (history.is_some() || presence.is_some()) {
        return Err(EngineError::HistoryOnCluster);
    }
    let features = RoomFeatures::new(
        history,
        config.history_settings(),
        presence,
        builder.redis.is_some(),
    );
    let metrics = Arc::new(Metrics::default());
    let shard_metrics: Vec<Arc<ShardMetrics>> = (0..shard_count).map(|_| Arc::default()).collect();
    metrics.set_shards(shard_metrics.clone());
    let capacity = builder.config.shard_inbox_capacity;
    let (senders, inboxes): (Vec<_>, Vec<_>) = (0..shard_count)
        .map(|i| inbox(ShardId(i as u16), capacity))
        .unzip();
    let config = &builder.config;
    let compress_from = config.compression.then_some(config.compression_min_size);
    let broker = Broker::new(senders.into(), metrics.clone(), compress_from);
    let interest = builder.redis.as_ref().map(|_| Arc::default());
    Ok((
        Arc::new(Router::new(broker, metrics, features, interest)),
        inboxes,
        shard_metrics,
    ))
}

/// What every shard shares; `http` is the Bearer keys and the compiled origin allow-list.
fn context(
    config: crate::config::EngineConfig,
    hooks: crate::hooks::Hooks,
    (keys, origins): (Keys, Option<RoomPolicy>),
    handle: &Handle,
) -> ShardContext {
    let http = HttpService {
        handle: handle.clone(),
        path: config.path.clone(),
        keys,
        dashboard: Dashboard::new(config.dashboard),
        request_timeout: config.request_timeout,
        origins,
        admission: Arc::new(Admission::new(&config)),
        endpoints: config.endpoints,
        compression: config.compression,
    };
    ShardContext {
        config,
        hooks,
        http: Arc::new(http),
        handle: handle.clone(),
        echo: false,
        tls: None,
    }
}

/// Spawns every shard (on its own handle of the listener, if any) with its inbox and
/// handoff queue, and waits until each runs.
fn start_shards(
    listener: Option<&StdListener>,
    (inboxes, handoffs): (Vec<ShardInbox>, Vec<HandoffReceiver>),
    metrics: Vec<Arc<ShardMetrics>>,
    ctx: &Arc<ShardContext>,
) -> Result<Vec<JoinHandle<()>>, EngineError> {
    let runtime_error = |e: std::io::Error| EngineError::Runtime(e.to_string());
    let (ready, ready_rx) = mpsc::channel();
    let mut threads = Vec::with_capacity(inboxes.len());
    let queues = inboxes.into_iter().zip(handoffs);
    for (i, ((inbox, handoffs), metrics)) in queues.zip(metrics).enumerate() {
        let start = ShardStart {
            id: ShardId(i as u16),
            inbox,
            handoffs,
            listener: listener
                .map(StdListener::try_clone)
                .transpose()
                .map_err(runtime_error)?,
            ctx: ctx.clone(),
            metrics,
            ready: ready.clone(),
        };
        threads.push(crate::shard::spawn(start).map_err(runtime_error)?);
    }
    drop(ready);
    await_ready(&ready_rx, threads.len())?;
    Ok(threads)
}

/// Waits for `count` shards to report that they run.
fn await_ready(
    ready: &mpsc::Receiver<Result<(), String>>,
    count: usize,
) -> Result<(), EngineError> {
    for _ in 0..count {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(EngineError::Runtime(why)),
            Err(_) => return Err(EngineError::Runtime("a shard thread died at start".into())),
        }
    }
    Ok(())
}

fn log_started(handle: &Handle, ctx: &ShardContext, addr: Option<SocketAddr>) {
    let addr = addr.map_or_else(|| "none (mounted)".to_owned(), |addr| addr.to_string());
    tracing::info!(
        server_id = %handle.server_id(),
        shards = handle.router.shard_count(),
        addr = %addr,
        path = %ctx.config.path,
        tls = ctx.tls.is_some(),
        "shardcast engine started"
    );
}

/// Binds with `SO_REUSEADDR` and a deep accept backlog (connection storms).
fn bind(addr: SocketAddr) -> Result<StdListener, EngineError> {
    let err = |source| EngineError::Bind { addr, source };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(LISTEN_BACKLOG).map_err(err)?;
    Ok(socket.into())
}

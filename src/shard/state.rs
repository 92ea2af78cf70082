//! A shard's state: its connection table, its indexes, the dirty list and the encrypt
//! queue, behind one `RefCell`, plus what it shares with the engine.
//!
//! Everything here runs on the shard's own thread (`Shard` is `!Send`: it holds `Rc`s and
//! `RefCell`s). A `RefCell` borrow is never held across an `.await`. The operations on
//! this state live in the sibling modules, one job each (`deliver`, `flush`, `session`,
//! `sweep`, `encrypt`, `commands`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use slab::Slab;

use super::encrypt::EncryptJob;
use super::index::{LocalIndex, Slot};
use super::pacing::{Clock, DirtyList, Pacer};
use super::recovery::Syncs;
use super::table::Entry;
use crate::config::EngineConfig;
use crate::conn::Backpressure;
use crate::hooks::Hooks;
use crate::http::HttpService;
use crate::id::ClientId;
use crate::metrics::ShardMetrics;
use crate::routing::Handle;
use crate::routing::placement::{ShardId, shard_for};
use crate::ws::decode::Limits;
use crate::ws::deflate::{Deflater, Inflater};

/// The size of the shard-wide read buffer every connection reads into.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// What every shard of an engine shares, built once by the engine.
pub(crate) struct ShardContext {
    /// The engine's settings.
    pub config: EngineConfig,
    /// The application's hooks.
    pub hooks: Hooks,
    /// HTTP on the engine's port (everything but the connection after the upgrade).
    pub http: Arc<HttpService>,
    /// The conformance server: echo every message instead of running the protocol
    /// (`examples/autobahn_echo.rs`; never set by the standalone server).
    pub echo: bool,
    /// The engine's handle (hooks receive it; `send` resolution publishes through it).
    pub handle: Handle,
    /// TLS on the port (`None`: plain TCP); it follows certificate reloads.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// One shard: its connections, its indexes, and what it shares with the engine.
pub(crate) struct Shard {
    pub id: ShardId,
    pub ctx: Arc<ShardContext>,
    pub metrics: Arc<ShardMetrics>,
    pub state: RefCell<ShardState>,
    /// The backpressure settings of every connection.
    pub backpressure: Backpressure,
    /// The read buffer shared by every connection of this shard (one read at a time).
    pub scratch: RefCell<Box<[u8]>>,
    /// Wakes the encryptor task when encrypt jobs are queued.
    pub encrypt_wake: tokio::sync::Notify,
    /// The clock write pacing is measured on.
    pub clock: Clock,
    /// Chooses how often a busy socket is written ([`super::pacing`]).
    pub pacer: RefCell<Pacer>,
    /// Wakes the flusher task when connections wait for their next write time.
    pub flush_wake: tokio::sync::Notify,
    /// Compresses messages for clients that negotiated permessage-deflate
    /// ([`super::compress`]); its state is made on first use.
    pub deflater: RefCell<Deflater>,
    /// Inflates every connection's compressed messages, one at a time.
    pub inflater: RefCell<Inflater>,
    /// Bytes all this shard's decoders hold in unfinished frames and fragmented messages.
    buffered: Cell<usize>,
    /// This shard's share of `max_buffered_bytes`.
    buffered_cap: usize,
}

/// The mutable part of a shard.
#[derive(Default)]
pub(crate) struct ShardState {
    pub conns: Slab<Entry>,
    pub index: LocalIndex,
    /// Connections with queued frames, written at the end of the current batch or when
    /// their write pacing allows.
    pub dirty: DirtyList,
    /// Messages for encrypted clients, sealed by the encryptor task in bounded batches.
    pub encrypt_queue: VecDeque<EncryptJob>,
    /// Members joining history rooms ([`super::recovery`]).
    pub syncs: Syncs,
}

impl Shard {
    /// Shard `id` of an engine.
    pub fn new(id: ShardId, ctx: Arc<ShardContext>, metrics: Arc<ShardMetrics>) -> Rc<Self> {
        let config = &ctx.config;
        let pacer = Pacer::new(config.write_coalesce_factor, config.max_write_delay);
        let backpressure = Backpressure::new(
            config.backpressure_limit,
            config.close_on_backpressure_limit,
        );
        let buffered_cap = config.max_buffered_bytes / ctx.handle.router.shard_count().max(1);
        let deflater = Deflater::new(config.compression_level);
        let index = LocalIndex::with_interest(ctx.handle.router.interest.clone());
        Rc::new(Shard {
            id,
            ctx,
            metrics,
            state: RefCell::new(ShardState {
                index,
                ..ShardState::default()
            }),
            backpressure,
            scratch: RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice()),
            encrypt_wake: tokio::sync::Notify::new(),
            clock: Clock::new(),
            pacer: RefCell::new(pacer),
            flush_wake: tokio::sync::Notify::new(),
            deflater: RefCell::new(deflater),
            inflater: RefCell::default(),
            buffered: Cell::new(0),
            buffered_cap,
        })
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.ctx.config
    }

    /// What a connection's decoder accepts.
    pub fn limits(&self) -> Limits {
        Limits {
            max_payload: self.ctx.config.max_payload_length,
            max_fragments: self.ctx.config.max_fragments,
        }
    }

    /// A decoder that held `before` bytes now holds `after`: counts the difference and
    /// says whether the shard is still within its share of `max_buffered_bytes` (a
    /// decoder that did not grow is always within).
    pub fn hold_buffered(&self, before: usize, after: usize) -> bool {
        let total = (self.buffered.get() + after).saturating_sub(before);
        self.buffered.set(total);
        after <= before || total <= self.buffered_cap
    }

    /// A new random client id that hashes to this shard (`hash(id) % shards == self`),
    /// so a connection accepted here also belongs here. Expected tries: the shard count.
    pub fn fresh_client_id(&self) -> ClientId {
        let shards = self.ctx.handle.router.shard_count();
        loop {
            let id = ClientId::new_v4();
            if shard_for(&id, shards) == self.id {
                return id;
            }
        }
    }

    /// The slot of a local client.
    pub fn slot_of(&self, id: &ClientId) -> Option<Slot> {
        self.state.borrow().index.client(id)
    }

    /// Runs `f` on a connection's entry, if it is still in the table.
    pub fn with_entry<R>(
        &self,
        slot: Slot,
        f: impl FnOnce(&mut Entry, &mut DirtyList) -> R,
    ) -> Option<R> {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, dirty, .. } = &mut *state;
        conns.get_mut(slot).map(|entry| f(entry, dirty))
    }

    /// Whether no connection is left.
    pub fn is_empty(&self) -> bool {
        self.state.borrow().conns.is_empty()
    }
}

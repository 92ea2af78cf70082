//! `shardcast-load`: the load tester bundled with shardcast. It benchmarks any server
//! speaking the Ignis WebSocket protocol — shardcast or the Ignis reference — through six
//! scenarios (`connect`, `fanout`, `chat`, `churn`, `soak`, `recovery`; see
//! `loadtest/README.md`).
//!
//! Architecture, and why it stays out of the way of what it measures:
//!
//! - [`ws`]: a minimal client WebSocket (hand-written upgrade, borrowing frame codec,
//!   one per-thread read buffer) so that one core reads millions of small frames/s.
//! - [`payload`]: timestamps and sequence numbers are found with a byte scan, never a
//!   JSON parse.
//! - [`runtime`]: `--threads N` workers, each a single-threaded tokio runtime; publisher
//!   and subscriber on their own threads; a timer-lag probe on each.
//! - [`stats`]: per-worker hdrhistograms and per-connection sequence trackers, merged at
//!   the end.
//! - [`meter`] and [`proc`]: the server's CPU/RSS from `/proc/<pid>`, and the load
//!   generator's own CPU, with a loud verdict when it saturated.
//! - [`scenario`]: the six scenarios; [`report`]: the human summary and the JSON file;
//!   [`traffic`]: its `wire` section (bytes on the wire per delivery, permessage-deflate
//!   agreed or not; `--compression` makes the clients offer it and inflate what comes).
//! - [`nodes`] and [`scrape`]: `fanout` over several server nodes (which client connects
//!   where) and each node's CPU and Prometheus counters over the measured window.
//! - [`timeline`] and [`ci`]: latency by send time; the plot, the HdrHistogram exports
//!   and the pass/fail thresholds that set the exit code.

pub mod app;
pub mod ci;
pub mod cli;
pub mod client_bench;
pub mod error;
pub mod meter;
pub mod nodes;
pub mod payload;
pub mod proc;
pub mod progress;
pub mod publisher;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod scrape;
pub mod session;
pub mod stats;
pub mod target;
pub mod timeline;
pub mod token;
pub mod traffic;
pub mod ws;

pub use error::{Error, Result};

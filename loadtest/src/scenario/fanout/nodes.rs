//! Per-node figures of a fan-out run: how many clients the placement gave each node,
//! how many it held, what its readers received, and — with `--node-pid` and
//! `--node-metric` — its CPU time and the named Prometheus metrics at both edges of the
//! measured window (publish start, drain end).
//!
//! The edges are sampled on the main thread between phases, node after node: metrics
//! first, then CPU (a scrape costs a node well under a millisecond). A scrape that fails
//! leaves that node's metrics absent and becomes a warning; it never fails the run.

use super::{Fanout, FanoutClient};
use crate::cli::NodeArgs;
use crate::error::{Error, Result};
use crate::nodes::Nodes;
use crate::proc::{self, ServerDelta, ServerProbe, Stamped, delta};
use crate::report::Summary;
use crate::scenario::fleet::Merged;
use crate::scrape;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What is read from every node at the edges of the measured window.
pub(super) struct NodeProbes {
    /// Address and `Host` header of each node's `/metrics`.
    endpoints: Vec<(SocketAddr, String)>,
    /// Server process of each node (empty: none given).
    pids: Vec<u32>,
    /// Metrics read on every node (empty: no scrape).
    metrics: Vec<String>,
}

/// One node at one edge of the measured window.
#[derive(Debug, Clone, Default)]
pub(super) struct NodeEdge {
    /// Its process's CPU and RSS (with `--node-pid`).
    cpu: Option<Stamped>,
    /// Each of `--node-metric`, in order (`None`: absent or the scrape failed).
    metrics: Vec<Option<f64>>,
    /// Why the scrape failed, if it did.
    scrape_error: Option<String>,
}

impl NodeProbes {
    /// The probes `--node-pid` and `--node-metric` ask for; every pid must be readable,
    /// and there must be one per node.
    pub(super) fn new(f: &NodeArgs, nodes: &Nodes) -> Result<Self> {
        let count = nodes.targets().len();
        if !f.pids.is_empty() && f.pids.len() != count {
            return Err(Error::Config(format!(
                "--node-pid: {} given for {count} node(s); give one per node, in --node order",
                f.pids.len()
            )));
        }
        for &pid in &f.pids {
            proc::sample(pid).map_err(Error::io(format!("reading /proc/{pid} (--node-pid)")))?;
        }
        Ok(NodeProbes {
            endpoints: nodes
                .targets()
                .iter()
                .map(|t| (t.addr, t.host.clone()))
                .collect(),
            pids: f.pids.clone(),
            metrics: f.metrics.clone(),
        })
    }

    /// Every node now.
    pub(super) async fn sample(&self) -> Vec<NodeEdge> {
        let mut edges = Vec::with_capacity(self.endpoints.len());
        for (k, (addr, host)) in self.endpoints.iter().enumerate() {
            let (metrics, scrape_error) = self.read_metrics(*addr, host).await;
            let cpu = self
                .pids
                .get(k)
                .and_then(|&pid| ServerProbe::sample(Some(&ServerProbe { pid })));
            edges.push(NodeEdge {
                cpu,
                metrics,
                scrape_error,
            });
        }
        edges
    }

    /// The named metrics of one node, and the scrape's error if it failed.
    async fn read_metrics(
        &self,
        addr: SocketAddr,
        host: &str,
    ) -> (Vec<Option<f64>>, Option<String>) {
        if self.metrics.is_empty() {
            return (Vec::new(), None);
        }
        match scrape::fetch(addr, host).await {
            Ok(text) => (
                self.metrics
                    .iter()
                    .map(|m| scrape::metric_sum(&text, m))
                    .collect(),
                None,
            ),
            Err(e) => (vec![None; self.metrics.len()], Some(e.to_string())),
        }
    }
}

/// A metric at both edges of the measured window (`null`: the node did not export it or
/// the scrape failed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricEdges {
    /// At publish start.
    pub start: Option<f64>,
    /// At drain end.
    pub end: Option<f64>,
    /// `end − start` (meaningful for counters; for gauges read `end`).
    pub delta: Option<f64>,
}

/// What one node did in a fan-out run.
#[derive(Debug, Serialize)]
pub struct NodeResult {
    /// Its WebSocket URL (`--node`, or `--url` alone).
    pub url: String,
    /// Clients the placement gave it.
    pub clients: u64,
    /// Of those, authenticated.
    pub established: u64,
    /// Distinct measured messages its readers received.
    pub received: u64,
    /// Its process (`--node-pid`).
    pub pid: Option<u32>,
    /// Its CPU and RSS over the measured window (with `--node-pid`).
    pub measured: Option<ServerDelta>,
    /// Each `--node-metric` over the measured window.
    pub metrics: BTreeMap<String, MetricEdges>,
    /// Scrapes that failed (`start: …`, `end: …`).
    pub scrape_errors: Vec<String>,
}

/// Per-node results: the placement's counts, the clients' tallies by node, and the two
/// edges' samples.
pub(super) fn node_results(
    nodes: &Nodes,
    clients: u64,
    m: &Merged<Fanout>,
    probes: &NodeProbes,
    edges: [&[NodeEdge]; 2],
) -> Vec<NodeResult> {
    let mut out: Vec<NodeResult> = nodes
        .targets()
        .iter()
        .zip(nodes.planned(clients))
        .enumerate()
        .map(|(k, (t, planned))| NodeResult {
            url: t.url.clone(),
            clients: planned,
            established: 0,
            received: 0,
            pid: probes.pids.get(k).copied(),
            measured: None,
            metrics: BTreeMap::new(),
            scrape_errors: Vec::new(),
        })
        .collect();
    for (i, c) in &m.clients {
        add_client(&mut out[nodes.index_of(*i)], c);
    }
    for (k, node) in out.iter_mut().enumerate() {
        let [start, end] = edges.map(|e| e.get(k).cloned().unwrap_or_default());
        add_edges(node, &probes.metrics, start, end);
    }
    out
}

fn add_client(node: &mut NodeResult, c: &FanoutClient) {
    node.established += 1;
    if !c.stalled {
        node.received += c.seq.unique;
    }
}

fn add_edges(node: &mut NodeResult, names: &[String], start: NodeEdge, end: NodeEdge) {
    node.measured = delta(start.cpu, end.cpu);
    for (j, name) in names.iter().enumerate() {
        let (a, b) = (value(&start, j), value(&end, j));
        let delta = a.zip(b).map(|(a, b)| b - a);
        node.metrics.insert(
            name.clone(),
            MetricEdges {
                start: a,
                end: b,
                delta,
            },
        );
    }
    let errors = [("start", start.scrape_error), ("end", end.scrape_error)];
    node.scrape_errors = errors
        .into_iter()
        .filter_map(|(edge, e)| e.map(|e| format!("{edge}: {e}")))
        .collect();
}

fn value(edge: &NodeEdge, j: usize) -> Option<f64> {
    edge.metrics.get(j).copied().flatten()
}

/// One warning per node whose `/metrics` could not be read.
pub(super) fn warnings(nodes: &[NodeResult]) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| !n.scrape_errors.is_empty())
        .map(|n| {
            format!(
                "{}: metrics not read ({})",
                n.url,
                n.scrape_errors.join("; ")
            )
        })
        .collect()
}

/// The `nodes` section of the summary (only when there is more than one node, or a
/// node figure was asked for).
pub(super) fn summarize(s: &mut Summary, nodes: &[NodeResult]) {
    let asked = nodes
        .iter()
        .any(|n| n.pid.is_some() || !n.metrics.is_empty());
    if nodes.len() < 2 && !asked {
        return;
    }
    s.section("nodes");
    for (k, n) in nodes.iter().enumerate() {
        s.line(&format!("node {k}"), node_line(n));
    }
}

fn node_line(n: &NodeResult) -> String {
    let mut line = format!(
        "{}: {} clients ({} established), {} received",
        n.url, n.clients, n.established, n.received
    );
    if let Some(m) = &n.measured {
        line += &format!(", CPU {:.2} s ({:.0}% of a core)", m.cpu_s, m.cores * 100.0);
    }
    let short = |name: &str| name.strip_prefix("shardcast_").unwrap_or(name).to_string();
    let mut absent = Vec::new();
    for (name, e) in &n.metrics {
        match e.delta {
            Some(d) => line += &format!(", Δ{} {d:.0}", short(name)),
            None => absent.push(short(name)),
        }
    }
    if !absent.is_empty() {
        line += &format!(" (absent: {})", absent.join(", "));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::ProcSample;
    use std::time::{Duration, Instant};

    fn edge(cpu_s: f64, at: Instant, metrics: Vec<Option<f64>>) -> NodeEdge {
        let sample = ProcSample {
            cpu_s,
            rss_bytes: 1,
            threads: 1,
        };
        NodeEdge {
            cpu: Some(Stamped { sample, at }),
            metrics,
            scrape_error: None,
        }
    }

    fn empty_node() -> NodeResult {
        NodeResult {
            url: "ws://127.0.0.1:1/ws".into(),
            clients: 0,
            established: 0,
            received: 0,
            pid: Some(7),
            measured: None,
            metrics: BTreeMap::new(),
            scrape_errors: Vec::new(),
        }
    }

    #[test]
    fn edges_give_cpu_and_metric_deltas_and_keep_absent_metrics_absent() {
        let t0 = Instant::now();
        let names = ["a_total".to_string(), "new_total".to_string()];
        let start = edge(1.0, t0, vec![Some(10.0), None]);
        let end = edge(1.5, t0 + Duration::from_secs(2), vec![Some(25.0), None]);
        let mut node = empty_node();
        add_edges(&mut node, &names, start, end);
        let m = node.measured.expect("both CPU samples");
        assert!((m.cpu_s - 0.5).abs() < 1e-9 && (m.cores - 0.25).abs() < 1e-9);
        assert_eq!(node.metrics["a_total"].delta, Some(15.0));
        assert_eq!(
            node.metrics["new_total"],
            MetricEdges {
                start: None,
                end: None,
                delta: None
            }
        );
        assert!(node_line(&node).ends_with("Δa_total 15 (absent: new_total)"));
    }

    #[test]
    fn a_failed_scrape_is_a_warning_not_an_error() {
        let end = NodeEdge {
            scrape_error: Some("connection refused".into()),
            ..NodeEdge::default()
        };
        let mut node = empty_node();
        add_edges(
            &mut node,
            &["x_total".to_string()],
            NodeEdge::default(),
            end,
        );
        assert_eq!(node.metrics["x_total"].delta, None);
        assert_eq!(
            warnings(&[node]),
            vec!["ws://127.0.0.1:1/ws: metrics not read (end: connection refused)"]
        );
    }
}

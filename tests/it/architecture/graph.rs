//! The dependency graph between top-level modules, its rendering, and its cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::deps::{Reference, Site};

/// Top-level module → module it names → the sites that name it.
pub struct Graph {
    edges: BTreeMap<String, BTreeMap<String, Vec<Site>>>,
}

impl Graph {
    /// The graph over `modules` (every one a node, edges or not) made by `references`.
    pub fn new(modules: &BTreeSet<String>, references: Vec<Reference>) -> Self {
        let mut edges: BTreeMap<_, BTreeMap<_, Vec<_>>> = modules
            .iter()
            .map(|m| (m.clone(), BTreeMap::new()))
            .collect();
        for r in references {
            let targets = edges.entry(r.from).or_default();
            targets.entry(r.to).or_default().push(r.site);
        }
        Self { edges }
    }

    /// One line per module, `a -> b, c`, in name order.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (module, targets) in &self.edges {
            let names: Vec<&str> = targets.keys().map(String::as_str).collect();
            let names = if names.is_empty() {
                "(none)".to_string()
            } else {
                names.join(", ")
            };
            _ = writeln!(text, "{module} -> {names}");
        }
        text
    }

    /// One line per edge: how many sites make it, and the first of them.
    pub fn render_sites(&self) -> String {
        let mut text = String::new();
        for (module, targets) in &self.edges {
            for target in targets.keys() {
                _ = writeln!(text, "{}", self.edge_line(module, target));
            }
        }
        text
    }

    /// `a -> b: 3 sites, e.g. src/a.rs:12`.
    fn edge_line(&self, from: &str, to: &str) -> String {
        let sites = &self.edges[from][to];
        let plural = if sites.len() == 1 { "" } else { "s" };
        format!(
            "{from} -> {to}: {} site{plural}, e.g. {}",
            sites.len(),
            sites[0]
        )
    }

    /// The strongly connected components of more than one module: each is a set of
    /// modules that all reach each other, i.e. one or more cycles.
    pub fn cycles(&self) -> Vec<BTreeSet<&str>> {
        let reach: BTreeMap<&str, BTreeSet<&str>> = self
            .edges
            .keys()
            .map(|m| (m.as_str(), self.reachable(m)))
            .collect();
        let mutual = |a: &str, b: &str| a == b || (reach[a].contains(b) && reach[b].contains(a));
        let components: BTreeSet<BTreeSet<&str>> = reach
            .keys()
            .map(|&a| reach.keys().copied().filter(|&b| mutual(a, b)).collect())
            .filter(|component: &BTreeSet<&str>| component.len() > 1)
            .collect();
        components.into_iter().collect()
    }

    /// The modules reachable from `start` through one or more edges.
    fn reachable<'g>(&'g self, start: &'g str) -> BTreeSet<&'g str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(module) = todo.pop() {
            let next = self.edges[module].keys().map(String::as_str);
            todo.extend(next.filter(|&m| seen.insert(m)));
        }
        seen
    }

    /// A component as its modules, then every edge inside it with an example site.
    pub fn render_cycle(&self, component: &BTreeSet<&str>) -> String {
        let names: Vec<&str> = component.iter().copied().collect();
        let mut text = format!("cycle among {}:\n", names.join(", "));
        for &from in component {
            let inside = self.edges[from]
                .keys()
                .filter(|to| component.contains(to.as_str()));
            inside.for_each(|to| _ = writeln!(text, "  {}", self.edge_line(from, to)));
        }
        text
    }
}

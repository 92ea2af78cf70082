//! Who names whom: every path in a library module that reaches another top-level
//! module, found in `use` trees, in paths syn parses (expressions, types, patterns)
//! and in the raw tokens of macro invocations, which syn leaves unparsed. Comments are
//! gone after lexing and doc comments are attributes, which are not scanned.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Item, ItemMod, ItemUse, Macro, UseTree};

use super::source::SourceFile;

/// A line in the source, shown as `path:line`.
#[derive(Clone)]
pub struct Site {
    /// File path from the package root.
    pub path: String,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path, self.line)
    }
}

/// Code in top-level module `from` naming top-level module `to`.
pub struct Reference {
    /// The module whose code holds the path.
    pub from: String,
    /// The module the path reaches.
    pub to: String,
    /// Where the path is written.
    pub site: Site,
}

/// The crate root: its top-level modules, and the names it re-exports from them.
pub struct Root {
    /// Every `mod x;` of `lib.rs`.
    pub modules: BTreeSet<String>,
    /// Re-exported name → the module it comes from (`pub use engine::Engine`).
    reexports: BTreeMap<String, String>,
}

impl Root {
    /// Reads the top-level modules and re-exports from the root file among `files`.
    pub fn of(files: &[SourceFile]) -> Self {
        let root = files
            .iter()
            .find(|f| f.module.is_empty())
            .expect("a crate root");
        let mut modules = BTreeSet::new();
        let mut reexports = BTreeMap::new();
        for item in &root.syntax.items {
            match item {
                Item::Mod(m) => _ = modules.insert(m.ident.to_string()),
                Item::Use(u) => {
                    reexports.extend(use_leaves(&u.tree).into_iter().filter_map(reexport))
                }
                _ => {}
            }
        }
        reexports.retain(|_, module| modules.contains(module));
        Self { modules, reexports }
    }

    /// The top-level module an absolute crate path lands in, seeing through the
    /// root's re-exports, so `crate::Engine` counts as naming `engine`.
    fn module_of(&self, path: &[String]) -> Option<&str> {
        let first = path.first()?;
        let module = self
            .modules
            .get(first)
            .or_else(|| self.reexports.get(first));
        module.map(String::as_str)
    }
}

/// A root `use` leaf as (name it is visible under, first segment it comes from).
fn reexport(leaf: Leaf) -> Option<(String, String)> {
    let mut segments = leaf.segments.into_iter();
    let module = segments.find(|s| s != "crate" && s != "self")?;
    Some((leaf.name?, module))
}

/// Every reference between two different top-level modules in the library `files`.
/// The root file itself is not a module: its re-exports make no edges.
pub fn references(files: &[SourceFile], root: &Root) -> Vec<Reference> {
    let modules = files.iter().filter(|f| !f.module.is_empty());
    modules
        .flat_map(|file| file_references(file, root))
        .collect()
}

/// The references out of one file of top-level module `file.module[0]`.
fn file_references(file: &SourceFile, root: &Root) -> Vec<Reference> {
    let mut finder = PathFinder {
        module: file.module.clone(),
        found: Vec::new(),
    };
    finder.visit_file(&file.syntax);
    let from = &file.module[0];
    let reference = |(path, line): (Vec<String>, usize)| {
        let to = root.module_of(&path).filter(|to| to != from)?;
        let site = Site {
            path: file.path.clone(),
            line,
        };
        Some(Reference {
            from: from.clone(),
            to: to.to_string(),
            site,
        })
    };
    finder.found.into_iter().filter_map(reference).collect()
}

/// Collects the absolute crate paths written in one file, with their lines.
struct PathFinder {
    /// The module the visitor is in (inline `mod` blocks push onto it).
    module: Vec<String>,
    /// Absolute paths (without `crate`) and the line each is written on.
    found: Vec<(Vec<String>, usize)>,
}

impl PathFinder {
    /// Records `segments`, as written at `span`, if it is a crate-relative path.
    fn record(&mut self, segments: Vec<String>, span: Span) {
        if let Some(path) = absolute(&self.module, segments) {
            self.found.push((path, span.start().line));
        }
    }
}

impl<'ast> Visit<'ast> for PathFinder {
    fn visit_item_mod(&mut self, item: &'ast ItemMod) {
        self.module.push(item.ident.to_string());
        visit::visit_item_mod(self, item);
        self.module.pop();
    }

    fn visit_item_use(&mut self, item: &'ast ItemUse) {
        if item.leading_colon.is_none() {
            use_leaves(&item.tree)
                .into_iter()
                .for_each(|l| self.record(l.segments, l.span));
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let (None, Some(first)) = (path.leading_colon, path.segments.first()) {
            let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.record(segments, first.ident.span());
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        for (segments, span) in token_paths(mac.tokens.clone()) {
            self.record(segments, span);
        }
        visit::visit_macro(self, mac);
    }
}

/// The absolute path (after `crate::`) that `segments`, written inside `module`,
/// names; `None` unless it starts with `crate` or `super`.
fn absolute(module: &[String], segments: Vec<String>) -> Option<Vec<String>> {
    match segments.first()?.as_str() {
        "crate" => Some(segments[1..].to_vec()),
        "super" => {
            let climbs = segments.iter().take_while(|s| *s == "super").count();
            let base = module.len().checked_sub(climbs)?;
            Some([&module[..base], &segments[climbs..]].concat())
        }
        _ => None,
    }
}

/// One path imported by a `use` tree.
struct Leaf {
    /// The path as written (`*` and `self` leaves end at their parent).
    segments: Vec<String>,
    /// The name it is imported under, if it imports a single name.
    name: Option<String>,
    /// The last written segment, for the line.
    span: Span,
}

/// The paths a `use` tree imports, one per leaf of its groups.
fn use_leaves(tree: &UseTree) -> Vec<Leaf> {
    match tree {
        UseTree::Path(p) => prefixed(&p.ident, use_leaves(&p.tree)),
        UseTree::Name(n) => vec![Leaf::named(&n.ident, &n.ident)],
        UseTree::Rename(r) => vec![Leaf::named(&r.ident, &r.rename)],
        UseTree::Glob(g) => vec![Leaf {
            segments: vec![],
            name: None,
            span: g.star_token.spans[0],
        }],
        UseTree::Group(g) => g.items.iter().flat_map(use_leaves).collect(),
    }
}

impl Leaf {
    /// The leaf that imports `ident` as `name` (`self` imports its parent).
    fn named(ident: &syn::Ident, name: &syn::Ident) -> Self {
        let segments = if ident == "self" {
            vec![]
        } else {
            vec![ident.to_string()]
        };
        let name = Some(name.to_string());
        Self {
            segments,
            name,
            span: ident.span(),
        }
    }
}

/// `leaves` with `ident` put in front of each path.
fn prefixed(ident: &syn::Ident, mut leaves: Vec<Leaf>) -> Vec<Leaf> {
    leaves
        .iter_mut()
        .for_each(|leaf| leaf.segments.insert(0, ident.to_string()));
    leaves
}

/// Paths starting with `crate` or `super` in a macro's tokens (`crate :: a :: B`),
/// each with the span of its first token.
fn token_paths(tokens: TokenStream) -> Vec<(Vec<String>, Span)> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut found = Vec::new();
    let mut at = 0;
    while at < trees.len() {
        match &trees[at] {
            TokenTree::Group(group) => found.extend(token_paths(group.stream())),
            TokenTree::Ident(id) if id == "crate" || id == "super" => {
                let segments = token_path(&trees[at..]);
                at += 3 * segments.len() - 3; // n segments span 3n - 2 tokens
                found.push((segments, id.span()));
            }
            _ => {}
        }
        at += 1;
    }
    found
}

/// The segments of the `ident (:: ident)*` path that `trees` starts with.
fn token_path(mut trees: &[TokenTree]) -> Vec<String> {
    let mut segments = Vec::new();
    while let [TokenTree::Ident(id), rest @ ..] = trees {
        segments.push(id.to_string());
        match rest {
            [TokenTree::Punct(a), TokenTree::Punct(b), more @ ..]
                if a.as_char() == ':' && b.as_char() == ':' =>
            {
                trees = more
            }
            _ => break,
        }
    }
    segments
}

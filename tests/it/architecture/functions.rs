//! Function lengths: every function with a body, from the line of its `fn` keyword
//! to the line of its closing brace. Closures are expressions, not functions.

use std::fmt::Write as _;

use syn::visit::{self, Visit};
use syn::{Block, ImplItemFn, ItemFn, ItemImpl, ItemTrait, Signature, TraitItemFn, Type};

use super::deps::Site;
use super::source::SourceFile;

/// One function and its length.
pub struct Function {
    /// Lines from `fn` to the closing brace, inclusive.
    pub lines: usize,
    /// Where its `fn` keyword is.
    pub site: Site,
    /// `name`, or `Owner::name` for methods (owner: the impl's type or the trait).
    pub name: String,
}

/// Every function with a body in `file`: free and nested fns, inherent and trait
/// impl methods, trait default methods.
pub fn functions(file: &SourceFile) -> Vec<Function> {
    let mut finder = FnFinder {
        path: &file.path,
        owner: None,
        found: Vec::new(),
    };
    finder.visit_file(&file.syntax);
    finder.found
}

/// Collects the functions of one file.
struct FnFinder<'f> {
    /// The file's path from the package root.
    path: &'f str,
    /// The type or trait whose block the visitor is in.
    owner: Option<String>,
    /// Functions found so far.
    found: Vec<Function>,
}

impl FnFinder<'_> {
    /// Records a function, then looks for nested ones in its body (which have no owner).
    fn function(&mut self, sig: &Signature, body: &Block) {
        self.found.push(self.measure(sig, body));
        let owner = self.owner.take();
        self.visit_block(body);
        self.owner = owner;
    }

    /// The function `sig` with `body`, measured from its `fn` to its closing brace.
    fn measure(&self, sig: &Signature, body: &Block) -> Function {
        let first = sig.fn_token.span.start().line;
        let last = body.brace_token.span.close().start().line;
        let name = match &self.owner {
            Some(owner) => format!("{owner}::{}", sig.ident),
            None => sig.ident.to_string(),
        };
        let site = Site {
            path: self.path.to_string(),
            line: first,
        };
        Function {
            lines: last - first + 1,
            site,
            name,
        }
    }

    /// Visits the items of an impl or trait with `owner` as their owner.
    fn within(&mut self, owner: String, visit_items: impl FnOnce(&mut Self)) {
        let outer = self.owner.replace(owner);
        visit_items(self);
        self.owner = outer;
    }
}

impl<'ast> Visit<'ast> for FnFinder<'_> {
    fn visit_item_fn(&mut self, item: &'ast ItemFn) {
        self.function(&item.sig, &item.block);
    }

    fn visit_impl_item_fn(&mut self, item: &'ast ImplItemFn) {
        self.function(&item.sig, &item.block);
    }

    fn visit_trait_item_fn(&mut self, item: &'ast TraitItemFn) {
        if let Some(body) = &item.default {
            self.function(&item.sig, body);
        }
    }

    fn visit_item_impl(&mut self, item: &'ast ItemImpl) {
        self.within(type_name(&item.self_ty), |f| {
            visit::visit_item_impl(f, item)
        });
    }

    fn visit_item_trait(&mut self, item: &'ast ItemTrait) {
        self.within(item.ident.to_string(), |f| visit::visit_item_trait(f, item));
    }
}

/// The last path segment of an impl's type (`Conn` for `impl<T> crate::conn::Conn<T>`).
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map_or("_".into(), |s| s.ident.to_string()),
        Type::Reference(r) => type_name(&r.elem),
        _ => "_".into(),
    }
}

/// The length distribution of a set of functions, by nearest rank.
pub struct Lengths {
    /// The functions, longest first.
    pub longest_first: Vec<Function>,
    /// Lengths in ascending order.
    sorted: Vec<usize>,
}

impl Lengths {
    /// Sorts `functions` for the figures below.
    pub fn new(mut functions: Vec<Function>) -> Self {
        functions.sort_by(|a, b| {
            b.lines
                .cmp(&a.lines)
                .then_with(|| (&a.site.path, a.site.line).cmp(&(&b.site.path, b.site.line)))
        });
        let mut sorted: Vec<usize> = functions.iter().map(|f| f.lines).collect();
        sorted.sort_unstable();
        Self {
            longest_first: functions,
            sorted,
        }
    }

    /// The value at index ceil(pct/100 · n) − 1 of the ascending lengths.
    pub fn percentile(&self, pct: usize) -> usize {
        let rank = (pct * self.sorted.len()).div_ceil(100).max(1);
        self.sorted[rank - 1]
    }

    /// n, median, p90, max and the `top` longest functions, one per line.
    pub fn report(&self, top: usize) -> String {
        let (n, median, p90) = (self.sorted.len(), self.percentile(50), self.percentile(90));
        let max = self.sorted.last().copied().unwrap_or(0);
        let mut text = format!("n={n} median={median} p90={p90} max={max}\nlongest {top}:\n");
        for f in self.longest_first.iter().take(top) {
            _ = writeln!(text, "{:5} {} {}", f.lines, f.site, f.name);
        }
        text
    }
}

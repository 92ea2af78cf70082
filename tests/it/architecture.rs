//! Architecture guard: the tree must read as the architecture.
//!
//! These tests parse the crate's own `src/` with syn and enforce three rules:
//!
//! - **Dependencies point one way.** The library's top-level modules (the `mod`s of
//!   `lib.rs`) must form no cycle: code in a module may name another module through
//!   `crate::`, `super::` or a macro's tokens only if that module never names it back,
//!   directly or through others. Then each module can be read, tested and changed with
//!   only what sits below it in mind. The binary (`main.rs` and the modules it declares
//!   itself) and everything under `#[cfg(test)]` are left out.
//! - **Files stay at most 800 lines**, so a file is one topic read in one sitting.
//! - **Functions stay small**: median at most 8 lines, p90 at most 22, the figures of the
//!   model libraries STYLE learns from.
//!
//! See STYLE ("Small files, small functions" and its module map): the layout of `src/`
//! is the architecture, so these rules keep the map true as the code changes.
//!
//! Run with `cargo test --test it architecture -- --nocapture` to see the module graph
//! and the function-length figures.

mod deps;
mod functions;
mod graph;
mod source;

use std::path::Path;

use deps::Root;
use functions::Lengths;
use graph::Graph;
use source::SourceFile;

/// The longest a source file may be.
const MAX_FILE_LINES: usize = 800;
/// The longest the median function may be.
const MAX_MEDIAN_FN_LINES: usize = 8;
/// The longest the 90th-percentile function may be.
const MAX_P90_FN_LINES: usize = 22;

#[test]
fn top_level_modules_form_no_cycle() {
    let library = source::crate_tree("lib.rs");
    let root = Root::of(&library);
    let graph = Graph::new(&root.modules, deps::references(&library, &root));
    println!(
        "module graph:\n{}\nsites per edge:\n{}",
        graph.render(),
        graph.render_sites()
    );
    let cycles: Vec<String> = graph
        .cycles()
        .iter()
        .map(|c| graph.render_cycle(c))
        .collect();
    assert!(
        cycles.is_empty(),
        "top-level modules depend on each other in a circle, so no module can be read \
         without the others:\n\n{}\nMake dependencies point one way: in each cycle pick the \
         edges that point up (a lower-level module naming a higher-level one) and remove \
         them. Move the shared item down into the lower module or into a new module both \
         can use, or hand it in from above (a trait, a callback, a plain value) instead of \
         naming the higher module.",
        cycles.join("\n")
    );
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut files = Vec::new();
    rust_files(&source::package_dir().join("src"), &mut files);
    let mut over: Vec<(usize, String)> =
        files.into_iter().filter(|f| f.0 > MAX_FILE_LINES).collect();
    over.sort_by(|a, b| b.cmp(a));
    let listed: Vec<String> = over
        .iter()
        .map(|(n, path)| format!("  {n:5} {path}"))
        .collect();
    assert!(
        over.is_empty(),
        "source files over {MAX_FILE_LINES} lines:\n{}\nSplit each along its seams: \
         turn `x.rs` into a directory module `x/mod.rs` with one file per topic (tests can \
         move to `x/tests.rs`), so no file passes {MAX_FILE_LINES} lines.",
        listed.join("\n")
    );
}

/// Every `.rs` file under `dir`, recursively, as (line count, path).
fn rust_files(dir: &Path, found: &mut Vec<(usize, String)>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            found.push((text.lines().count(), source::relative(&path)));
        }
    }
}

#[test]
fn functions_stay_small() {
    let files = compiled_files();
    let lengths = Lengths::new(files.iter().flat_map(functions::functions).collect());
    let (median, p90) = (lengths.percentile(50), lengths.percentile(90));
    let report = lengths.report(25);
    println!("function lengths (lines from `fn` to its closing brace):\n{report}");
    assert!(
        median <= MAX_MEDIAN_FN_LINES && p90 <= MAX_P90_FN_LINES,
        "functions are too long: median {median} (at most {MAX_MEDIAN_FN_LINES}), p90 {p90} \
         (at most {MAX_P90_FN_LINES}).\n{report}\nSplit the longest functions into named \
         steps: a function that needs a comment per paragraph wants to be several functions."
    );
}

/// The non-test files of the library and of the binary, each once.
fn compiled_files() -> Vec<SourceFile> {
    let mut files = source::crate_tree("lib.rs");
    let library: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let binary = source::crate_tree("main.rs").into_iter();
    files.extend(binary.filter(|f| !library.contains(&f.path)));
    files
}

//! The crate's own source as syntax trees: which files a crate root compiles, under
//! which module path, with everything compiled only for tests already removed.

use std::path::{Path, PathBuf};

use syn::{Attribute, ImplItem, Item, TraitItem};

/// One file of a crate tree, parsed, without its `#[cfg(test)]` items.
pub struct SourceFile {
    /// Path from the package root, e.g. `src/ws/handshake.rs`.
    pub path: String,
    /// Module path inside the crate, e.g. `["ws", "handshake"]`; empty for the root.
    pub module: Vec<String>,
    /// The syntax, with test-only items removed.
    pub syntax: syn::File,
}

/// The package root, where `Cargo.toml` is.
pub fn package_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files compiled into the crate rooted at `src/<root>` (`lib.rs` or `main.rs`),
/// found by following its `mod` declarations. Test-only modules are never followed,
/// so files such as `tests.rs` under `#[cfg(test)] mod tests;` are not part of it.
/// `#[path]` attributes are not supported (the tree does not use them).
pub fn crate_tree(root: &str) -> Vec<SourceFile> {
    let src = package_dir().join("src");
    let mut files = Vec::new();
    load(&src.join(root), &src, Vec::new(), &mut files);
    files
}

/// Parses `path` as module `module`, whose child module files live in `dir`, then
/// loads those children.
fn load(path: &Path, dir: &Path, module: Vec<String>, files: &mut Vec<SourceFile>) {
    let shown = path.display();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {shown}: {e}"));
    let mut syntax = syn::parse_file(&text).unwrap_or_else(|e| panic!("parse {shown}: {e}"));
    if is_test_only(&syntax.attrs) {
        return; // `#![cfg(test)]`: the whole file is test-only
    }
    strip_tests(&mut syntax.items);
    follow_mods(&syntax.items, dir, &module, files);
    files.push(SourceFile {
        path: relative(path),
        module,
        syntax,
    });
}

/// Loads the file of every `mod x;` among `items`, descending into inline modules.
fn follow_mods(items: &[Item], dir: &Path, module: &[String], files: &mut Vec<SourceFile>) {
    for item in items {
        let Item::Mod(declared) = item else { continue };
        let name = declared.ident.to_string();
        let child_dir = dir.join(&name);
        let mut child = module.to_vec();
        child.push(name.clone());
        match &declared.content {
            Some((_, inner)) => follow_mods(inner, &child_dir, &child, files),
            None => load(&module_file(dir, &name), &child_dir, child, files),
        }
    }
}

/// The file of `mod name;` declared in a module whose children live in `dir`.
fn module_file(dir: &Path, name: &str) -> PathBuf {
    let flat = dir.join(format!("{name}.rs"));
    if flat.exists() {
        flat
    } else {
        dir.join(name).join("mod.rs")
    }
}

/// `path` relative to the package root, for messages.
pub fn relative(path: &Path) -> String {
    let inside = path.strip_prefix(package_dir()).unwrap_or(path);
    inside.display().to_string()
}

/// Removes `#[cfg(test)]` items, through inline modules, impl blocks and traits.
fn strip_tests(items: &mut Vec<Item>) {
    items.retain(|item| !is_test_only(item_attrs(item)));
    for item in items {
        match item {
            Item::Mod(m) => m
                .content
                .iter_mut()
                .for_each(|(_, inner)| strip_tests(inner)),
            Item::Impl(i) => i
                .items
                .retain(|it| !matches!(it, ImplItem::Fn(f) if is_test_only(&f.attrs))),
            Item::Trait(t) => t
                .items
                .retain(|it| !matches!(it, TraitItem::Fn(f) if is_test_only(&f.attrs))),
            _ => {}
        }
    }
}

/// Whether `attrs` contain exactly `#[cfg(test)]`.
fn is_test_only(attrs: &[Attribute]) -> bool {
    let cfg_test = |a: &Attribute| a.parse_args::<syn::Ident>().is_ok_and(|arg| arg == "test");
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && cfg_test(a))
}

/// The outer attributes of an item (syn has no accessor common to all kinds).
fn item_attrs(item: &Item) -> &[Attribute] {
    use syn::*;
    match item {
        Item::Const(ItemConst { attrs, .. })
        | Item::Enum(ItemEnum { attrs, .. })
        | Item::ExternCrate(ItemExternCrate { attrs, .. })
        | Item::Fn(ItemFn { attrs, .. })
        | Item::ForeignMod(ItemForeignMod { attrs, .. })
        | Item::Impl(ItemImpl { attrs, .. })
        | Item::Macro(ItemMacro { attrs, .. })
        | Item::Mod(ItemMod { attrs, .. })
        | Item::Static(ItemStatic { attrs, .. })
        | Item::Struct(ItemStruct { attrs, .. })
        | Item::Trait(ItemTrait { attrs, .. })
        | Item::TraitAlias(ItemTraitAlias { attrs, .. })
        | Item::Type(ItemType { attrs, .. })
        | Item::Union(ItemUnion { attrs, .. })
        | Item::Use(ItemUse { attrs, .. }) => attrs,
        _ => &[],
    }
}

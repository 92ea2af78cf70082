//! `shardcast config example` (a commented TOML file with every key at its default,
//! committed as `deploy/shardcast.toml`) and `shardcast config table` (the README's
//! settings table), both written from [`settings::TABLE`] alone.

use std::fmt::Write as _;

use super::settings::{self, Kind, Meta};

/// Width of the example file's comment lines.
const WIDTH: usize = 88;

/// The example config file.
pub fn example() -> String {
    let mut out = String::from(
        "# shardcast configuration (TOML), written by `shardcast config example`.\n\
         # Every key is optional and shown at its default; a commented-out key is unset.\n\
         # Precedence: command-line flags > SHARDCAST_* environment variables > this file >\n\
         # defaults. Use it with `shardcast serve --config FILE` (or SHARDCAST_CONFIG); check\n\
         # it with `shardcast check-config FILE`; SIGHUP re-reads it.\n",
    );
    for meta in settings::TABLE.iter().filter(|m| m.in_file()) {
        out.push('\n');
        out.push_str(&example_entry(meta));
    }
    out
}

/// One key: its doc as comments, where else it can be set, and its default.
fn example_entry(meta: &Meta) -> String {
    let mut out = String::new();
    for line in wrap(&meta.doc(), WIDTH - 2) {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "# flag {}, env {}", meta.flag(), meta.env_name());
    let _ = match default_toml(meta) {
        Some(value) => writeln!(out, "{} = {value}", meta.key),
        None => writeln!(out, "# {} = \"\"", meta.key),
    };
    out
}

/// The default as TOML (`None`: unset).
fn default_toml(meta: &Meta) -> Option<String> {
    match meta.default.is_empty() && meta.kind != Kind::List {
        true => None,
        false => Some(toml_of_default(meta)),
    }
}

/// The default text in TOML syntax: a number or boolean as is, a list as an array,
/// anything else quoted.
fn toml_of_default(meta: &Meta) -> String {
    let text = meta.default;
    let is_bare = text.parse::<u64>().is_ok() || meta.kind == Kind::Bool;
    match meta.kind {
        Kind::List => {
            let items: Vec<String> = text
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()).to_string())
                .collect();
            format!("[{}]", items.join(", "))
        }
        _ if is_bare => text.to_owned(),
        _ => toml::Value::String(text.to_owned()).to_string(),
    }
}

/// `text` in lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// The README's Markdown table of every setting.
pub fn table() -> String {
    let mut out = String::from("| flag | default | meaning |\n|---|---|---|\n");
    for meta in settings::TABLE {
        let default = match meta.default {
            "" => "none".to_owned(),
            text => format!("`{text}`"),
        };
        let meaning = meta.doc().replace('|', "\\|");
        let _ = writeln!(out, "| {} | {default} | {meaning} |", flag_cell(meta));
    }
    out
}

/// `--key VALUE`; a boolean's on and off forms.
fn flag_cell(meta: &Meta) -> String {
    match meta.kind {
        Kind::Bool => format!(
            "`{0}`, `{0}=false`, `--no-{1}`",
            meta.flag(),
            &meta.flag()[2..]
        ),
        Kind::List => format!("`{} {},...`", meta.flag(), meta.value_name),
        Kind::Scalar => format!("`{} {}`", meta.flag(), meta.value_name),
    }
}

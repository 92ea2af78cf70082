//! Where `serve`'s settings come from: the command line, the `SHARDCAST_*` environment,
//! the TOML file, the defaults — in that order of precedence — and, for every value, the
//! [`Source`] it came from, so that an error or `check-config` can name it (`--shards`,
//! `SHARDCAST_SHARDS`, `shardcast.toml:12`).
//!
//! The flags and the environment are captured once, at start; only the file is read again
//! (on SIGHUP), through [`Layers::with_file`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::settings;
use super::value::SettingType;

/// Where one value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag (holds the setting's key).
    Flag(&'static str),
    /// An environment variable (holds its name).
    Env(String),
    /// The config file, at a line.
    File {
        /// The file as given.
        path: Arc<PathBuf>,
        /// 1-based line of the key.
        line: usize,
    },
    /// Nothing set it.
    Default,
}

impl Source {
    /// Flags 3, environment 2, file 1, default 0: a higher level wins.
    pub fn level(&self) -> u8 {
        match self {
            Source::Flag(_) => 3,
            Source::Env(_) => 2,
            Source::File { .. } => 1,
            Source::Default => 0,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(key) => write!(f, "{}", settings::flag_name(key)),
            Source::Env(name) => f.write_str(name),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    /// The setting's key (snake_case, as in the file).
    pub key: &'static str,
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T: SettingType> Sourced<T> {
    /// The value as written where it came from, for messages: `--shards 0`,
    /// `SHARDCAST_SHARDS=0`, `f.toml:3: shards = 0`, `shards (default 0)`.
    pub fn at(&self) -> String {
        let secret = settings::meta(self.key).is_some_and(|m| m.is_secret());
        let text = match (secret, self.value.to_toml()) {
            (true, Some(_)) => "\"***\"".to_owned(),
            (_, Some(text)) => text,
            (_, None) => "\"\"".to_owned(),
        };
        describe(self.key, &self.source, &text)
    }
}

/// `key` set to `text` (TOML form) at `source`, in the syntax of that source.
pub fn describe(key: &str, source: &Source, text: &str) -> String {
    let bare = text.trim_matches('"');
    match source {
        Source::Flag(_) => format!("{source} {bare}"),
        Source::Env(_) => format!("{source}={bare}"),
        Source::File { .. } => format!("{source}: {key} = {text}"),
        Source::Default => format!("{key} (default {text})"),
    }
}

/// A setting that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// A value does not parse as its type.
    #[error("invalid value `{value}` for {at}: expected {expected}{detail}")]
    Invalid {
        /// The setting and where it came from (see [`name_at`]).
        at: String,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
        /// The parser's detail (`; ...`), or empty.
        detail: String,
    },
    /// The config file could not be read.
    #[error(
        "cannot read the config file {path} (from {from}): {error}; check the path and its permissions"
    )]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// `--config` or `SHARDCAST_CONFIG`.
        from: Source,
        /// The OS error.
        error: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("the config file {path} is not valid TOML: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's message (with the line).
        message: String,
    },
    /// The file names a key that is not a setting.
    #[error("{path}:{line}: unknown key `{key}`; `shardcast config example` lists every key")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The key.
        key: String,
    },
    /// An environment variable is not UTF-8.
    #[error("{name} is not valid UTF-8; set it to plain text")]
    NotUnicode {
        /// The variable.
        name: String,
    },
}

/// The TOML file's values by key, each with its line.
#[derive(Debug, Clone)]
pub struct FileLayer {
    path: Arc<PathBuf>,
    values: BTreeMap<String, (toml::Value, usize)>,
}

impl FileLayer {
    /// Reads and parses `path`; `from` says who named it. Unknown keys are refused.
    pub fn load(path: &Path, from: Source) -> Result<FileLayer, SettingError> {
        let text = std::fs::read_to_string(path).map_err(|error| SettingError::ReadFile {
            path: path.to_owned(),
            from,
            error,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the file `path`.
    pub fn parse(path: &Path, text: &str) -> Result<FileLayer, SettingError> {
        type Raw = BTreeMap<String, toml::Spanned<toml::Value>>;
        let raw: Raw = toml::from_str(text).map_err(|e| SettingError::ParseFile {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
        let values = raw
            .into_iter()
            .map(|(key, value)| {
                let line = line_of(value.span().start);
                (key, (value.into_inner(), line))
            })
            .collect::<BTreeMap<_, _>>();
        let layer = FileLayer {
            path: Arc::new(path.to_owned()),
            values,
        };
        layer.refuse_unknown_keys()?;
        Ok(layer)
    }

    fn refuse_unknown_keys(&self) -> Result<(), SettingError> {
        let known = |key: &str| settings::meta(key).is_some_and(|m| m.in_file());
        match self.values.iter().find(|(key, _)| !known(key)) {
            None => Ok(()),
            Some((key, (_, line))) => Err(SettingError::UnknownKey {
                path: self.path.as_ref().clone(),
                line: *line,
                key: key.clone(),
            }),
        }
    }
}

/// Every source of `serve`'s settings but the defaults.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// Flag values by key, as text (a list's items joined with `,`).
    pub flags: BTreeMap<&'static str, String>,
    /// Environment values by key.
    pub env: BTreeMap<&'static str, (String, String)>,
    /// The file, if any.
    pub file: Option<FileLayer>,
}

impl Layers {
    /// The flags given and the `SHARDCAST_*` environment of this process, without the
    /// file. `RUST_LOG` stands in for `SHARDCAST_LOG` when that is unset.
    pub fn capture(flags: BTreeMap<&'static str, String>) -> Result<Layers, SettingError> {
        let mut env = BTreeMap::new();
        for meta in settings::TABLE {
            let name = meta.env_name();
            let names = match meta.key {
                "log" => vec![name, "RUST_LOG".to_owned()],
                _ => vec![name],
            };
            if let Some(found) = first_env(names)? {
                env.insert(meta.key, found);
            }
        }
        Ok(Layers {
            flags,
            env,
            file: None,
        })
    }

    /// These flags and environment with `file` (`None`: no file).
    pub fn with_file(&self, file: Option<FileLayer>) -> Layers {
        Layers {
            file,
            ..self.clone()
        }
    }

    /// `key`: the flag, else the environment, else the file, else `default`.
    pub fn get<T: SettingType>(
        &self,
        key: &'static str,
        default: &str,
    ) -> Result<Sourced<T>, SettingError> {
        let sourced = |value, source| Sourced { key, value, source };
        if let Some(text) = self.flags.get(key) {
            return parse_text(key, text, Source::Flag(key)).map(|v| sourced(v, Source::Flag(key)));
        }
        if let Some((name, text)) = self.env.get(key) {
            let source = Source::Env(name.clone());
            return parse_text(key, text, source.clone()).map(|v| sourced(v, source));
        }
        if let Some(found) = self.in_file(key) {
            return found.map(|(v, source)| sourced(v, source));
        }
        parse_text(key, default, Source::Default).map(|v| sourced(v, Source::Default))
    }

    fn in_file<T: SettingType>(&self, key: &str) -> Option<Result<(T, Source), SettingError>> {
        let file = self.file.as_ref()?;
        let (value, line) = file.values.get(key)?;
        let source = Source::File {
            path: file.path.clone(),
            line: *line,
        };
        let parsed = T::from_toml(value)
            .map_err(|detail| invalid::<T>(key, &value.to_string(), source.clone(), detail));
        Some(parsed.map(|v| (v, source)))
    }
}

/// The first of `names` set in the environment, with its value.
fn first_env(names: Vec<String>) -> Result<Option<(String, String)>, SettingError> {
    for name in names {
        match std::env::var(&name) {
            Ok(value) => return Ok(Some((name, value))),
            Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(SettingError::NotUnicode { name });
            }
        }
    }
    Ok(None)
}

fn parse_text<T: SettingType>(key: &str, text: &str, source: Source) -> Result<T, SettingError> {
    T::parse(text).map_err(|detail| invalid::<T>(key, text, source, detail))
}

/// The setting `key` as named at `source`: `--shards`, `SHARDCAST_SHARDS`,
/// `f.toml:3 (shards)`, `the default of shards`.
pub fn name_at(key: &str, source: &Source) -> String {
    match source {
        Source::Flag(_) | Source::Env(_) => source.to_string(),
        Source::File { .. } => format!("{source} ({key})"),
        Source::Default => format!("the default of {key}"),
    }
}

fn invalid<T: SettingType>(key: &str, value: &str, source: Source, detail: String) -> SettingError {
    let detail = match detail.is_empty() {
        true => detail,
        false => format!(" ({detail})"),
    };
    SettingError::Invalid {
        at: name_at(key, &source),
        value: value.to_owned(),
        expected: T::EXPECTED,
        detail,
    }
}

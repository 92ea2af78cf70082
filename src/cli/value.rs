//! The value types of `serve`'s settings and how each is read from text (a flag, an
//! environment variable, a default) or from a TOML value, and written back as TOML.
//! Every parse failure says what was expected; the caller adds where the value came from.

use std::fmt;
use std::path::PathBuf;

/// How a setting's flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--key VALUE`.
    Scalar,
    /// `--key` (true), `--key=BOOL`, `--no-key` (false).
    Bool,
    /// `--key A,B`, repeatable.
    List,
}

/// A setting's value type.
pub trait SettingType: Sized + Clone + PartialEq {
    /// What a valid value looks like, for error messages.
    const EXPECTED: &'static str;
    /// How its flag takes a value.
    const KIND: Kind = Kind::Scalar;

    /// Parses the text form (a flag, an environment variable, a default, a TOML string).
    fn parse(text: &str) -> Result<Self, String>;

    /// Reads a TOML value; scalars go through [`SettingType::parse`].
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(s) => Self::parse(s),
            toml::Value::Integer(i) => Self::parse(&i.to_string()),
            toml::Value::Boolean(b) => Self::parse(&b.to_string()),
            other => Err(format!("found a TOML {}", other.type_str())),
        }
    }

    /// The value as TOML (`None`: unset).
    fn to_toml(&self) -> Option<String>;
}

/// A TOML string literal, quoted and escaped.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `true`/`false`, also `1`/`0`, `yes`/`no`, `on`/`off` (any case).
impl SettingType for bool {
    const EXPECTED: &'static str = "true or false (also 1/0, yes/no, on/off)";
    const KIND: Kind = Kind::Bool;

    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(String::new()),
        }
    }

    fn to_toml(&self) -> Option<String> {
        Some(self.to_string())
    }
}

macro_rules! whole_number {
    ($($t:ty),+) => {$(
        impl SettingType for $t {
            const EXPECTED: &'static str = "a whole number (0 or more)";

            fn parse(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|e: std::num::ParseIntError| e.to_string())
            }

            fn to_toml(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )+};
}

whole_number!(u32, u64, usize);

/// Any text.
impl SettingType for String {
    const EXPECTED: &'static str = "text";

    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }

    fn to_toml(&self) -> Option<String> {
        Some(quoted(self))
    }
}

/// A file path.
impl SettingType for PathBuf {
    const EXPECTED: &'static str = "a file path";

    fn parse(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }

    fn to_toml(&self) -> Option<String> {
        Some(quoted(&self.display().to_string()))
    }
}

/// Unset when empty: `--api-key ""` or `SHARDCAST_API_KEY=` clears a value set below.
impl<T: SettingType> SettingType for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;

    fn parse(text: &str) -> Result<Self, String> {
        match text.is_empty() {
            true => Ok(None),
            false => T::parse(text).map(Some),
        }
    }

    fn to_toml(&self) -> Option<String> {
        self.as_ref().and_then(T::to_toml)
    }
}

/// A list: `a,b` as text, `["a", "b"]` (or `"a,b"`) in TOML. Empty text is an empty list.
impl SettingType for Vec<String> {
    const EXPECTED: &'static str = "a comma-separated list (a TOML array in the file)";
    const KIND: Kind = Kind::List;

    fn parse(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect())
    }

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let toml::Value::Array(items) = value else {
            return match value {
                toml::Value::String(s) => Self::parse(s),
                other => Err(format!("found a TOML {}", other.type_str())),
            };
        };
        let item = |v: &toml::Value| v.as_str().map(String::from);
        items
            .iter()
            .map(item)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| "an item is not a string".to_owned())
    }

    fn to_toml(&self) -> Option<String> {
        let items = self.iter().map(|s| quoted(s)).collect::<Vec<_>>();
        Some(format!("[{}]", items.join(", ")))
    }
}

/// `HOST:PORT` where HOST is an IP address (IPv6 in brackets) or a host name, resolved
/// when the server starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort(pub String);

impl SettingType for HostPort {
    const EXPECTED: &'static str =
        "HOST:PORT, e.g. 127.0.0.1:8081, 0.0.0.0:8081, [::]:8081 or localhost:8081";

    fn parse(text: &str) -> Result<Self, String> {
        let (host, port) = text.rsplit_once(':').ok_or("no `:PORT`")?;
        port.parse::<u16>()
            .map_err(|_| format!("port `{port}` is not 0 to 65535"))?;
        match host.is_empty() {
            true => Err("no host before `:`".to_owned()),
            false => Ok(HostPort(text.to_owned())),
        }
    }

    fn to_toml(&self) -> Option<String> {
        Some(quoted(&self.0))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal unless `NO_COLOR` is set).
    Text,
    /// One JSON object per line (`timestamp`, `level`, `message`, fields, `target`).
    Json,
}

/// Who may see the dashboard.
impl SettingType for shardcast::config::DashboardMode {
    const EXPECTED: &'static str = "off, protected or public";

    fn parse(text: &str) -> Result<Self, String> {
        text.parse().map_err(|_| String::new())
    }

    fn to_toml(&self) -> Option<String> {
        Some(quoted(self.as_str()))
    }
}

/// How the Redis subscriber listens.
impl SettingType for shardcast::redis::SubscribeMode {
    const EXPECTED: &'static str = "interest or patterns";

    fn parse(text: &str) -> Result<Self, String> {
        text.parse().map_err(|_| String::new())
    }

    fn to_toml(&self) -> Option<String> {
        Some(quoted(self.as_str()))
    }
}

impl SettingType for LogFormat {
    const EXPECTED: &'static str = "text or json";

    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(String::new()),
        }
    }

    fn to_toml(&self) -> Option<String> {
        Some(quoted(&self.to_string()))
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// A `tracing` filter in the `RUST_LOG` syntax (`info`, `warn,shardcast=debug`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(pub String);

impl SettingType for LogFilter {
    const EXPECTED: &'static str = "a log filter such as `info` or `warn,shardcast=debug`";

    fn parse(text: &str) -> Result<Self, String> {
        tracing_subscriber::EnvFilter::builder()
            .parse(text)
            .map(|_| LogFilter(text.to_owned()))
            .map_err(|e| e.to_string())
    }

    fn to_toml(&self) -> Option<String> {
        Some(quoted(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_the_usual_spellings() {
        for yes in ["true", "1", "yes", "ON", "True"] {
            assert_eq!(bool::parse(yes), Ok(true), "{yes}");
        }
        for no in ["false", "0", "no", "off"] {
            assert_eq!(bool::parse(no), Ok(false), "{no}");
        }
        assert!(bool::parse("maybe").is_err());
    }

    #[test]
    fn listen_takes_host_names_and_checks_the_port() {
        assert!(HostPort::parse("localhost:8081").is_ok());
        assert!(HostPort::parse("[::1]:0").is_ok());
        assert!(HostPort::parse("localhost").is_err());
        assert!(HostPort::parse("host:99999").is_err());
        assert!(HostPort::parse(":80").is_err());
    }

    #[test]
    fn lists_come_from_text_or_toml_arrays() {
        assert_eq!(
            Vec::<String>::parse(" a, b ,,"),
            Ok(vec!["a".into(), "b".into()])
        );
        let array = toml::Value::Array(vec!["x,y".into()]);
        assert_eq!(Vec::<String>::from_toml(&array), Ok(vec!["x,y".into()]));
        assert!(Vec::<String>::from_toml(&toml::Value::Integer(1)).is_err());
    }
}

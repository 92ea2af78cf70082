//! Addresses: the WebSocket URL, the Redis and HTTP publish endpoints, the loopback-only
//! policy, and the source addresses clients bind to.
//!
//! Every address is resolved once at start-up. Unless `--allow-non-loopback` is given,
//! each must resolve to 127.0.0.0/8 or ::1 only.

use crate::error::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// A WebSocket endpoint.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// Resolved address.
    pub addr: SocketAddr,
    /// `Host` header value (`host:port`).
    pub host: String,
    /// Request path, e.g. `/ws`.
    pub path: String,
    /// `wss://`: TLS to `server_name`.
    pub tls: bool,
    /// The host as the TLS certificate must name it (no port, no brackets).
    pub server_name: String,
}

/// Parsed `scheme://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    /// Lower-case scheme.
    pub scheme: String,
    /// Host name or IP (brackets removed for IPv6).
    pub host: String,
    /// Port (scheme default when absent).
    pub port: u16,
    /// Path (with query), `/` when absent.
    pub path: String,
    /// `user:password@` part, if any.
    pub userinfo: Option<String>,
}

/// Splits a URL of one of the schemes this tool speaks.
pub fn parse_url(url: &str) -> Result<UrlParts> {
    let bad = |why: &str| Error::Config(format!("invalid URL {url:?}: {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("missing scheme://"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "ws" | "http" => 80,
        "wss" => 443,
        "redis" => 6379,
        "https" | "rediss" => {
            return Err(bad(
                "TLS is supported for wss:// only; use http:// or redis://",
            ));
        }
        _ => return Err(bad("unknown scheme")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, authority),
    };
    let (host, port) =
        split_host_port(hostport, default_port).ok_or_else(|| bad("bad host or port"))?;
    Ok(UrlParts {
        scheme,
        host,
        port,
        path: path.to_string(),
        userinfo,
    })
}

fn split_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if rest.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None if !s.is_empty() => Some((s.to_string(), default_port)),
        None => None,
    }
}

/// Resolves `host:port`, enforcing the loopback policy on every resolved address.
pub fn resolve(host: &str, port: u16, allow_non_loopback: bool) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Config(format!("cannot resolve {host}:{port}: {e}")))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| Error::Config(format!("{host} resolves to nothing")))?;
    if !allow_non_loopback && addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(Error::NonLoopback(format!("{host}:{port}")));
    }
    Ok(first)
}

impl Target {
    /// Parses and resolves a `ws://` or `wss://host:port/path` URL.
    pub fn from_url(url: &str, allow_non_loopback: bool) -> Result<Target> {
        let p = parse_url(url)?;
        if p.scheme != "ws" && p.scheme != "wss" {
            return Err(Error::Config(format!(
                "--url must be ws://… or wss://…, got {url:?}"
            )));
        }
        let addr = resolve(&p.host, p.port, allow_non_loopback)?;
        let host = if p.host.contains(':') {
            format!("[{}]:{}", p.host, p.port)
        } else {
            format!("{}:{}", p.host, p.port)
        };
        Ok(Target {
            url: url.to_string(),
            addr,
            host,
            path: p.path,
            tls: p.scheme == "wss",
            server_name: p.host,
        })
    }
}

/// The source addresses clients bind to, round-robin by client index.
#[derive(Debug, Clone, Default)]
pub struct SourceAddrs(Vec<IpAddr>);

impl SourceAddrs {
    /// `count` addresses 127.0.0.1, 127.0.0.2, …; `count <= 1` lets the kernel choose.
    /// More than one needs an IPv4 loopback target (each source address has its own
    /// ~28k ephemeral ports towards one destination).
    pub fn loopback(count: u32, target: SocketAddr) -> Result<SourceAddrs> {
        if count <= 1 {
            return Ok(SourceAddrs(Vec::new()));
        }
        if !matches!(target.ip(), IpAddr::V4(ip) if ip.is_loopback()) {
            return Err(Error::Config(
                "--source-ips > 1 needs an IPv4 loopback target (127.0.0.0/8)".into(),
            ));
        }
        if count > 65_534 {
            return Err(Error::Config("--source-ips is at most 65534".into()));
        }
        let base = u32::from(Ipv4Addr::new(127, 0, 0, 1));
        Ok(SourceAddrs(
            (0..count)
                .map(|k| IpAddr::V4(Ipv4Addr::from(base + k)))
                .collect(),
        ))
    }

    /// Source address for client `i` (`None`: kernel's choice).
    pub fn pick(&self, i: u64) -> Option<IpAddr> {
        if self.0.is_empty() {
            None
        } else {
            Some(self.0[(i % self.0.len() as u64) as usize])
        }
    }

    /// Number of explicit source addresses.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the kernel chooses the source address.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let p = parse_url("ws://127.0.0.1:9000/ws").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.path.as_str()),
            ("127.0.0.1", 9000, "/ws")
        );
        let p = parse_url("redis://:pw@localhost:6380/2").unwrap();
        assert_eq!(
            (p.userinfo.as_deref(), p.port, p.path.as_str()),
            (Some(":pw"), 6380, "/2")
        );
        let p = parse_url("http://[::1]:80").unwrap();
        assert_eq!((p.host.as_str(), p.path.as_str()), ("::1", "/"));
        assert_eq!(parse_url("ws://localhost").unwrap().port, 80);
        assert_eq!(parse_url("wss://x").unwrap().port, 443);
        assert!(parse_url("https://x").is_err());
        assert!(parse_url("ws://x:notaport/").is_err());
        assert!(parse_url("127.0.0.1:80").is_err());
    }

    #[test]
    fn refuses_non_loopback_unless_allowed() {
        assert!(matches!(
            resolve("10.1.2.3", 80, false),
            Err(Error::NonLoopback(_))
        ));
        assert!(resolve("10.1.2.3", 80, true).is_ok());
        assert!(resolve("127.0.0.5", 80, false).is_ok());
        assert!(Target::from_url("ws://127.0.0.1:1/ws", false).is_ok());
    }

    #[test]
    fn source_addresses_round_robin() {
        let t: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let s = SourceAddrs::loopback(3, t).unwrap();
        let picked: Vec<_> = (0..4).map(|i| s.pick(i).unwrap().to_string()).collect();
        assert_eq!(picked, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]);
        assert!(SourceAddrs::loopback(1, t).unwrap().pick(5).is_none());
        assert!(SourceAddrs::loopback(2, "[::1]:1".parse().unwrap()).is_err());
    }
}

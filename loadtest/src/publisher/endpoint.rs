//! Publish endpoints parsed from URLs, with the loopback policy applied.

use crate::cli::{CommonArgs, PublishArgs, PublishVia};
use crate::error::{Error, Result};
use crate::publisher::Endpoint;
use crate::publisher::resp::{self, Reply};
use crate::target::{Target, parse_url, resolve};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A Redis server: `redis://[[user]:password@]host[:port][/db]`.
#[derive(Debug, Clone)]
pub struct RedisEndpoint {
    /// Address.
    pub addr: SocketAddr,
    /// ACL user, if any.
    pub user: Option<String>,
    /// Password, if any.
    pub password: Option<String>,
    /// Database index, if not 0.
    pub db: Option<u32>,
}

impl RedisEndpoint {
    /// Parses and resolves a Redis URL.
    pub fn from_url(url: &str, allow_non_loopback: bool) -> Result<Self> {
        let p = parse_url(url)?;
        if p.scheme != "redis" {
            return Err(Error::Config(format!(
                "--redis must be redis://…, got {url:?}"
            )));
        }
        let (user, password) = match p
            .userinfo
            .as_deref()
            .map(|u| u.split_once(':').unwrap_or(("", u)))
        {
            Some((u, pw)) => ((!u.is_empty()).then(|| u.to_string()), Some(pw.to_string())),
            None => (None, None),
        };
        let db = p.path.trim_start_matches('/');
        let db = if db.is_empty() {
            None
        } else {
            Some(
                db.parse()
                    .map_err(|_| Error::Config(format!("bad Redis db in {url:?}")))?,
            )
        };
        Ok(RedisEndpoint {
            addr: resolve(&p.host, p.port, allow_non_loopback)?,
            user,
            password,
            db,
        })
    }

    /// Connects, authenticates and selects the database.
    pub async fn connect(&self) -> std::result::Result<TcpStream, String> {
        let mut s = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect to Redis {}: {e}", self.addr))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        if let Some(pw) = &self.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = &self.user {
                args.push(u.as_bytes());
            }
            args.push(pw.as_bytes());
            request(&mut s, &args).await?;
        }
        if let Some(db) = self.db {
            request(&mut s, &[b"SELECT", db.to_string().as_bytes()]).await?;
        }
        Ok(s)
    }
}

/// Sends one command and reads its reply (set-up only; not pipelined).
pub async fn request(s: &mut TcpStream, args: &[&[u8]]) -> std::result::Result<Reply, String> {
    let mut out = Vec::new();
    resp::command(args, &mut out);
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((reply, _)) = resp::parse(&buf)? {
            return match reply {
                Reply::Error(e) => Err(format!("Redis: {e}")),
                r => Ok(r),
            };
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("Redis closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The HTTP publish API: `POST http://host:port/api/publish` with a bearer key.
#[derive(Debug, Clone)]
pub struct HttpEndpoint {
    /// Address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Request path.
    pub path: String,
    /// Bearer key.
    pub api_key: String,
    /// Parallel keep-alive connections.
    pub conns: usize,
}

impl HttpEndpoint {
    /// Parses and resolves an `http://` URL.
    pub fn from_url(
        url: &str,
        api_key: String,
        conns: usize,
        allow_non_loopback: bool,
    ) -> Result<Self> {
        let p = parse_url(url)?;
        if p.scheme != "http" {
            return Err(Error::Config(format!(
                "--api-url must be http://…, got {url:?}"
            )));
        }
        let addr = resolve(&p.host, p.port, allow_non_loopback)?;
        Ok(HttpEndpoint {
            addr,
            host: format!("{}:{}", p.host, p.port),
            path: p.path,
            api_key,
            conns: conns.max(1),
        })
    }
}

impl Endpoint {
    /// The endpoint the publisher options name: `--publish`, else Redis with `--redis`,
    /// else HTTP with `--api-key` (at `--api-url`, default `/api/publish` on the host of
    /// `--url`). `scenario` names the caller in the error when neither is given.
    pub fn from_args(p: &PublishArgs, common: &CommonArgs, scenario: &str) -> Result<Endpoint> {
        let allow = common.allow_non_loopback;
        match chosen_path(p) {
            Some(PublishVia::Redis) => {
                let url = p
                    .redis
                    .as_deref()
                    .ok_or_else(|| Error::Config("--publish redis needs --redis URL".into()))?;
                Ok(Endpoint::Redis(RedisEndpoint::from_url(url, allow)?))
            }
            Some(PublishVia::Http) => http_endpoint(p, common).map(Endpoint::Http),
            None => Err(Error::Config(format!(
                "{scenario} needs a publisher: --redis URL or --api-key KEY"
            ))),
        }
    }
}

/// `--publish`, else what the given options imply.
fn chosen_path(p: &PublishArgs) -> Option<PublishVia> {
    p.publish
        .or(p.redis.as_ref().map(|_| PublishVia::Redis))
        .or(p.api_key.as_ref().map(|_| PublishVia::Http))
}

fn http_endpoint(p: &PublishArgs, common: &CommonArgs) -> Result<HttpEndpoint> {
    let allow = common.allow_non_loopback;
    let key = p
        .api_key
        .clone()
        .ok_or_else(|| Error::Config("--publish http needs --api-key".into()))?;
    let url = match &p.api_url {
        Some(u) => u.clone(),
        None => format!(
            "http://{}/api/publish",
            Target::from_url(&common.url, allow)?.host
        ),
    };
    HttpEndpoint::from_url(&url, key, p.http_conns, allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_urls() {
        let e = RedisEndpoint::from_url("redis://:pw@127.0.0.1:6390/3", false).unwrap();
        assert_eq!(
            (e.addr.port(), e.user, e.password.as_deref(), e.db),
            (6390, None, Some("pw"), Some(3))
        );
        let e = RedisEndpoint::from_url("redis://u:p@127.0.0.1", false).unwrap();
        assert_eq!(
            (e.addr.port(), e.user.as_deref(), e.db),
            (6379, Some("u"), None)
        );
        assert!(RedisEndpoint::from_url("http://127.0.0.1", false).is_err());
    }

    #[test]
    fn parses_http_urls() {
        let e = HttpEndpoint::from_url("http://127.0.0.1:9000/api/publish", "k".into(), 0, false)
            .unwrap();
        assert_eq!(
            (e.host.as_str(), e.path.as_str(), e.conns),
            ("127.0.0.1:9000", "/api/publish", 1)
        );
    }
}

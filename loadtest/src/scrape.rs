//! Reading a server's Prometheus text (`GET /metrics`), for `fanout --node-metric`.
//!
//! One plain-HTTP/1.0 request per scrape (HTTP/1.0 so the answer is never chunked), to
//! the node's own address (already through the loopback check), bounded by
//! [`SCRAPE_TIMEOUT`]. A metric is the sum of all its samples (every label set: shards,
//! links, kinds), `None` when the text has none, so a metric a server does not export
//! is reported as absent rather than failing the run.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The path scraped on every node.
pub const METRICS_PATH: &str = "/metrics";

/// The longest one scrape (connect, request, whole answer) may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest answer read (a shardcast node's text is a few tens of KiB).
const MAX_ANSWER_BYTES: u64 = 16 << 20;

/// `GET /metrics` from `addr` (`Host: host`); the body when the answer is 200.
pub async fn fetch(addr: SocketAddr, host: &str) -> io::Result<String> {
    tokio::time::timeout(SCRAPE_TIMEOUT, fetch_unbounded(addr, host))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "metrics scrape timed out"))?
}

async fn fetch_unbounded(addr: SocketAddr, host: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let request =
        format!("GET {METRICS_PATH} HTTP/1.0\r\nHost: {host}\r\nAccept: text/plain\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut answer)
        .await?;
    body_of(&answer)
}

/// The body of a complete `200` answer (the connection closed at its end).
fn body_of(answer: &[u8]) -> io::Result<String> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(answer) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("incomplete HTTP answer".into())),
        Err(e) => return Err(bad(format!("bad HTTP answer: {e}"))),
    };
    match response.code {
        Some(200) => Ok(String::from_utf8_lossy(&answer[head..]).into_owned()),
        code => Err(bad(format!("{METRICS_PATH} answered {code:?}"))),
    }
}

/// The sum of every sample of metric `name` in Prometheus text, `None` when it has none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(sample_of)
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .reduce(|a, b| a + b)
}

/// `(name, value)` of a sample line (`name{labels} value [timestamp]`); `None` for
/// comments, blank lines and lines that do not parse.
fn sample_of(line: &str) -> Option<(&str, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t'])?;
    let rest = &line[name_end..];
    let rest = match rest.strip_prefix('{') {
        Some(labelled) => &labelled[labelled.rfind('}')? + 1..],
        None => rest,
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((&line[..name_end], value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP shardcast_deliveries_total Frames queued to clients.\n\
        # TYPE shardcast_deliveries_total counter\n\
        shardcast_deliveries_total{shard=\"0\"} 120\n\
        shardcast_deliveries_total{shard=\"1\"} 30\n\
        shardcast_deliveries_total_other 7\n\
        shardcast_redis_received_total 42 1700000000000\n\
        shardcast_redis_link_up{link=\"a b}\"} 1\n\
        broken_line{shard=\"0\" 5\n";

    #[test]
    fn sums_every_label_set_of_a_metric() {
        assert_eq!(metric_sum(TEXT, "shardcast_deliveries_total"), Some(150.0));
        assert_eq!(
            metric_sum(TEXT, "shardcast_redis_received_total"),
            Some(42.0)
        );
        assert_eq!(metric_sum(TEXT, "shardcast_redis_link_up"), Some(1.0));
    }

    #[test]
    fn a_missing_or_broken_metric_is_none() {
        assert_eq!(metric_sum(TEXT, "shardcast_redis_subscriptions"), None);
        assert_eq!(metric_sum(TEXT, "broken_line"), None);
        assert_eq!(metric_sum("", "x"), None);
    }

    #[test]
    fn takes_the_body_of_a_200_only() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nx_total 1\n";
        assert_eq!(body_of(ok).expect("200"), "x_total 1\n");
        assert!(body_of(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(body_of(b"HTTP/1.1 200 OK\r\ncontent-").is_err());
    }

    #[tokio::test]
    async fn fetches_from_a_loopback_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.0 200 OK\r\n\r\nm_total{a=\"1\"} 2\nm_total 3\n")
                .await;
        });
        let text = fetch(addr, &addr.to_string()).await.expect("scrape");
        assert_eq!(metric_sum(&text, "m_total"), Some(5.0));
    }
}

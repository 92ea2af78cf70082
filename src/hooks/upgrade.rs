//! What the client's WebSocket upgrade request said: the facts an application
//! authenticates a socket by when its users already hold a session (a cookie, a header
//! set by a proxy, a query parameter).
//!
//! # Contract
//!
//! Every connection's [`UpgradeInfo`] is taken from its upgrade request, whichever way it
//! came in (the engine's own listener or an application's router, see
//! `mount`), and kept only until the connection authenticates: it is handed to
//! the [`Authenticator`](super::Authenticator) in [`AuthRequest::upgrade`](super::AuthRequest)
//! and dropped with the authenticator's future, so an authenticated idle connection does
//! not pay for its headers. What the application wants to keep longer goes into the
//! [`Identity`](super::Identity)'s metadata.

use std::net::SocketAddr;

/// The facts of a connection's upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeInfo {
    /// The peer's address.
    pub peer: SocketAddr,
    /// The request path, without the query string.
    pub path: String,
    /// The query string, without the `?` (`None` when the target had none).
    pub query: Option<String>,
    /// Every header as (lowercase name, value), in the order received; values that are
    /// not UTF-8 are decoded lossily.
    pub headers: Vec<(String, String)>,
}

impl UpgradeInfo {
    /// An upgrade request with no path, query or headers: what a connection that did not
    /// come through HTTP is given.
    pub fn bare(peer: SocketAddr) -> Self {
        UpgradeInfo {
            peer,
            path: String::new(),
            query: None,
            headers: Vec::new(),
        }
    }

    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every value of the headers of that name (any case), in order.
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the cookie `name` in the `Cookie` headers (RFC 6265 §5.4: pairs
    /// separated by `;`; a value in double quotes is returned without them). The first
    /// one wins when a name repeats.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        cookie_in(self.headers_named("cookie"), name)
    }

    /// The first value of the query parameter `name`, as it appears in the query
    /// (still percent-encoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
    }
}

/// The value of the cookie `name` among the values of `Cookie` headers, parsed as
/// [`UpgradeInfo::cookie`] does: for an application's own HTTP routes, so the routes and
/// the socket read the session cookie the same way.
pub fn cookie_in<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> Option<&'a str> {
    cookie_headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, value)| unquote(value.trim()))
}

/// `value` without one pair of surrounding double quotes.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(headers: &[(&str, &str)], query: Option<&str>) -> UpgradeInfo {
        UpgradeInfo {
            peer: "127.0.0.1:1".parse().unwrap(),
            path: "/ws".into(),
            query: query.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn cookies_by_name_across_headers() {
        let info = info(
            &[
                ("cookie", "theme=dark; session=abc123"),
                ("cookie", "other=\"quoted value\"; session=second"),
            ],
            None,
        );
        assert_eq!(info.cookie("session"), Some("abc123"));
        assert_eq!(info.cookie("theme"), Some("dark"));
        assert_eq!(info.cookie("other"), Some("quoted value"));
        assert_eq!(info.cookie("sess"), None);
        assert_eq!(info.cookie("missing"), None);
    }

    #[test]
    fn headers_by_any_case_and_query_parameters() {
        let info = info(
            &[("x-forwarded-for", "10.0.0.1")],
            Some("a=1&b&token=x%20y"),
        );
        assert_eq!(info.header("X-Forwarded-For"), Some("10.0.0.1"));
        assert_eq!(info.query_param("token"), Some("x%20y"));
        assert_eq!(info.query_param("b"), Some(""));
        assert_eq!(info.query_param("c"), None);
        assert_eq!(UpgradeInfo::bare(info.peer).query_param("a"), None);
    }
}

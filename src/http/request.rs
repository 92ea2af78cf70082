//! Parsing one HTTP/1.1 request head and deciding its body framing, sans I/O.
//!
//! # Contract
//!
//! - [`parse_head`] takes the bytes received so far and returns the head and its length,
//!   `None` when more bytes are needed, or an error. It never reads a socket, so it can
//!   be fuzzed and unit-tested byte by byte; [`super::io`] feeds it.
//! - A head longer than [`MAX_HEAD`] is [`RequestError::HeadTooLarge`], whether or not
//!   it is complete.
//! - The request target must be origin-form (`/path?query`) or absolute-form
//!   (`http://host/path`, RFC 9112 §3.2.2: routed by its path, the authority and any
//!   `Host` header are ignored). `*` (asterisk-form) is kept as the path `*`, which no
//!   route serves. Anything else (authority-form) is malformed.
//! - [`body_length`] is the only framing rule (RFC 9112 §6.3): no body without
//!   `Content-Length`; exactly one `Content-Length` of ASCII digits; no
//!   `Transfer-Encoding` at all (chunked bodies are not supported). Whatever breaks it
//!   leaves the connection's framing unknown, so the caller answers once and closes: the
//!   rest of the stream is never read as another request (request smuggling).

/// The largest request head accepted (431 beyond).
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 1024 * 1024;
const MAX_HEADERS: usize = 48;

/// The methods of RFC 9110 §9 and PATCH (RFC 5789). A route that does not serve one of
/// these answers 405; any other method is not implemented at all (501).
pub const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The 400 for a target in none of the accepted forms.
const BAD_TARGET: &str = "request target must be a path or an http(s) URI";
/// The 400 for any `Transfer-Encoding`.
const NO_TRANSFER_ENCODING: &str = "Transfer-Encoding is not supported; send Content-Length";
/// The 400 for a `Content-Length` that is not 1*DIGIT.
const NOT_DIGITS: &str = "Content-Length must be decimal digits";

/// A parsed request head. Header names are lowercase.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// `GET`, `POST`, … as sent (methods are case-sensitive).
    pub method: String,
    /// The path of the target, without the query string (and without the scheme and
    /// authority of an absolute-form target).
    pub path: String,
    /// The query string of the target, without the `?` (`None` when it has none).
    pub query: Option<String>,
    /// HTTP minor version (0 or 1).
    pub minor_version: u8,
    /// Header name (lowercase) and value pairs.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every value of the headers of that (lowercase) name, in order.
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header lists `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether this asks for a WebSocket upgrade.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header_has_token("upgrade", "websocket")
    }

    /// Whether this is a HEAD request (its response carries no body).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// Whether the method is one of [`KNOWN_METHODS`].
    pub fn has_known_method(&self) -> bool {
        KNOWN_METHODS.contains(&self.method.as_str())
    }

    /// Whether the connection stays open after the response.
    pub fn keep_alive(&self) -> bool {
        if self.header_has_token("connection", "close") {
            return false;
        }
        self.minor_version >= 1 || self.header_has_token("connection", "keep-alive")
    }
}

/// Why a request could not be read. Every variant but [`Closed`](Self::Closed),
/// [`Idle`](Self::Idle) and [`Io`](Self::Io) is answered (status below), then the
/// connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The peer closed the connection before a complete request: nothing to answer.
    #[error("connection closed")]
    Closed,
    /// No byte of a new request arrived in time (an idle keep-alive connection): closed
    /// quietly, without an unsolicited 408.
    #[error("idle connection timed out")]
    Idle,
    /// A request started but its head or body did not arrive in time (slowloris): 408.
    #[error("request timed out")]
    Timeout,
    /// The head exceeded `MAX_HEAD` or had too many headers: 431.
    #[error("request head too large")]
    HeadTooLarge,
    /// The body exceeded `MAX_BODY`: 413.
    #[error("request body too large")]
    BodyTooLarge,
    /// Not an HTTP/1.x head, an unusable target, or ambiguous body framing: 400.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// A socket error: nothing to answer.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Parses the request head at the start of `buf`: the head and the bytes it used, or
/// `None` when the head is not complete yet (and not over `MAX_HEAD`). Pure (no I/O),
/// so it is fuzzed directly.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(_) => return Err(RequestError::Malformed("not an HTTP/1.x request")),
    };
    Ok(Some((head_of(&req)?, used)))
}

/// The owned head of a complete parse.
fn head_of(req: &httparse::Request<'_, '_>) -> Result<RequestHead, RequestError> {
    let target = req.path.unwrap_or_default();
    let path = target_path(target).ok_or(RequestError::Malformed(BAD_TARGET))?;
    Ok(RequestHead {
        method: req.method.unwrap_or_default().to_owned(),
        path: path.to_owned(),
        query: target.split_once('?').map(|(_, query)| query.to_owned()),
        minor_version: req.version.unwrap_or(1),
        headers: req.headers.iter().map(owned_header).collect(),
    })
}

/// A header as (lowercase name, value); a value that is not UTF-8 is decoded lossily.
fn owned_header(header: &httparse::Header<'_>) -> (String, String) {
    let value = String::from_utf8_lossy(header.value).into_owned();
    (header.name.to_ascii_lowercase(), value)
}

/// The path a request target routes by (RFC 9112 §3.2): origin-form as it is, the path of
/// an absolute `http`/`https` URI (`/` when it has none), `*` as it is; the query is
/// dropped. `None` for any other form.
pub fn target_path(target: &str) -> Option<&str> {
    let path = match target.as_bytes().first() {
        Some(b'/') => target,
        _ if target == "*" => return Some(target),
        _ => absolute_path(target)?,
    };
    Some(path.split_once('?').map_or(path, |(path, _query)| path))
}

/// The path (and query) of an absolute `http://` or `https://` target; `/` when it has
/// none.
fn absolute_path(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let path = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
    web.then_some(if path.starts_with('/') { path } else { "/" })
}

/// The length of the body that follows `head` (RFC 9112 §6.3), or why the framing cannot
/// be trusted: any `Transfer-Encoding`, more than one `Content-Length` (even equal ones),
/// or a value other than ASCII digits (`+45`, `-1`, `0x10`, `5, 5`) is
/// [`RequestError::Malformed`]; over [`MAX_BODY`] is [`RequestError::BodyTooLarge`].
pub fn body_length(head: &RequestHead) -> Result<usize, RequestError> {
    if head.header("transfer-encoding").is_some() {
        return Err(RequestError::Malformed(NO_TRANSFER_ENCODING));
    }
    let mut values = head.headers_named("content-length");
    match (values.next(), values.next()) {
        (None, _) => Ok(0),
        (Some(value), None) => content_length(value),
        (Some(_), Some(_)) => Err(RequestError::Malformed("duplicate Content-Length")),
    }
}

/// One `Content-Length` value: optional whitespace around 1*DIGIT, at most [`MAX_BODY`].
fn content_length(value: &str) -> Result<usize, RequestError> {
    let digits = value.trim_matches([' ', '\t']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequestError::Malformed(NOT_DIGITS));
    }
    let len = digits.parse().ok().filter(|&len| len <= MAX_BODY);
    len.ok_or(RequestError::BodyTooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> RequestHead {
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    fn framing(headers: &str) -> Result<usize, RequestError> {
        body_length(&head(&format!("POST /p HTTP/1.1\r\n{headers}\r\n")))
    }

    #[test]
    fn parses_head_and_leaves_the_rest() {
        let raw = b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\r\nrest";
        let (head, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.path, "/ws");
        assert!(head.is_websocket_upgrade());
        assert!(head.header_has_token("connection", "upgrade"));
        assert_eq!(&raw[used..], b"rest");
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost").unwrap().is_none());
        assert!(parse_head(b"\x16\x03\x01garbage\r\n\r\n").is_err());
    }

    #[test]
    fn head_over_the_limit_is_too_large_complete_or_not() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        let partial = parse_head(long.as_bytes());
        assert!(matches!(partial, Err(RequestError::HeadTooLarge)));
        let complete = parse_head(format!("{long}\r\n").as_bytes());
        assert!(matches!(complete, Err(RequestError::HeadTooLarge)));
    }

    #[test]
    fn absolute_form_target_is_routed_by_its_path() {
        for (target, path) in [
            ("http://h/health", "/health"),
            ("HTTPS://h:8/api/stats?x=1", "/api/stats"),
            ("http://h", "/"),
            ("http://h?q", "/"),
            ("/a?b", "/a"),
            ("*", "*"),
        ] {
            assert_eq!(target_path(target), Some(path), "{target}");
        }
        for target in ["host:443", "ftp://h/x", "", "health"] {
            assert_eq!(target_path(target), None, "{target}");
        }
        let err = parse_head(b"CONNECT host:443 HTTP/1.1\r\n\r\n").unwrap_err();
        assert!(matches!(err, RequestError::Malformed(_)), "{err}");
    }

    #[test]
    fn body_length_comes_from_one_content_length_of_digits() {
        assert_eq!(framing("").unwrap(), 0);
        assert_eq!(framing("Content-Length: 12\r\n").unwrap(), 12);
        assert_eq!(framing("Content-Length:  007 \r\n").unwrap(), 7);
        let too_big = format!("Content-Length: {}\r\n", MAX_BODY + 1);
        assert!(matches!(framing(&too_big), Err(RequestError::BodyTooLarge)));
        let overflow = "Content-Length: 99999999999999999999999999\r\n";
        assert!(matches!(framing(overflow), Err(RequestError::BodyTooLarge)));
    }

    #[test]
    fn request_smuggling_framing_is_malformed() {
        for headers in [
            "Content-Length: 0\r\nContent-Length: 45\r\n",
            "Content-Length: 45\r\nContent-Length: 0\r\n",
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            "Content-Length: +45\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: 5, 5\r\n",
            "Content-Length: 4 5\r\n",
            "Content-Length: \r\n",
            "Transfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            "Transfer-Encoding: identity\r\n",
        ] {
            let got = framing(headers);
            assert!(
                matches!(got, Err(RequestError::Malformed(_))),
                "{headers:?}: {got:?}"
            );
        }
    }
}

//! Small HTTP/1.1 responses and their encoding, sans I/O ([`super::io`] writes them).

/// A complete response, ready to write.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// Headers after `Content-Type`, `Content-Length` and `Connection`.
    pub extra_headers: Vec<(&'static str, String)>,
    /// The body (not sent in the answer to a HEAD request).
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: &impl serde::Serialize) -> Self {
        Response {
            status,
            content_type: "application/json",
            extra_headers: Vec::new(),
            body: serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    /// A response with any body.
    pub fn body(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            extra_headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra_headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire; `keep_alive` decides the `Connection` header. The answer to
    /// a HEAD request (`head_request`) keeps every header, `Content-Length` included (the
    /// length the GET would have, RFC 9110 §9.3.2), and drops the body.
    pub fn encode(&self, keep_alive: bool, head_request: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" },
        );
        for (name, value) in &self.extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !head_request {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_response_has_no_body_but_the_get_length() {
        let response = Response::body(200, "text/plain", "hello");
        let get = String::from_utf8(response.encode(true, false)).unwrap();
        let head = String::from_utf8(response.encode(true, true)).unwrap();
        assert!(get.ends_with("\r\n\r\nhello"), "{get}");
        assert_eq!(head, get.trim_end_matches("hello"));
        assert!(head.contains("Content-Length: 5\r\n"), "{head}");
        assert!(head.contains("Connection: keep-alive\r\n"), "{head}");
    }
}

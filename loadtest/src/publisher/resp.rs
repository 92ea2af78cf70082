//! The few bits of RESP2 the publisher and subscriber need: encoding commands and
//! parsing replies incrementally from a read buffer.

use memchr::memmem;

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// `-ERR …`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` bulk string (`None` for nil).
    Bulk(Option<Vec<u8>>),
    /// `*n` array (`None` for nil).
    Array(Option<Vec<Reply>>),
}

/// Appends a command as a RESP array of bulk strings.
pub fn command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply from the front of `buf`: `Ok(None)` if incomplete, else the reply
/// and the bytes it used.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let Some(eol) = memmem::find(buf, b"\r\n") else {
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[1..eol]).map_err(|_| "non-UTF-8 RESP line".to_string())?;
    let after = eol + 2;
    let int = || {
        line.parse::<i64>()
            .map_err(|_| format!("bad RESP integer {line:?}"))
    };
    match buf[0] {
        b'+' => Ok(Some((Reply::Simple(line.to_string()), after))),
        b'-' => Ok(Some((Reply::Error(line.to_string()), after))),
        b':' => Ok(Some((Reply::Int(int()?), after))),
        b'$' => Ok(parse_bulk(buf, int()?, after)),
        b'*' => parse_array(buf, int()?, after),
        other => Err(format!("unexpected RESP type byte {other:#x}")),
    }
}

fn parse_bulk(buf: &[u8], len: i64, start: usize) -> Option<(Reply, usize)> {
    if len < 0 {
        return Some((Reply::Bulk(None), start));
    }
    let end = start + len as usize;
    (buf.len() >= end + 2).then(|| (Reply::Bulk(Some(buf[start..end].to_vec())), end + 2))
}

fn parse_array(buf: &[u8], len: i64, mut pos: usize) -> Result<Option<(Reply, usize)>, String> {
    if len < 0 {
        return Ok(Some((Reply::Array(None), pos)));
    }
    let mut items = Vec::with_capacity(len.min(64) as usize);
    for _ in 0..len {
        let Some((item, used)) = parse(&buf[pos..])? else {
            return Ok(None);
        };
        items.push(item);
        pos += used;
    }
    Ok(Some((Reply::Array(Some(items)), pos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        command(&[b"PUBLISH", b"ws:room:a", b"{}"], &mut out);
        assert_eq!(
            out,
            b"*3\r\n$7\r\nPUBLISH\r\n$9\r\nws:room:a\r\n$2\r\n{}\r\n"
        );
    }

    #[test]
    fn parses_replies_incrementally() {
        let msg = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n:3\r\n";
        for cut in 0..msg.len() - 4 {
            assert_eq!(parse(&msg[..cut]).unwrap(), None, "cut {cut}");
        }
        let (r, used) = parse(msg).unwrap().unwrap();
        let bulk = |s: &str| Reply::Bulk(Some(s.as_bytes().to_vec()));
        assert_eq!(
            r,
            Reply::Array(Some(vec![bulk("message"), bulk("ch"), bulk("hello")]))
        );
        assert_eq!(parse(&msg[used..]).unwrap(), Some((Reply::Int(3), 4)));
        assert_eq!(
            parse(b"-ERR x\r\n").unwrap().unwrap().0,
            Reply::Error("ERR x".into())
        );
        assert_eq!(parse(b"$-1\r\n").unwrap().unwrap().0, Reply::Bulk(None));
        assert!(parse(b"?\r\n").is_err());
    }
}

//! Server data messages from data frames (RFC 6455 §5.4) and, when permessage-deflate
//! was agreed, their inflation (RFC 7692 §6.2). Pure state, no I/O: a
//! [`super::WsConn`] feeds it the data frames it decodes; the tests feed it bytes.
//!
//! Owned by one connection. At rest it holds the connection's inflate [`Window`]
//! (nothing unless the server keeps context); while a fragmented message arrives it also
//! holds the fragments' bytes (compressed ones as received: they are inflated once, at
//! the last fragment). A message that is not compressed and not fragmented is handed
//! over straight from the read buffer.

use super::WsError;
use super::frame::{self, Frame, FrameError};
use super::inflate::{self, Window};

/// What one delivered message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Its length after inflation (as handed to the callback).
    pub len: usize,
    /// It arrived compressed.
    pub compressed: bool,
}

/// Reassembles (and inflates) one connection's messages.
pub struct Assembler {
    frag: Option<Vec<u8>>,
    frag_compressed: bool,
    window: Window,
    limit: usize,
}

impl Assembler {
    /// A connection's assembler; `window`: see [`Window::for_server`] (unused when the
    /// extension was not agreed: the codec then refuses RSV1); `limit`: the largest
    /// message accepted, after inflation.
    pub fn new(window: Window, limit: usize) -> Self {
        Assembler {
            frag: None,
            frag_compressed: false,
            window,
            limit,
        }
    }

    /// Takes one data frame (text, binary or continuation); when it completes a message,
    /// hands the message to `deliver` and says what it was.
    pub fn push(
        &mut self,
        f: &Frame<'_>,
        deliver: impl FnOnce(&[u8]),
    ) -> Result<Option<Delivered>, WsError> {
        match f.opcode {
            frame::OP_CONTINUATION => self.continuation(f, deliver),
            _ if self.frag.is_some() => Err(FrameError::Fragmentation.into()),
            _ if !f.fin => {
                self.frag = Some(f.payload.to_vec());
                self.frag_compressed = f.compressed;
                Ok(None)
            }
            _ => self.complete(f.payload, f.compressed, deliver).map(Some),
        }
    }

    fn continuation(
        &mut self,
        f: &Frame<'_>,
        deliver: impl FnOnce(&[u8]),
    ) -> Result<Option<Delivered>, WsError> {
        let acc = self.frag.as_mut().ok_or(FrameError::Fragmentation)?;
        if acc.len() + f.payload.len() > self.limit {
            return Err(FrameError::TooLarge((acc.len() + f.payload.len()) as u64).into());
        }
        acc.extend_from_slice(f.payload);
        if !f.fin {
            return Ok(None);
        }
        let msg = self.frag.take().unwrap_or_default();
        self.complete(&msg, self.frag_compressed, deliver).map(Some)
    }

    fn complete(
        &mut self,
        payload: &[u8],
        compressed: bool,
        deliver: impl FnOnce(&[u8]),
    ) -> Result<Delivered, WsError> {
        if !compressed {
            deliver(payload);
            return Ok(Delivered {
                len: payload.len(),
                compressed,
            });
        }
        let len = inflate::inflate(&mut self.window, payload, self.limit, |m| {
            deliver(m);
            m.len()
        })?;
        Ok(Delivered { len, compressed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::{OP_BINARY, OP_CONTINUATION, OP_TEXT, Rules, decode};
    use crate::ws::inflate::tests::Sender;

    const FIN: u8 = 0x80;
    const RSV1: u8 = 0x40;
    const DEFLATE: Rules = Rules {
        max_payload: 1 << 20,
        deflate: true,
    };

    /// Decodes `wire` frame by frame through `a`; the messages delivered, and what each was.
    fn run(a: &mut Assembler, wire: &[u8]) -> Result<Vec<(Vec<u8>, Delivered)>, WsError> {
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some((f, used)) = decode(&wire[pos..], DEFLATE)? {
            pos += used;
            let mut got = None;
            if let Some(d) = a.push(&f, |m| got = Some(m.to_vec()))? {
                out.push((got.expect("delivered"), d));
            }
        }
        assert_eq!(pos, wire.len(), "whole frames");
        Ok(out)
    }

    fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        frame::encode_server(b0, payload, &mut v);
        v
    }

    fn json(i: u32) -> Vec<u8> {
        format!(
            r#"{{"event":"bench","data":{{"t":{i},"s":{i},"p":"{}"}}}}"#,
            "ab".repeat(200)
        )
        .into_bytes()
    }

    fn assembler(keeps_context: bool) -> Assembler {
        Assembler::new(Window::for_server(keeps_context), 1 << 20)
    }

    #[test]
    fn a_single_compressed_frame_is_inflated() {
        let c = Sender::new(false).message(&json(7));
        let got = run(&mut assembler(false), &frame(FIN | RSV1 | OP_TEXT, &c)).unwrap();
        let want = Delivered {
            len: json(7).len(),
            compressed: true,
        };
        assert_eq!(got, vec![(json(7), want)]);
    }

    #[test]
    fn a_fragmented_compressed_message_is_inflated_once_whole() {
        let c = Sender::new(false).message(&json(8));
        let (a, rest) = c.split_at(c.len() / 3);
        let (b, z) = rest.split_at(rest.len() / 2);
        let mut wire = frame(RSV1 | OP_TEXT, a);
        wire.extend(frame(OP_CONTINUATION, b));
        wire.extend(frame(FIN | OP_CONTINUATION, z));
        // A plain message after it is handed over as is.
        wire.extend(frame(FIN | OP_BINARY, b"plain"));
        let got = run(&mut assembler(false), &wire).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((&got[0].0, got[0].1.compressed), (&json(8), true));
        assert_eq!((&got[1].0[..], got[1].1.compressed), (&b"plain"[..], false));
    }

    #[test]
    fn plain_fragments_are_joined() {
        let mut wire = frame(OP_TEXT, b"ab");
        wire.extend(frame(FIN | OP_CONTINUATION, b"cd"));
        let got = run(&mut assembler(false), &wire).unwrap();
        assert_eq!(got[0].0, b"abcd");
    }

    #[test]
    fn context_takeover_against_reset_per_message() {
        // A server that keeps context: the second message copies from the first.
        let mut kept = Sender::new(true);
        let mut wire = frame(FIN | RSV1 | OP_TEXT, &kept.message(&json(1)));
        wire.extend(frame(FIN | RSV1 | OP_TEXT, &kept.message(&json(2))));
        let got = run(&mut assembler(true), &wire).unwrap();
        assert_eq!(
            got.iter().map(|g| &g.0).collect::<Vec<_>>(),
            [&json(1), &json(2)]
        );
        // Read as if the server reset per message, the second cannot be inflated.
        let err = run(&mut assembler(false), &wire).unwrap_err();
        assert!(matches!(err, WsError::Inflate(_)), "{err}");
        // A server that resets per message reads the same either way.
        let mut reset = Sender::new(false);
        let mut wire = frame(FIN | RSV1 | OP_TEXT, &reset.message(&json(1)));
        wire.extend(frame(FIN | RSV1 | OP_TEXT, &reset.message(&json(2))));
        for keeps in [false, true] {
            assert_eq!(run(&mut assembler(keeps), &wire).unwrap().len(), 2);
        }
    }

    #[test]
    fn rsv1_without_negotiation_is_a_protocol_error() {
        let c = Sender::new(false).message(&json(3));
        let wire = frame(FIN | RSV1 | OP_TEXT, &c);
        assert_eq!(
            decode(&wire, Rules::plain(1 << 20)),
            Err(FrameError::Reserved)
        );
    }

    #[test]
    fn interleaving_and_stray_continuations_are_errors() {
        let stray = frame(FIN | OP_CONTINUATION, b"x");
        assert!(matches!(
            run(&mut assembler(false), &stray),
            Err(WsError::Frame(FrameError::Fragmentation))
        ));
        let mut wire = frame(OP_TEXT, b"a");
        wire.extend(frame(FIN | OP_TEXT, b"b"));
        assert!(matches!(
            run(&mut assembler(false), &wire),
            Err(WsError::Frame(FrameError::Fragmentation))
        ));
    }

    #[test]
    fn fragments_past_the_limit_are_refused() {
        let mut a = Assembler::new(Window::PerMessage, 4);
        let mut wire = frame(OP_TEXT, b"abc");
        wire.extend(frame(FIN | OP_CONTINUATION, b"de"));
        assert!(matches!(
            run(&mut a, &wire),
            Err(WsError::Frame(FrameError::TooLarge(5)))
        ));
    }
}

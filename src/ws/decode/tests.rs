//! The decoder's rules, driven with hand-built client frames.

use super::*;
use crate::ws::frame::apply_mask;

const LIMITS: Limits = Limits {
    max_payload: 1 << 20,
    max_fragments: 64,
};

fn decoder(max_payload: usize) -> FrameDecoder {
    FrameDecoder::new(Limits {
        max_payload,
        ..LIMITS
    })
}

fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1, 2, 3, 4];
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let mut body = payload.to_vec();
    apply_mask(&mut body, mask);
    out.extend_from_slice(&body);
    out
}

fn describe(event: WsEvent<'_>) -> String {
    match event {
        WsEvent::Message(Data::Text(t)) => t.to_owned(),
        WsEvent::Message(Data::Binary(b)) => format!("bin:{}", String::from_utf8_lossy(b)),
        WsEvent::Ping(p) => format!("ping:{}", String::from_utf8_lossy(p)),
        WsEvent::Pong => "pong".into(),
        WsEvent::Close(c) => format!("close:{c:?}"),
    }
}

fn decode_all(decoder: &mut FrameDecoder, input: &[u8]) -> Result<Vec<String>, DecodeError> {
    let mut seen = Vec::new();
    let mut buf = input.to_vec();
    decoder.feed(&mut buf, &mut Inflater::default(), |ev| {
        seen.push(describe(ev));
        Flow::Continue
    })?;
    Ok(seen)
}

/// Feeds `input` in chunks of `n`; the events, or the error with the chunk it came in.
fn decode_chunked(input: &[u8], n: usize) -> Result<Vec<String>, (DecodeError, usize)> {
    let mut d = decoder(1 << 20);
    let mut seen = Vec::new();
    for (i, chunk) in input.chunks(n).enumerate() {
        seen.extend(decode_all(&mut d, chunk).map_err(|e| (e, i))?);
    }
    Ok(seen)
}

#[test]
fn decodes_masked_text_and_binary_with_their_kind() {
    let mut d = decoder(1024);
    let mut input = client_frame(0x81, b"hello");
    input.extend(client_frame(0x82, b"bin"));
    assert_eq!(decode_all(&mut d, &input).unwrap(), ["hello", "bin:bin"]);
}

#[test]
fn byte_by_byte_input_is_reassembled_into_an_exactly_sized_buffer() {
    let payload = "z".repeat(70_000);
    let input = client_frame(0x81, payload.as_bytes());
    let mut d = decoder(1 << 20);
    let mut seen = Vec::new();
    for (i, chunk) in input.chunks(1000).enumerate() {
        seen.extend(decode_all(&mut d, chunk).unwrap());
        if i == 1 {
            assert_eq!(d.buffered(), input.len(), "reserved at the frame's size");
        }
    }
    assert_eq!(seen, [payload]);
    assert_eq!(d.buffered(), 0);
}

#[test]
fn fragments_and_interleaved_ping() {
    let mut d = decoder(1024);
    let mut input = client_frame(0x01, b"he");
    input.extend(client_frame(0x89, b"p"));
    input.extend(client_frame(0x80, b"llo"));
    assert_eq!(decode_all(&mut d, &input).unwrap(), ["ping:p", "hello"]);
}

#[test]
fn oversize_is_refused_before_the_body_arrives() {
    let mut d = decoder(10);
    let input = client_frame(0x81, &[b'a'; 11]);
    assert_eq!(decode_all(&mut d, &input[..6]), Err(DecodeError::TooBig));
    let mut d = decoder(4);
    let mut input = client_frame(0x01, b"abc");
    input.extend(client_frame(0x80, b"de"));
    assert_eq!(decode_all(&mut d, &input), Err(DecodeError::TooBig));
}

#[test]
fn too_many_fragments_are_refused() {
    let mut d = FrameDecoder::new(Limits {
        max_payload: 1024,
        max_fragments: 3,
    });
    let mut input = client_frame(0x01, b"a");
    input.extend(client_frame(0x00, b"b"));
    input.extend(client_frame(0x80, b"c"));
    assert_eq!(decode_all(&mut d, &input).unwrap(), ["abc"]);
    let mut input = client_frame(0x01, b"a");
    input.extend(client_frame(0x00, b"b"));
    input.extend(client_frame(0x00, b"c"));
    assert_eq!(decode_all(&mut d, &input), Err(DecodeError::TooBig));
}

#[test]
fn protocol_violations() {
    let unmasked = [0x81, 0x01, b'a'];
    let cases: [&[u8]; 5] = [
        &unmasked,
        &client_frame(0xC1, b"rsv"),
        &client_frame(0x83, b"op3"),
        &client_frame(0x80, b"orphan"),
        &client_frame(0x09, b"x"),
    ];
    for input in cases {
        let mut d = decoder(1024);
        assert!(
            matches!(decode_all(&mut d, input), Err(DecodeError::Protocol(_))),
            "{input:?}"
        );
    }
    let mut d = decoder(1024);
    let mut input = client_frame(0x01, b"a");
    input.extend(client_frame(0x81, b"b"));
    assert!(matches!(
        decode_all(&mut d, &input),
        Err(DecodeError::Protocol(_))
    ));
}

#[test]
fn close_stops_decoding() {
    let mut d = decoder(1024);
    let mut input = client_frame(0x88, &1000u16.to_be_bytes());
    input.extend(client_frame(0x81, b"after"));
    assert_eq!(decode_all(&mut d, &input).unwrap(), ["close:Some(1000)"]);
}

#[test]
fn invalid_utf8_text_fails_and_binary_passes() {
    let mut d = decoder(1024);
    let bad = client_frame(0x81, &[b'a', 0xFF]);
    assert_eq!(decode_all(&mut d, &bad), Err(DecodeError::InvalidUtf8));
    let mut d = decoder(1024);
    let bin = client_frame(0x82, &[b'a', 0xFF]);
    assert_eq!(decode_all(&mut d, &bin).unwrap(), ["bin:a\u{FFFD}"]);
}

#[test]
fn invalid_utf8_fails_in_the_fragment_that_brings_it() {
    // Autobahn 6.4.1: valid, then the fragment with an out-of-range code point, then more.
    let mut input = client_frame(0x01, "κόσμε".as_bytes());
    let second = input.len();
    input.extend(client_frame(0x00, &[0xF4, 0x90, 0x80, 0x80]));
    input.extend(client_frame(0x80, b"edited"));
    let (error, chunk) = decode_chunked(&input, second).unwrap_err();
    assert_eq!((error, chunk), (DecodeError::InvalidUtf8, 1));
}

#[test]
fn invalid_utf8_fails_before_its_frame_is_complete() {
    // Autobahn 6.4.3: one frame arriving in chops; the bad bytes are in the second chop.
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend_from_slice(&[0xF4, 0x90, 0x80, 0x80]);
    payload.extend_from_slice(&[b'x'; 40]);
    let input = client_frame(0x81, &payload);
    // "κόσμε" is 10 bytes: with a 6-byte header, 17-byte chops put 0xF4 last in the first
    // chop and the byte that makes it invalid first in the second.
    let (error, chunk) = decode_chunked(&input, 17).unwrap_err();
    assert_eq!((error, chunk), (DecodeError::InvalidUtf8, 1));
}

#[test]
fn text_split_anywhere_decodes_to_the_same_message() {
    let text = "κόσμε 😀 a\u{10FFFF}";
    let mut input = client_frame(0x01, &text.as_bytes()[..5]);
    input.extend(client_frame(0x80, &text.as_bytes()[5..]));
    for n in 1..input.len() {
        assert_eq!(decode_chunked(&input, n).unwrap(), [text], "chunks of {n}");
    }
}

#[test]
fn close_reasons_must_be_utf8() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0xCE, 0xBA, 0xE1, 0xBD]);
    let mut d = decoder(1024);
    assert_eq!(
        decode_all(&mut d, &client_frame(0x88, &payload)),
        Err(DecodeError::InvalidUtf8)
    );
    let mut d = decoder(1024);
    assert!(matches!(
        decode_all(&mut d, &client_frame(0x88, &[3])),
        Err(DecodeError::Protocol(_))
    ));
}

/// Found by fuzzing (on the decoder before this one): after an unfinished frame, a read
/// of many complete frames left the buffer as large as that whole read on an idle
/// connection. Only the unconsumed tail is kept, in a buffer of its own size.
#[test]
fn fuzz_regression_partial_keeps_only_the_tail() {
    let mut d = decoder(16);
    let frame = client_frame(0x82, b"ab");
    decode_all(&mut d, &frame[..1]).unwrap();
    let mut input = frame[1..].to_vec();
    for _ in 0..500 {
        input.extend(client_frame(0x82, b"ab"));
    }
    input.push(0x82);
    assert_eq!(decode_all(&mut d, &input).unwrap().len(), 501);
    assert!(
        d.buffered() <= 8,
        "holds {} bytes for a 1-byte tail",
        d.buffered()
    );
}

/// The payload of a frame the server's deflater compressed (header skipped).
fn deflated(payload: &[u8]) -> Vec<u8> {
    let frame = crate::ws::deflate::Deflater::default()
        .frame(crate::ws::frame::OpCode::Text, payload)
        .expect("compressible");
    let skip = match frame[1] {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    frame[skip..].to_vec()
}

fn deflating(max_payload: usize) -> FrameDecoder {
    decoder(max_payload).with_permessage_deflate(true)
}

#[test]
fn compressed_messages_are_inflated_whole_or_fragmented() {
    let text = "{\"event\":\"tick\",\"data\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";
    let body = deflated(text.as_bytes());
    let mut d = deflating(1024);
    let whole = client_frame(0xC1, &body);
    assert_eq!(decode_all(&mut d, &whole).unwrap(), [text]);
    // Fragmented: RSV1 on the first frame only; a ping in between; any read sizes.
    let (a, b) = body.split_at(body.len() / 2);
    let mut input = client_frame(0x41, a);
    input.extend(client_frame(0x89, b"p"));
    input.extend(client_frame(0x80, b));
    input.extend(client_frame(0x81, b"plain"));
    assert_eq!(
        decode_all(&mut d, &input).unwrap(),
        ["ping:p", text, "plain"]
    );
    let binary = client_frame(0xC2, &body);
    assert_eq!(
        decode_all(&mut d, &binary).unwrap(),
        [format!("bin:{text}")]
    );
}

#[test]
fn rsv1_is_refused_where_permessage_deflate_does_not_allow_it() {
    let body = deflated(&[b'x'; 300]);
    // Not negotiated.
    let mut d = decoder(1024);
    assert!(matches!(
        decode_all(&mut d, &client_frame(0xC1, &body)),
        Err(DecodeError::Protocol(_))
    ));
    // On a continuation, or a control frame.
    let mut input = client_frame(0x41, &body[..4]);
    input.extend(client_frame(0xC0, &body[4..]));
    assert!(matches!(
        decode_all(&mut deflating(1024), &input),
        Err(DecodeError::Protocol(_))
    ));
    assert!(matches!(
        decode_all(&mut deflating(1024), &client_frame(0xC9, b"")),
        Err(DecodeError::Protocol(_))
    ));
}

#[test]
fn a_compressed_message_over_the_limit_or_broken_closes() {
    // 300 bytes inflate past a 100-byte limit: 1009, however small the frame.
    let body = deflated(&[b'x'; 300]);
    assert!(body.len() < 100);
    let mut d = deflating(100);
    assert_eq!(
        decode_all(&mut d, &client_frame(0xC1, &body)),
        Err(DecodeError::TooBig)
    );
    let mut d = deflating(1024);
    assert_eq!(
        decode_all(&mut d, &client_frame(0xC1, &[0xff, 0xff, 0xff])),
        Err(DecodeError::InvalidCompression)
    );
    // Inflated text is checked: bytes that are not UTF-8 give 1007.
    let body = deflated(&[0xff; 200]);
    assert_eq!(
        decode_all(&mut d, &client_frame(0xC1, &body)),
        Err(DecodeError::InvalidUtf8)
    );
}

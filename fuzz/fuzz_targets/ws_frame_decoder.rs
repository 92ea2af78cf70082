//! `FrameDecoder::feed` over an arbitrary client byte stream, cut into arbitrary chunks.
//!
//! Input layout: byte 0 picks the max payload and when the callback says `Stop`; byte 1
//! picks how the rest is cut into reads (low 7 bits) and whether permessage-deflate was
//! negotiated (high bit: RSV1 frames are inflated, bounded by the max payload); the rest
//! is the stream. The stream is decoded
//! twice, in one read and in chunks, and both must give the same events and outcome.
//! Invariants: no panic; what the decoder holds between reads stays within one message
//! plus one frame header and one control frame (twice that in capacity, for `Vec`
//! growth) whatever the reads were; no event after `Close` or `Stop`;
//! messages within max payload, pings within 125 bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardcast::internals::ws::{Data, DecodeError, Flow, FrameDecoder, Inflater, Limits, WsEvent};

/// Max payload settings: none, tiny, around the 7-bit and 16-bit length forms, default.
const MAX_PAYLOADS: [usize; 8] = [0, 1, 16, 125, 126, 1024, 65_536, 131_072];
/// Fragment limits: unfragmented only, two frames, a few, the default.
const MAX_FRAGMENTS: [u32; 4] = [1, 2, 16, 1024];
/// The longest client frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_CLIENT_HEADER: usize = 14;
/// The largest control frame payload.
const MAX_CONTROL: usize = 125;

#[derive(Debug, PartialEq)]
enum Seen {
    /// Text (true) or binary, and the payload.
    Message(bool, Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Seen>,
    end: Result<Flow, DecodeError>,
}

struct Run {
    max_payload: usize,
    /// Frames one message may arrive in.
    max_fragments: u32,
    /// Return `Stop` from the callback at this event (0: never).
    stop_at: usize,
    /// permessage-deflate negotiated.
    deflate: bool,
}

impl Run {
    /// Feeds `stream` cut at the lengths `cuts` yields; stops at the first error or `Stop`.
    fn decode(&self, stream: &[u8], mut cuts: impl FnMut() -> usize) -> Outcome {
        let limits = Limits {
            max_payload: self.max_payload,
            max_fragments: self.max_fragments,
        };
        let mut decoder = FrameDecoder::new(limits).with_permessage_deflate(self.deflate);
        let mut inflater = Inflater::default();
        let mut events = Vec::new();
        let mut rest = stream;
        loop {
            let n = cuts().clamp(1, rest.len().max(1)).min(rest.len());
            let mut chunk = rest[..n].to_vec();
            rest = &rest[n..];
            let end = decoder.feed(&mut chunk, &mut inflater, |ev| {
                self.on_event(&mut events, ev)
            });
            if end == Ok(Flow::Continue) {
                self.check_held(&decoder);
            }
            if end != Ok(Flow::Continue) || rest.is_empty() {
                return Outcome { events, end };
            }
        }
    }

    fn on_event(&self, events: &mut Vec<Seen>, ev: WsEvent<'_>) -> Flow {
        assert!(
            !matches!(events.last(), Some(Seen::Close(_))),
            "event after Close"
        );
        assert!(
            self.stop_at == 0 || events.len() < self.stop_at,
            "event after Stop"
        );
        events.push(match ev {
            WsEvent::Message(data) => {
                let m = data.bytes();
                assert!(m.len() <= self.max_payload, "message over max payload");
                if let Data::Text(text) = data {
                    // The type says UTF-8; check what the decoder let through.
                    assert!(std::str::from_utf8(text.as_bytes()).is_ok());
                }
                Seen::Message(matches!(data, Data::Text(_)), m.to_vec())
            }
            WsEvent::Ping(p) => {
                assert!(p.len() <= MAX_CONTROL, "ping over 125 bytes");
                Seen::Ping(p.to_vec())
            }
            WsEvent::Pong => Seen::Pong,
            WsEvent::Close(code) => Seen::Close(code),
        });
        if events.len() == self.stop_at {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn check_held(&self, decoder: &FrameDecoder) {
        // Bytes held: one message (fragments) plus the frame being read (a continuation
        // or a control frame). `buffered()` counts capacity, which `Vec` growth may
        // double; a tiny buffer is at least 8 bytes.
        let bound = 2 * (self.max_payload + MAX_CLIENT_HEADER + MAX_CONTROL) + 8;
        assert!(
            decoder.buffered() <= bound,
            "decoder holds {} bytes between reads, bound {bound}",
            decoder.buffered()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let [config, cut_seed, stream @ ..] = data else {
        return;
    };
    let run = Run {
        max_payload: MAX_PAYLOADS[usize::from(config & 7)],
        max_fragments: MAX_FRAGMENTS[usize::from(config >> 6)],
        stop_at: usize::from(config >> 3) % 8,
        deflate: cut_seed & 0x80 != 0,
    };
    let whole = run.decode(stream, || usize::MAX);
    // Cut sizes from a small LCG seeded by `cut_seed`: 1..=64 bytes, sometimes a big read.
    let mut state = u32::from(cut_seed & 0x7f) | 1;
    let chunked = run.decode(stream, || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let x = (state >> 16) as usize;
        if x.is_multiple_of(8) {
            4096
        } else {
            1 + x % 64
        }
    });
    let closed = matches!(whole.events.last(), Some(Seen::Close(_)));
    if closed {
        assert_eq!(whole.end, Ok(Flow::Stop), "Close must stop decoding");
    }
    assert_eq!(whole, chunked, "one read and many reads disagree");
});

//! Cost of the encrypted outbound path against the plain one, per message.
//!
//! Both build the complete text of one outbound frame for a 165-byte
//! `{"event":…,"data":…}` message into a reused buffer: `plain` only copies it (what an
//! unencrypted client costs per recipient at most), `seal_event_json` encrypts it under a
//! fresh random IV and wraps it in `{"event":"encrypted","data":{"iv","ct"}}`;
//! `seal_event_json_fixed_iv` is the same without drawing the IV (the cost of randomness).
//! `handshake/accept_client_key` is the server's per-connection key exchange.

use criterion::{Criterion, Throughput, criterion_main};
use shardcast::crypto::{ClientKeyPair, SessionCipher, accept_client_key};
use std::hint::black_box;

/// A realistic 165-byte event frame.
const MESSAGE: &[u8] = br#"{"event":"room:update","data":{"room":"public-lobby","from":"5f0c2a9e-8a4b-4c1e-9d7f-2b6e1a3c4d5e","text":"hello everyone, the build is green","seq":1042,"ok":true}}"#;

fn session() -> SessionCipher {
    let client = ClientKeyPair::generate();
    let (server, _) = accept_client_key(&client.public_key_b64()).expect("handshake");
    server
}

fn outbound_frame(c: &mut Criterion) {
    assert_eq!(MESSAGE.len(), 165);
    let cipher = session();
    let mut group = c.benchmark_group("outbound_frame_165B");
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(1024);
    group.bench_function("plain", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(MESSAGE));
            black_box(&out);
        });
    });
    group.bench_function("seal_event_json", |b| {
        b.iter(|| {
            out.clear();
            cipher.seal_event_json(black_box(MESSAGE), &mut out);
            black_box(&out);
        });
    });
    // Same work minus the per-message `getrandom` call: what the IV source costs.
    group.bench_function("seal_event_json_fixed_iv", |b| {
        b.iter(|| {
            out.clear();
            cipher.seal_event_json_with_iv([7; 12], black_box(MESSAGE), &mut out);
            black_box(&out);
        });
    });
    group.finish();
}

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    let client = ClientKeyPair::generate().public_key_b64();
    group.bench_function("accept_client_key", |b| {
        b.iter(|| accept_client_key(black_box(&client)).expect("handshake"));
    });
    group.finish();
}

/// Private so the `pub fn` that `criterion_group!` generates needs no doc.
mod group {
    criterion::criterion_group!(benches, super::outbound_frame, super::handshake);
}
criterion_main!(group::benches);

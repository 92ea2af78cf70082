//! Micro-benchmarks of each hot path, with throughput and parameter sweeps:
//! encode once, broker routing, fan-out to M members (no sockets), inbound parse
//! (serde_json RawValue vs simd-json), the room index, what the metrics add to the
//! delivery path (the per-delivery stamp compare, the per-write latency sample), and
//! permessage-deflate: one compression of a ~1 KB JSON message at zlib's levels (the
//! chosen one through the shard's `Deflater`), and one inflation.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use serde_json::value::RawValue;
use shardcast::internals::LocalIndex;
use shardcast::internals::Outbox;
use shardcast::internals::inbound;
use shardcast::metrics::{Histogram, micros_between, stamp_now};
use shardcast::protocol::Frame;

const DATA_165: &str = r#"{"seq":123456,"t":1763771234567,"sym":"BTC-USD","px":97123.5,"qty":0.25,"side":"buy","venue":"x","pad":"abcdefghijklmnopqrstuvwxyz0123"}"#;

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_once");
    let data = RawValue::from_string(DATA_165.to_owned()).unwrap();
    let value: serde_json::Value = serde_json::from_str(DATA_165).unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_json", |b| {
        b.iter(|| black_box(Frame::from_raw(black_box("tick"), Some(&data))))
    });
    group.bench_function("serialize_value", |b| {
        b.iter(|| black_box(Frame::from_serialize(black_box("tick"), &value).unwrap()))
    });
    group.finish();
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_walk");
    let data = RawValue::from_string(DATA_165.to_owned()).unwrap();
    let frame = Frame::from_raw("tick", Some(&data));
    for members in [10usize, 100, 1000, 10_000] {
        let mut index = LocalIndex::default();
        for slot in 0..members {
            index.join("room", slot);
        }
        let mut outboxes: Vec<Outbox> = (0..members).map(|_| Outbox::default()).collect();
        let mut dirty = Vec::with_capacity(members);
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            b.iter(|| {
                for slot in index.room_members("room") {
                    outboxes[slot].push(frame.bytes().clone(), 1 << 20);
                    dirty.push(slot);
                }
                // What the flush does after a write: release the frames.
                for slot in dirty.drain(..) {
                    outboxes[slot].clear();
                }
            })
        });
    }
    group.finish();
}

/// The fan-out walk as the shard now does it: the same walk, plus what the metrics add
/// per message (the broker's stamp: one clock read), per delivery (`Entry::delivered`:
/// keep the stamp of the oldest queued frame) and per write (`Entry::record_latency`:
/// one histogram sample against the flush pass' clock, which it reads every 16 writes).
fn fanout_metrics(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_walk_metered");
    let data = RawValue::from_string(DATA_165.to_owned()).unwrap();
    let frame = Frame::from_raw("tick", Some(&data));
    let histogram = Histogram::default();
    for members in [10usize, 100, 1000, 10_000] {
        let mut index = LocalIndex::default();
        for slot in 0..members {
            index.join("room", slot);
        }
        let mut outboxes: Vec<(Outbox, u64)> =
            (0..members).map(|_| (Outbox::default(), 0)).collect();
        let mut dirty = Vec::with_capacity(members);
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            b.iter(|| {
                let stamp = stamp_now();
                for slot in index.room_members("room") {
                    let (outbox, oldest) = &mut outboxes[slot];
                    outbox.push(frame.bytes().clone(), 1 << 20);
                    if *oldest == 0 {
                        *oldest = stamp;
                    }
                    dirty.push(slot);
                }
                let mut clock = stamp_now();
                for (writes, slot) in dirty.drain(..).enumerate() {
                    let (outbox, oldest) = &mut outboxes[slot];
                    histogram.record(micros_between(*oldest, clock));
                    *oldest = 0;
                    outbox.clear();
                    if writes % 16 == 15 {
                        clock = stamp_now();
                    }
                }
            })
        });
    }
    group.finish();
}

/// The pieces alone: a histogram sample, and a clock read (what the broker pays once
/// per message, and a flush once per 16 writes).
fn metrics_record(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_record");
    let histogram = Histogram::default();
    group.throughput(Throughput::Elements(1));
    group.bench_function("histogram_sample", |b| {
        let stamp = stamp_now();
        b.iter(|| histogram.record(micros_between(black_box(stamp), black_box(stamp + 70))))
    });
    group.bench_function("clock_read", |b| b.iter(stamp_now));
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("inbound_parse");
    let message = format!(r#"{{"event":"chat","data":{DATA_165},"id":"m-42"}}"#);
    group.throughput(Throughput::Bytes(message.len() as u64));
    group.bench_function("serde_json_raw", |b| {
        b.iter(|| match inbound::parse(black_box(message.as_bytes())) {
            inbound::Inbound::Message(m) => {
                black_box(m.data);
            }
            _ => unreachable!(),
        })
    });
    let mut buffers = simd_json::Buffers::default();
    group.bench_function("simd_json_borrowed", |b| {
        let mut scratch = message.clone().into_bytes();
        b.iter(|| {
            scratch.copy_from_slice(message.as_bytes());
            let value =
                simd_json::to_borrowed_value_with_buffers(&mut scratch, &mut buffers).unwrap();
            black_box(value);
        })
    });
    group.finish();
}

fn index(c: &mut Criterion) {
    let mut group = c.benchmark_group("room_index");
    let rooms: Vec<String> = (0..1000).map(|i| format!("public-{i}")).collect();
    group.throughput(Throughput::Elements(1000));
    group.bench_function("join_leave_1000", |b| {
        let mut index = LocalIndex::default();
        b.iter(|| {
            for (slot, room) in rooms.iter().enumerate() {
                index.join(room, slot);
            }
            for (slot, room) in rooms.iter().enumerate() {
                index.leave(room, slot);
            }
        })
    });
    let mut index = LocalIndex::default();
    for (slot, room) in rooms.iter().enumerate() {
        index.join(room, slot);
    }
    group.bench_function("lookup_1000", |b| {
        b.iter(|| {
            for room in &rooms {
                black_box(index.room_members(room).next());
            }
        })
    });
    group.finish();
}

fn broker_clone(c: &mut Criterion) {
    // The broker's per-shard cost: one Arc'd frame clone and one queue send per shard.
    let mut group = c.benchmark_group("broker_route");
    let data = RawValue::from_string(DATA_165.to_owned()).unwrap();
    let frame = Frame::from_raw("tick", Some(&data));
    for shards in [1usize, 2, 8] {
        let queues: Vec<_> = (0..shards)
            .map(|_| crossbeam_channel::bounded::<Frame>(1 << 16))
            .collect();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(shards), &shards, |b, _| {
            b.iter(|| {
                for (tx, rx) in &queues {
                    tx.try_send(frame.clone()).unwrap();
                    black_box(rx.try_recv().unwrap());
                }
            })
        });
    }
    group.finish();
}

/// A market-data update of about 1 KB: the shape the compression figures use.
fn json_1k() -> Vec<u8> {
    let levels: Vec<String> = (0..12)
        .map(|i| {
            format!(
                r#"{{"price":{:.1},"size":{},"orders":{},"venue":"{}"}}"#,
                43_250.5 + f64::from(i) * 0.5,
                0.125 * f64::from(i + 1),
                i * 3 + 1,
                ["XNAS", "XNYS", "BATS", "EDGX"][i as usize % 4]
            )
        })
        .collect();
    format!(
        r#"{{"event":"book","data":{{"symbol":"BTC-USD","seq":81723,"bids":[{}],"status":"open"}}}}"#,
        levels.join(",")
    )
    .into_bytes()
}

fn deflate(c: &mut Criterion) {
    use flate2::{Compress, Compression, FlushCompress};
    use shardcast::internals::ws::{Deflater, Inflater, OpCode};

    let payload = json_1k();
    let mut group = c.benchmark_group("deflate_1k_json");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    for level in [1, 3, 6, 9] {
        let mut state = Compress::new(Compression::new(level), false);
        let mut out = Vec::with_capacity(2 * payload.len());
        state
            .compress_vec(&payload, &mut out, FlushCompress::Sync)
            .unwrap();
        eprintln!(
            "deflate level {level}: {} -> {} bytes",
            payload.len(),
            out.len() - 4
        );
        group.bench_with_input(BenchmarkId::new("level", level), &level, |b, _| {
            b.iter(|| {
                state.reset();
                out.clear();
                state
                    .compress_vec(black_box(&payload), &mut out, FlushCompress::Sync)
                    .unwrap();
                black_box(out.len())
            })
        });
    }
    let mut deflater = Deflater::default();
    group.bench_function("shard_deflater_frame", |b| {
        b.iter(|| black_box(deflater.frame(OpCode::Text, black_box(&payload))))
    });
    let frame = deflater.frame(OpCode::Text, &payload).unwrap();
    let skip = match frame[1] {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let body = frame.slice(skip..);
    let mut inflater = Inflater::default();
    group.bench_function("inflate", |b| {
        b.iter(|| black_box(inflater.inflate(black_box(&body), 1 << 20).unwrap().len()))
    });
    group.finish();
}

/// Private so the `pub fn` that `criterion_group!` generates needs no doc.
mod group {
    criterion::criterion_group!(
        benches,
        super::encode,
        super::fanout,
        super::fanout_metrics,
        super::metrics_record,
        super::parse,
        super::index,
        super::broker_clone,
        super::deflate
    );
}
criterion_main!(group::benches);

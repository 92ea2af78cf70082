//! `client-bench` (hidden): measures the reader alone, to show the load generator is not
//! the bottleneck of what it measures.
//!
//! - `--source memory`: decode + stamp scan + histogram + sequence tracking over a
//!   prepared buffer of server frames (no I/O): the per-frame CPU cost.
//! - `--source loopback`: an in-process "blaster" thread accepts N connections, answers
//!   the upgrade and `authenticate`, then writes bench frames as fast as the sockets take
//!   them; one worker reads them through the real fan-out reader. Reports frames/s and
//!   the worker's CPU use, hence the projected frames/s of one full core.

use crate::cli::{BenchSource, ClientBenchArgs};
use crate::error::{Error, Result};
use crate::nodes::Nodes;
use crate::payload::{BENCH_EVENT, PayloadShape};
use crate::progress::Progress;
use crate::runtime::ThreadRegistry;
use crate::scenario::fanout::{Fanout, Reader};
use crate::scenario::fleet::{self, FleetPlan};
use crate::scenario::{Ctx, Phase};
use crate::session::SessionConfig;
use crate::stats::Live;
use crate::target::{SourceAddrs, Target};
use crate::timeline::Recorder;
use crate::token::TokenSource;
use crate::ws::conn::now_us;
use crate::ws::frame::{self, OP_TEXT};
use crate::ws::handshake::accept_for;
use serde::Serialize;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Result of a client benchmark.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    /// `memory` or `loopback`.
    pub source: BenchSource,
    /// Frame size, bytes.
    pub frame_bytes: usize,
    /// Connections (loopback).
    pub connections: u64,
    /// Frames processed in the window.
    pub frames: u64,
    /// Window length.
    pub seconds: f64,
    /// frames / seconds.
    pub frames_per_s: f64,
    /// Reader CPU / window.
    pub reader_util: f64,
    /// frames_per_s / reader_util: what one busy core would read.
    pub projected_frames_per_core_s: f64,
    /// Bytes read per measured frame (loopback; the frame size in memory mode).
    pub bytes_per_frame: f64,
}

/// Runs the benchmark and returns the text to print.
pub fn run(a: &ClientBenchArgs) -> Result<String> {
    let r = match a.source {
        BenchSource::Memory => memory(a),
        BenchSource::Loopback => loopback(a)?,
    };
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&r).unwrap_or_default();
        std::fs::write(path, text + "\n")
            .map_err(Error::io(format!("writing {}", path.display())))?;
    }
    Ok(format!(
        "client-bench {:?}: {} frames of {} B in {:.2} s = {:.0} frames/s at {:.0}% of a core\n  projected: {:.2} M frames/s per core\n",
        r.source,
        r.frames,
        r.frame_bytes,
        r.seconds,
        r.frames_per_s,
        r.reader_util * 100.0,
        r.projected_frames_per_core_s / 1e6
    ))
}

/// A bench frame with fixed-width digit fields, refilled in place per frame.
struct Template {
    bytes: Vec<u8>,
    t_at: usize,
    s_at: usize,
}

const T_WIDTH: usize = 16;
const S_WIDTH: usize = 10;

impl Template {
    fn new(frame_bytes: usize) -> Self {
        let data = PayloadShape::for_frame(BENCH_EVENT, frame_bytes.saturating_sub(S_WIDTH - 5))
            .data(1_000_000_000_000_000, 1_000_000_000);
        let json = format!(r#"{{"event":"{BENCH_EVENT}","data":{data}}}"#);
        let mut bytes = Vec::new();
        frame::encode_unmasked(OP_TEXT, json.as_bytes(), &mut bytes);
        let find = |key: &[u8]| {
            memchr::memmem::find(&bytes, key)
                .map(|i| i + key.len())
                .unwrap_or(0)
        };
        let (t_at, s_at) = (find(b"\"t\":"), find(b"\"s\":"));
        Template { bytes, t_at, s_at }
    }

    fn append(&mut self, t: u64, s: u64, out: &mut Vec<u8>) {
        put_digits(&mut self.bytes[self.t_at..self.t_at + T_WIDTH], t);
        put_digits(&mut self.bytes[self.s_at..self.s_at + S_WIDTH], s);
        out.extend_from_slice(&self.bytes);
    }
}

fn put_digits(field: &mut [u8], mut v: u64) {
    for b in field.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn memory(a: &ClientBenchArgs) -> BenchResult {
    pin(a.reader_cpu);
    let mut tpl = Template::new(a.frame_bytes);
    let mut buf = Vec::new();
    let count = (16 << 20) / tpl.bytes.len();
    for s in 0..count as u64 {
        tpl.append(now_us(), s, &mut buf);
    }
    let live = Live::default();
    let mut rec = Recorder::default();
    let (t0, cpu0) = (Instant::now(), thread_cpu());
    let mut frames = 0;
    while t0.elapsed().as_secs_f64() < a.duration_s {
        let mut r = Reader::default();
        let now = now_us();
        let mut pos = 0;
        while let Ok(Some((f, used))) = frame::decode(&buf[pos..], frame::Rules::plain(u64::MAX)) {
            r.on_message(f.payload, now, &mut rec, &live);
            pos += used;
        }
        frames += r.frames();
    }
    result(
        a,
        frames,
        t0.elapsed().as_secs_f64(),
        thread_cpu() - cpu0,
        tpl.bytes.len(),
    )
}

fn result(
    a: &ClientBenchArgs,
    frames: u64,
    seconds: f64,
    cpu: f64,
    frame_len: usize,
) -> BenchResult {
    let fps = frames as f64 / seconds.max(1e-9);
    let util = (cpu / seconds.max(1e-9)).max(1e-9);
    BenchResult {
        source: a.source,
        frame_bytes: frame_len,
        connections: if a.source == BenchSource::Loopback {
            a.connections
        } else {
            0
        },
        frames,
        seconds,
        frames_per_s: fps,
        reader_util: util,
        projected_frames_per_core_s: fps / util.min(1.0),
        bytes_per_frame: frame_len as f64,
    }
}

fn thread_cpu() -> f64 {
    crate::proc::thread_cpu_s(crate::proc::current_tid()).unwrap_or(0.0)
}

fn pin(cpu: Option<usize>) {
    if let Some(c) = cpu {
        let mut set = nix::sched::CpuSet::new();
        if set.set(c).is_ok()
            && nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).is_err()
        {
            eprintln!("warning: could not pin to CPU {c}");
        }
    }
}

fn loopback(a: &ClientBenchArgs) -> Result<BenchResult> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("binding the blaster"))?;
    let addr = listener
        .local_addr()
        .map_err(Error::io("blaster address"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (conns, frame_bytes, cpu, stop2) = (
        a.connections as usize,
        a.frame_bytes,
        a.blaster_cpu,
        stop.clone(),
    );
    let blaster = std::thread::Builder::new()
        .name("blaster".into())
        .spawn(move || blast(listener, conns, frame_bytes, cpu, &stop2))
        .map_err(Error::io("spawning the blaster"))?;
    pin(a.reader_cpu);
    crate::proc::raise_nofile().map_err(Error::io("raising RLIMIT_NOFILE"))?;
    let ctx = bench_ctx(&format!("ws://{addr}/ws"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("runtime"))?;
    let r = rt.block_on(read_side(&ctx, a));
    stop.store(true, Ordering::Relaxed);
    let _ = blaster.join();
    r
}

fn bench_ctx(url: &str) -> Result<Ctx> {
    let target = Target::from_url(url, false)?;
    let session = SessionConfig {
        nodes: Nodes::single(target),
        sources: SourceAddrs::default(),
        token: TokenSource::Raw("bench".into()),
        connect_timeout: Duration::from_secs(10),
        auth_timeout: Duration::from_secs(10),
        tls: None,
        conn: crate::ws::ConnOptions::default(),
    };
    let common = crate::cli::CommonArgs {
        url: url.into(),
        jwt_secret: None,
        token: Some("bench".into()),
        jwt_ttl_s: 0,
        source_ips: 1,
        threads: 1,
        server_pid: None,
        json: None,
        allow_non_loopback: false,
        tls_ca: None,
        tls_insecure: false,
        connect_rate: 10_000.0,
        max_inflight: 64,
        connect_timeout_ms: 10_000,
        auth_timeout_ms: 10_000,
        no_progress: true,
        compression: false,
        require_compression: false,
    };
    Ok(Ctx {
        common,
        session: Arc::new(session),
        server: None,
        progress: Progress::new(false),
        live: Arc::new(Live::default()),
        registry: ThreadRegistry::default(),
    })
}

async fn read_side(ctx: &Ctx, a: &ClientBenchArgs) -> Result<BenchResult> {
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(Phase::Setup);
    let behavior = Arc::new(Fanout::readers_only(
        phase_rx,
        a.connections,
        ctx.live.clone(),
    ));
    let plan = FleetPlan::new(a.connections, &ctx.common);
    let workers = fleet::spawn(ctx, plan, behavior)?;
    let live = &ctx.live;
    let ok = crate::scenario::wait_until(
        ctx,
        Duration::from_secs(30),
        || Live::get(&live.established) + Live::get(&live.failed) >= a.connections,
        || (0, String::new()),
    )
    .await;
    if !ok || Live::get(&live.failed) > 0 {
        return Err(Error::NothingConnected("blaster connections failed".into()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let meter = crate::meter::Meter::start(&ctx.registry, None);
    let (f0, b0, t0) = (
        Live::get(&live.frames),
        Live::get(&live.bytes),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs_f64(a.duration_s)).await;
    let (frames, bytes, secs) = (
        Live::get(&live.frames) - f0,
        Live::get(&live.bytes) - b0,
        t0.elapsed().as_secs_f64(),
    );
    let usage = meter.finish(&ctx.registry);
    let _ = phase_tx.send(Phase::Stop);
    drop(workers);
    let cpu = usage
        .threads
        .iter()
        .filter(|t| t.name.starts_with("load-worker"))
        .map(|t| t.cpu_s)
        .sum();
    let mut r = result(
        a,
        frames,
        secs,
        cpu,
        Template::new(a.frame_bytes).bytes.len(),
    );
    r.bytes_per_frame = bytes as f64 / frames.max(1) as f64;
    Ok(r)
}

/// Accepts `conns` connections, answers upgrade and auth, then writes frames until `stop`.
fn blast(
    listener: TcpListener,
    conns: usize,
    frame_bytes: usize,
    cpu: Option<usize>,
    stop: &AtomicBool,
) {
    pin(cpu);
    let mut socks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        if accept_client(&mut s).is_err() || s.set_nonblocking(true).is_err() {
            return;
        }
        socks.push((s, 0u64, Vec::<u8>::new(), 0usize));
    }
    let mut tpl = Template::new(frame_bytes);
    while !stop.load(Ordering::Relaxed) {
        let mut progressed = false;
        for (s, seq, pending, pos) in socks.iter_mut() {
            if *pos == pending.len() {
                pending.clear();
                *pos = 0;
                let t = now_us();
                for _ in 0..64 {
                    tpl.append(t, *seq, pending);
                    *seq += 1;
                }
            }
            match s.write(&pending[*pos..]) {
                Ok(n) => {
                    *pos += n;
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Server side of the upgrade + `authenticate` → `connected`, blocking.
fn accept_client(s: &mut TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while memchr::memmem::find(&buf, b"\r\n\r\n").is_none() {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let key = text
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_for(&key)
    );
    s.write_all(resp.as_bytes())?;
    let _ = s.read(&mut chunk)?; // the authenticate frame
    let mut connected = Vec::new();
    frame::encode_unmasked(
        OP_TEXT,
        br#"{"event":"connected","data":{"id":"bench"}}"#,
        &mut connected,
    );
    s.write_all(&connected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_frames_scan_back() {
        let mut tpl = Template::new(165);
        let mut out = Vec::new();
        tpl.append(1_732_236_060_123_456, 42, &mut out);
        let (f, used) = frame::decode(&out, frame::Rules::plain(u64::MAX))
            .unwrap()
            .unwrap();
        assert_eq!(used, out.len());
        assert_eq!(
            crate::payload::scan(f.payload),
            Some(crate::payload::Stamp {
                t: 1_732_236_060_123_456,
                s: 42
            })
        );
        assert!((160..=170).contains(&out.len()), "{}", out.len());
    }
}

#!/usr/bin/env bash
# TLS vs plain, side by side: connect + hold with JWT auth against shardcast --shards 1,
# once over ws:// and once over wss:// (same binary, same flags plus --tls-cert/--tls-key),
# interleaved run by run. Records RSS per idle authenticated connection and server CPU
# per connect (the connect scenario's `server` figures) in a dated run folder with the
# exact commands, machine facts and raw JSON.
#
#   loadtest/tls.sh                       # 5,000 and 10,000 clients, 3 runs each (~6 min)
#   COUNTS=2000 RUNS=1 loadtest/tls.sh    # quick look
#
# Pinning: the server on core 0 (SERVER_CPU), the load generator on core 1 (LOAD_CPU).
# Traffic stays on 127.0.0.1; every run is bounded in time. The certificate is a
# throwaway P-256 one signed by a throwaway CA, both made with the openssl command-line
# tool (the server itself uses rustls only); the load generator trusts the CA (--tls-ca).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-3}"
COUNTS="${COUNTS:-5000 10000}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
STAMP="$(date -u +%Y-%m-%dT%H%M%SZ)"
OUT="$HERE/runs/$STAMP-$(hostname)-tls"
mkdir -p "$OUT/raw" "$OUT/logs"
SECRET=tls-secret
log() { echo "[tls] $*" >&2; }

log "building release binaries"
(cd "$ROOT" && cargo build --release -p shardcast -p shardcast-load >/dev/null 2>&1)
SC="$TARGET_DIR/release/shardcast"
LOAD="$TARGET_DIR/release/shardcast-load"

CERTS="$(mktemp -d)"
EC=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${EC[@]}" -days 2 -subj "/CN=shardcast load CA" \
  -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" 2>/dev/null
openssl req "${EC[@]}" -subj /CN=localhost -keyout "$CERTS/key.pem" -out "$CERTS/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n' >"$CERTS/leaf.ext"
openssl x509 -req -in "$CERTS/leaf.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -CAcreateserial \
  -days 2 -extfile "$CERTS/leaf.ext" -out "$CERTS/cert.pem" 2>/dev/null

SPID=""
cleanup() { [[ -n $SPID ]] && kill "$SPID" 2>/dev/null || true; rm -rf "$CERTS"; }
trap cleanup EXIT

# start_server LOG [flags...] → sets SPID and ADDR
start_server() {
  local log=$1; shift
  taskset -c "$SERVER_CPU" "$SC" serve --jwt-secret "$SECRET" --listen 127.0.0.1:0 --shards 1 \
    "$@" >"$log.out" 2>"$log.err" &
  SPID=$!
  for _ in $(seq 100); do grep -q listening "$log.out" 2>/dev/null && break; sleep 0.1; done
  ADDR="$(sed -n 's/listening on //p' "$log.out")"
  sleep 0.5
}
stop_server() { kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=""; sleep 0.5; }

# measure_one MODE CLIENTS RUN
measure_one() {
  local mode=$1 clients=$2 run=$3 name="connect$2-$1-$3"
  local scheme=ws tls=()
  if [[ $mode == tls ]]; then
    scheme=wss
    start_server "$OUT/logs/$name" --tls-cert "$CERTS/cert.pem" --tls-key "$CERTS/key.pem"
    tls=(--tls-ca "$CERTS/ca.pem")
  else
    start_server "$OUT/logs/$name"
  fi
  local url="$scheme://$ADDR/ws"
  local cmd=(taskset -c "$LOAD_CPU" "$LOAD" connect --clients "$clients" --connect-rate 1000
    --hold-s 5 --heartbeat-s 2 --url "$url" "${tls[@]}" --jwt-secret "$SECRET"
    --server-pid "$SPID" --no-progress --json "$OUT/raw/$name.json")
  echo "${cmd[*]}" >>"$OUT/commands.txt"
  log "$name"
  "${cmd[@]}" >"$OUT/raw/$name.txt" 2>&1 || log "  run failed (see raw/$name.txt)"
  stop_server
}

for clients in $COUNTS; do
  for run in $(seq "$RUNS"); do
    for mode in plain tls; do
      measure_one "$mode" "$clients" "$run"
    done
  done
done

{
  echo "date: $STAMP"
  echo "host: $(hostname)  kernel: $(uname -r)  cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "shardcast: $("$SC" --version) ($(git -C "$ROOT" rev-parse --short HEAD))  rustc: $(rustc --version)"
  echo "tls: rustls (ring provider) both sides, P-256 leaf signed by a test CA, TLS 1.3 (default), X25519"
  echo "load average at the end (the machine is shared): $(cut -d" " -f1-3 /proc/loadavg)"
  echo "pinning: server on CPU $SERVER_CPU (--shards 1), load generator on CPU $LOAD_CPU; runs: $RUNS per figure, plain and tls interleaved; clients: $COUNTS"
} >"$OUT/machine.txt"

python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
rows = {}
for f in sorted((out / "raw").glob("*.json")):
    clients, mode, _run = f.stem.removeprefix("connect").split("-")
    r = json.loads(f.read_text())["results"]
    s = r["server"]
    rows.setdefault((int(clients), mode), []).append(
        (s["rss_per_conn_bytes"], s["cpu_per_conn_ms"] * 1000, r["connect_latency"]["p50_us"],
         r["connect_latency"]["p99_us"], r["established"]))
print("| clients | mode | runs | RSS per idle conn (B) | server CPU per connect (µs) | connect p50 / p99 (µs) | established |")
print("|---|---|---|---|---|---|---|")
for (clients, mode), v in sorted(rows.items()):
    med = lambda i: statistics.median(x[i] for x in v)
    spread = lambda i: f"{min(x[i] for x in v):.0f}–{max(x[i] for x in v):.0f}"
    print(f"| {clients} | {mode} | {len(v)} | {med(0):.0f} ({spread(0)}) | {med(1):.0f} ({spread(1)}) "
          f"| {med(2):.0f} / {med(3):.0f} | {min(x[4] for x in v)} |")
PY
log "done: $OUT"

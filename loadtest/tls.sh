#!/usr/bin/env bash
# TLS vs plain, side by side: connect + hold with JWT auth against shardcast --shards 1,
# once over ws:// and once over wss:// (same binary, same flags plus --tls-cert/--tls-key),
# interleaved run by run. Records RSS per idle authenticated connection and server CPU
# per connect (the connect scenario's `server` figures) in a dated run folder with the
# exact commands, machine facts and raw JSON.
#
#   loadtest/tls.sh                       # 5,000 and 10,000 clients, 3 runs each (~6 min)
#   COUNTS=2000 RUNS=1 loadtest/tls.sh    # quick look
#   SCENARIOS="connect fanout" loadtest/tls.sh   # + server CPU per delivery: 1 room x
#                                         # 1,000 clients, 1,000 Redis publishes/s, 10 s
#   BASELINE_SC=/path/to/older/shardcast MODES="base plain" loadtest/tls.sh
#                                         # the plain path before/after a change
#   SHARDCAST_BIN=… LOAD_BIN=… SHARDCAST_REV=…   # use these binaries instead of building
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
BASE="${BASELINE_SC:-}"
SCENARIOS="${SCENARIOS:-connect}"
MODES="${MODES:-plain tls${BASE:+ base}}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# shellcheck source=scripts/common.sh
source "$HERE/scripts/common.sh"
run_folder tls
SECRET=tls-secret
log() { echo "[tls] $*" >&2; }

SC="${SHARDCAST_BIN:-$TARGET_DIR/release/shardcast}"
LOAD="${LOAD_BIN:-$TARGET_DIR/release/shardcast-load}"
if [[ -z ${SHARDCAST_BIN:-} || -z ${LOAD_BIN:-} ]]; then
  log "building release binaries"
  (cd "$ROOT" && cargo build --release -p shardcast -p shardcast-load >/dev/null 2>&1)
fi

CERTS="$(mktemp -d)"
EC=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${EC[@]}" -days 2 -subj "/CN=shardcast load CA" \
  -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" 2>/dev/null
openssl req "${EC[@]}" -subj /CN=localhost -keyout "$CERTS/key.pem" -out "$CERTS/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n' >"$CERTS/leaf.ext"
openssl x509 -req -in "$CERTS/leaf.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -CAcreateserial \
  -days 2 -extfile "$CERTS/leaf.ext" -out "$CERTS/cert.pem" 2>/dev/null

SPID=""
RPID=""
cleanup() {
  for p in $SPID $RPID; do kill "$p" 2>/dev/null || true; done
  rm -rf "$CERTS"
}
trap cleanup EXIT

# Redis for the fan-out publisher (on the load generator's core, as in compare.sh).
REDIS=""
if [[ " $SCENARIOS " == *" fanout "* ]]; then
  start_redis
fi

# start_server BINARY LOG [flags...] → sets SPID and ADDR
start_server() {
  local bin=$1 log=$2; shift 2
  taskset -c "$SERVER_CPU" "$bin" serve --jwt-secret "$SECRET" --listen 127.0.0.1:0 --shards 1 \
    "$@" >"$log.out" 2>"$log.err" &
  SPID=$!
  for _ in $(seq 100); do grep -q listening "$log.out" 2>/dev/null && break; sleep 0.1; done
  ADDR="$(sed -n 's/listening on //p' "$log.out")"
  sleep 0.5
}
stop_server() { kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=""; sleep 0.5; }

# start_mode MODE LOG [flags...] → starts the server of MODE; sets URL_SCHEME and TLS_ARGS
start_mode() {
  local mode=$1 log=$2; shift 2
  URL_SCHEME=ws TLS_ARGS=()
  case $mode in
    tls)
      URL_SCHEME=wss TLS_ARGS=(--tls-ca "$CERTS/ca.pem")
      start_server "$SC" "$log" --tls-cert "$CERTS/cert.pem" --tls-key "$CERTS/key.pem" "$@" ;;
    base) start_server "$BASE" "$log" "$@" ;;
    *) start_server "$SC" "$log" "$@" ;;
  esac
}

# run_load NAME load-args... (the URL and TLS flags of the running server are added)
run_load() {
  local name=$1; shift
  local cmd=(taskset -c "$LOAD_CPU" "$LOAD" "$@" --url "$URL_SCHEME://$ADDR/ws" "${TLS_ARGS[@]}"
    --jwt-secret "$SECRET" --server-pid "$SPID" --no-progress --json "$OUT/raw/$name.json")
  echo "${cmd[*]}" >>"$OUT/commands.txt"
  log "$name"
  "${cmd[@]}" >"$OUT/raw/$name.txt" 2>&1 || log "  run failed (see raw/$name.txt)"
  stop_server
}

# connect_one MODE CLIENTS RUN
connect_one() {
  local name="connect$2-$1-$3"
  start_mode "$1" "$OUT/logs/$name"
  run_load "$name" connect --clients "$2" --connect-rate 1000 --hold-s 5 --heartbeat-s 2
}

# fanout_one MODE RUN
fanout_one() {
  local name="fanout1k-$1-$2"
  start_mode "$1" "$OUT/logs/$name" --allow-rooms 'public-*' --redis "$REDIS"
  run_load "$name" fanout --redis "$REDIS" --clients 1000 --rooms 1 --rate 1000 --duration-s 10
}

for scenario in $SCENARIOS; do
  for run in $(seq "$RUNS"); do
    for mode in $MODES; do
      case $scenario in
        connect) for clients in $COUNTS; do connect_one "$mode" "$clients" "$run"; done ;;
        fanout) fanout_one "$mode" "$run" ;;
      esac
    done
  done
done

{
  echo "date: $STAMP"
  echo "host: $(hostname)  kernel: $(uname -r)  cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  if [[ -n ${SHARDCAST_BIN:-} ]]; then
    echo "shardcast: $("$SC" --version), binary $SC${SHARDCAST_REV:+ built from $SHARDCAST_REV}  rustc: $(rustc --version)"
  else
    echo "shardcast: $("$SC" --version) ($(git -C "$ROOT" rev-parse --short HEAD))  rustc: $(rustc --version)"
  fi
  [[ -n $BASE ]] && echo "baseline (base, plain): $BASE${BASELINE_REV:+ at $BASELINE_REV}"
  echo "tls: rustls (ring provider) both sides, P-256 leaf signed by a test CA, TLS 1.3 (default), X25519"
  echo "load average at the end (the machine is shared): $(cut -d" " -f1-3 /proc/loadavg)"
  echo "pinning: server on CPU $SERVER_CPU (--shards 1), load generator on CPU $LOAD_CPU; runs: $RUNS per figure, modes ($MODES) interleaved run by run; clients: $COUNTS"
} >"$OUT/machine.txt"

python3 - "$OUT" "$HERE/scripts" <<'PY' | tee "$OUT/summary.md"
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
fan = {}
for f in sorted((out / "raw").glob("fanout1k-*.json")):
    _, mode, _run = f.stem.split("-")
    r = json.loads(f.read_text())["results"]
    fan.setdefault(mode, []).append((r["server"]["cpu_s_per_million_deliveries"],
        r["server"]["measured"]["cores"], r["latency"]["p50_us"], r["latency"]["p99_us"], r["lost"]))
sys.path.insert(0, str(pathlib.Path(sys.argv[2])))
from connect_summary import print_table, rows_of
print_table(rows_of(out))
if fan:
    print()
    print("fan-out: 1 room x 1,000 clients, 1,000 publishes/s (10 s; 1 M deliveries/s)")
    print()
    print("| mode | runs | server CPU-s per million deliveries | server cores | latency p50 / p99 (µs) | lost |")
    print("|---|---|---|---|---|---|")
    for mode, v in sorted(fan.items()):
        med = lambda i: statistics.median(x[i] for x in v)
        spread = lambda i: f"{min(x[i] for x in v):.3f}–{max(x[i] for x in v):.3f}"
        print(f"| {mode} | {len(v)} | {med(0):.3f} ({spread(0)}) | {med(1):.2f} | {med(2):.0f} / {med(3):.0f} | {max(x[4] for x in v)} |")
PY
log "done: $OUT"

#!/usr/bin/env bash
# What permessage-deflate costs an idle connection: connect + hold COUNT authenticated
# clients that all offer compression (`shardcast-load connect --compression`) and record
# the server's RSS per connection and CPU per connect, for
#   base  an older shardcast binary without compression (BASELINE_SC, required: "today"),
#   plain this build, compression off (the clients' offers are declined),
#   deflate this build with --compression (every connection negotiates it),
# interleaved run by run, in a dated run folder with the exact commands, machine facts
# and raw JSON.
#
#   BASELINE_SC=/path/to/old/shardcast loadtest/deflate_memory.sh   # 15,000 clients, 3 runs
#   COUNTS="5000 15000" RUNS=1 BASELINE_SC=… loadtest/deflate_memory.sh
#
# Pinning: the server on core 0 (SERVER_CPU), the load generator on core 1 (LOAD_CPU).
# Traffic stays on 127.0.0.1; every run is bounded in time.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-3}"
COUNTS="${COUNTS:-15000}"
CONNECT_RATE="${CONNECT_RATE:-1000}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
BASE="${BASELINE_SC:?set BASELINE_SC to the shardcast binary to compare with}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# shellcheck source=scripts/common.sh
source "$HERE/scripts/common.sh"
run_folder deflate-memory
SECRET=deflate-secret
log() { echo "[deflate-memory] $*" >&2; }

log "building release binaries"
(cd "$ROOT" && cargo build --release -p shardcast --bin shardcast >/dev/null 2>&1 &&
  cargo build --release -p shardcast-load >/dev/null 2>&1)
SC="$TARGET_DIR/release/shardcast"
LOAD="$TARGET_DIR/release/shardcast-load"

SPID=""
cleanup() { [[ -n $SPID ]] && kill "$SPID" 2>/dev/null || true; }
trap cleanup EXIT

# start_server VARIANT LOG → sets SPID and PORT
start_server() {
  local bin="$SC" extra=()
  case "$1" in
    base) bin="$BASE" ;;
    deflate) extra=(--compression) ;;
  esac
  PORT=$(free_port)
  local cmd=(taskset -c "$SERVER_CPU" "$bin" serve --listen "127.0.0.1:$PORT" --shards 1
    --jwt-secret "$SECRET" "${extra[@]}")
  echo "${cmd[*]}" >>"$OUT/commands.txt"
  "${cmd[@]}" >"$2.out" 2>"$2.err" &
  SPID=$!
  for _ in $(seq 100); do grep -q "listening" "$2.out" 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
}
stop_server() { kill -INT "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=""; sleep 0.5; }

# connect_one VARIANT CLIENTS RUN
connect_one() {
  local name="connect$2-$1-$3"
  start_server "$1" "$OUT/logs/$name"
  local cmd=(taskset -c "$LOAD_CPU" "$LOAD" connect --clients "$2" --connect-rate "$CONNECT_RATE" --hold-s 5
    --heartbeat-s 2 --source-ips 4 --compression --url "ws://127.0.0.1:$PORT/ws" --jwt-secret "$SECRET"
    --server-pid "$SPID" --no-progress --json "$OUT/raw/$name.json")
  echo "${cmd[*]}" >>"$OUT/commands.txt"
  log "$name"
  "${cmd[@]}" >"$OUT/raw/$name.txt" 2>&1 || log "  run failed (see raw/$name.txt)"
  stop_server
}

for run in $(seq "$RUNS"); do
  for variant in base plain deflate; do
    for clients in $COUNTS; do connect_one "$variant" "$clients" "$run"; done
  done
done

{
  echo "date: $STAMP"
  echo "host: $(hostname)  kernel: $(uname -r)  cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "shardcast: $(git -C "$ROOT" rev-parse --short HEAD)  base: $("$BASE" --version 2>&1 | head -1)  rustc: $(rustc --version)"
  echo "load average at the end (the machine may be shared): $(cut -d" " -f1-3 /proc/loadavg)"
  echo "pinning: server (1 shard) on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU; runs: $RUNS per figure, variants (base plain deflate) interleaved run by run; clients: $COUNTS at $CONNECT_RATE connects/s, all offering permessage-deflate"
} >"$OUT/machine.txt"

python3 "$HERE/scripts/connect_summary.py" "$OUT" | tee "$OUT/summary.md"
log "done: $OUT"

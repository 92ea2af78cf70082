#!/usr/bin/env bash
# Mounted on an application's router vs the engine's own listener, side by side: connect
# + hold with HS256 JWT auth against examples/mounted_server.rs (one binary, one shard;
# `mounted`: the WebSocket route on the axum application's port, each socket handed to
# the shard after the upgrade; `own`: the engine's own listener in the same process),
# interleaved run by run. Records RSS per idle authenticated connection and server CPU
# per connect (the connect scenario's `server` figures) in a dated run folder with the
# exact commands, machine facts and raw JSON.
#
#   loadtest/mount.sh                      # 5,000 and 15,000 clients, 3 runs each (~7 min)
#   COUNTS=2000 RUNS=1 loadtest/mount.sh   # quick look
#   CONNECT_RATE=200 loadtest/mount.sh     # fewer upgrades in flight at once (default 1000/s)
#
# Pinning: the server on core 0 (SERVER_CPU), the load generator on core 1 (LOAD_CPU).
# Traffic stays on 127.0.0.1; every run is bounded in time.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-3}"
COUNTS="${COUNTS:-5000 15000}"
MODES="${MODES:-own mounted}"
CONNECT_RATE="${CONNECT_RATE:-1000}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# shellcheck source=scripts/common.sh
source "$HERE/scripts/common.sh"
run_folder mount
SECRET=mount-secret
log() { echo "[mount] $*" >&2; }

log "building release binaries"
(cd "$ROOT" && cargo build --release -p shardcast --example mounted_server >/dev/null 2>&1 &&
  cargo build --release -p shardcast-load >/dev/null 2>&1)
SERVER="$TARGET_DIR/release/examples/mounted_server"
LOAD="$TARGET_DIR/release/shardcast-load"

SPID=""
cleanup() { [[ -n $SPID ]] && kill "$SPID" 2>/dev/null || true; }
trap cleanup EXIT

# start_server MODE LOG → sets SPID and PORT
start_server() {
  taskset -c "$SERVER_CPU" "$SERVER" "$1" 127.0.0.1:0 "$SECRET" >"$2.out" 2>"$2.err" &
  SPID=$!
  for _ in $(seq 100); do grep -q READY "$2.out" 2>/dev/null && break; sleep 0.1; done
  PORT="$(sed -n 's/READY //p' "$2.out")"
  sleep 0.5
}
stop_server() { kill -INT "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=""; sleep 0.5; }

# connect_one MODE CLIENTS RUN
connect_one() {
  local name="connect$2-$1-$3"
  start_server "$1" "$OUT/logs/$name"
  local cmd=(taskset -c "$LOAD_CPU" "$LOAD" connect --clients "$2" --connect-rate "$CONNECT_RATE" --hold-s 5
    --heartbeat-s 2 --url "ws://127.0.0.1:$PORT/ws" --jwt-secret "$SECRET" --server-pid "$SPID"
    --no-progress --json "$OUT/raw/$name.json")
  echo "${cmd[*]}" >>"$OUT/commands.txt"
  log "$name"
  "${cmd[@]}" >"$OUT/raw/$name.txt" 2>&1 || log "  run failed (see raw/$name.txt)"
  stop_server
}

for run in $(seq "$RUNS"); do
  for mode in $MODES; do
    for clients in $COUNTS; do connect_one "$mode" "$clients" "$run"; done
  done
done

{
  echo "date: $STAMP"
  echo "host: $(hostname)  kernel: $(uname -r)  cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "shardcast: $(git -C "$ROOT" rev-parse --short HEAD)  rustc: $(rustc --version)"
  echo "load average at the end (the machine may be shared): $(cut -d" " -f1-3 /proc/loadavg)"
  echo "pinning: server (examples/mounted_server, 1 shard) on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU; runs: $RUNS per figure, modes ($MODES) interleaved run by run; clients: $COUNTS at $CONNECT_RATE connects/s"
} >"$OUT/machine.txt"

python3 "$HERE/scripts/connect_summary.py" "$OUT" | tee "$OUT/summary.md"
log "done: $OUT"

#!/usr/bin/env bash
# The cost of history, side by side in one run: the same fan-out load against one
# shardcast node with its rooms keeping history (`on`) and not (`off`), without Redis
# (`single`) and with one Redis (`redis`), interleaved run by run; then the `recovery`
# scenario (clients dropping and reconnecting with `since` under publish load) on both;
# then the memory a room's history takes (examples/history_memory.rs). Writes a dated run
# folder with the exact commands, machine facts, raw JSON and summary.md.
#
#   loadtest/history.sh                 # 3 runs per figure (~10 min)
#   RUNS=1 DURATION=5 loadtest/history.sh
#
# Pinning: the server on core 0 (SERVER_CPU); the load generator and Redis on core 1
# (LOAD_CPU). Publishing goes through POST /api/publish, so every message takes the
# server's own path (with Redis: the history script, then back from Redis). Traffic
# stays on 127.0.0.1; every run is bounded in time.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# shellcheck source=scripts/common.sh
source "$HERE/scripts/common.sh"
run_folder history
KEY=history-key
log() { echo "[history] $*" >&2; }

log "building release binaries"
(cd "$ROOT" && cargo build --release -p shardcast --bins --example history_memory >/dev/null 2>&1 &&
  cargo build --release -p shardcast-load >/dev/null 2>&1)
BIN="$TARGET_DIR/release/shardcast"
LOAD="$TARGET_DIR/release/shardcast-load"
MEMORY="$TARGET_DIR/release/examples/history_memory"

SPID="" RPID=""
cleanup() {
  [[ -n $SPID ]] && kill "$SPID" 2>/dev/null || true
  [[ -n $RPID ]] && kill "$RPID" 2>/dev/null || true
}
trap cleanup EXIT

start_redis

# start_server MODE(single|redis) HISTORY(on|off) LOG → sets SPID and PORT
start_server() {
  local args=(serve --listen 127.0.0.1:0 --shards 1 --dev --api-key "$KEY" --allow-rooms 'hist-*'
    --log warn)
  [[ $2 == on ]] && args+=(--history-rooms 'hist-*')
  [[ $1 == redis ]] && args+=(--redis "$REDIS")
  echo "taskset -c $SERVER_CPU $BIN ${args[*]}" >>"$OUT/commands.txt"
  taskset -c "$SERVER_CPU" "$BIN" "${args[@]}" >"$3.out" 2>"$3.err" &
  SPID=$!
  for _ in $(seq 100); do grep -q "listening on" "$3.out" 2>/dev/null && break; sleep 0.1; done
  PORT="$(sed -n 's/.*listening on 127.0.0.1://p' "$3.out" | head -1)"
  sleep 0.5
}
stop_server() { kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=""; sleep 0.3; }

# measure NAME MODE HISTORY SCENARIO ARGS...
measure() {
  local name="$1" mode="$2" history="$3" scenario="$4"
  shift 4
  start_server "$mode" "$history" "$OUT/logs/$name"
  local cmd=(taskset -c "$LOAD_CPU" "$LOAD" "$scenario" --url "ws://127.0.0.1:$PORT/ws" --token 'load-{i}'
    --api-key "$KEY" --publish http --room-prefix hist- --server-pid "$SPID" --no-progress
    --json "$OUT/raw/$name.json" "$@")
  echo "${cmd[*]}" >>"$OUT/commands.txt"
  log "$name"
  "${cmd[@]}" >"$OUT/raw/$name.txt" 2>&1 || log "  run reported a failure (see raw/$name.txt)"
  stop_server
}

for run in $(seq "$RUNS"); do
  for mode in single redis; do
    for history in off on; do
      measure "room1k-$mode-$history-$run" "$mode" "$history" fanout \
        --clients 1000 --rooms 1 --rate 1000 --duration-s "$DURATION"
      measure "rooms100-$mode-$history-$run" "$mode" "$history" fanout \
        --clients 5000 --rooms 100 --rate 2000 --duration-s "$DURATION"
    done
  done
done
for mode in single redis; do
  measure "recovery-$mode-on-1" "$mode" on recovery --clients 200 --rooms 10 --rate 500 \
    --duration-s 20 --drop-every-ms 2000 --reconnect-delay-ms 100
done

log "memory per room"
for spec in "2000 100 200" "200 1000 200" "2000 100 1000"; do
  # shellcheck disable=SC2086
  taskset -c "$SERVER_CPU" "$MEMORY" $spec >>"$OUT/raw/memory.jsonl"
done

{
  echo "date: $STAMP"
  echo "host: $(hostname)  kernel: $(uname -r)  cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "shardcast: $(git -C "$ROOT" rev-parse --short HEAD)  rustc: $(rustc --version)  redis: $(redis-server --version | cut -d' ' -f3)"
  echo "load average at the end (the machine may be shared): $(cut -d" " -f1-3 /proc/loadavg)"
  echo "pinning: server (1 shard) on CPU $SERVER_CPU; load generator and Redis on CPU $LOAD_CPU; runs: $RUNS per figure, history off/on and single/redis interleaved run by run; $DURATION s each"
} >"$OUT/machine.txt"

python3 "$HERE/scripts/history_summary.py" "$OUT" | tee "$OUT/summary.md"
log "done: $OUT"

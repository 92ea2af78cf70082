#!/usr/bin/env bash
# The reference baseline PERF.md compares against: the Ignis refpeer (Bun) pinned to CPU 0,
# shardcast-load and a private Redis pinned to CPU 1, five bounded runs, raw JSON kept.
#
#   bash loadtest/scripts/refpeer-baseline.sh            # from the repository root
#   OUT=perf/2026-11-22 SERVER_CPU=0 LOAD_CPU=1 bash loadtest/scripts/refpeer-baseline.sh
#
# Needs: redis-server, taskset, a release build of shardcast-load (built here if missing),
# shared/refpeer beside the repository (REFPEER=… to override). Never touches a Redis it
# did not start; stops what it started by PID.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REFPEER="${REFPEER:-$ROOT/../shared/refpeer}"
OUT="${OUT:-/tmp/refpeer-baseline-$(date -u +%Y%m%dT%H%M%SZ)}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release/shardcast-load"
mkdir -p "$OUT"

[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p shardcast-load)

free_port() {
  local p
  while :; do
    p=$(( (RANDOM % 30000) + 20000 ))
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

REDIS_PORT=$(free_port)
taskset -c "$LOAD_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
PORT=0 REDIS_URL="redis://127.0.0.1:$REDIS_PORT" JWT_SECRET=s API_KEY=k \
  taskset -c "$SERVER_CPU" bash "$REFPEER/run.sh" >"$OUT/refpeer.out" 2>"$OUT/refpeer.err" &
REF_PID=$!   # run.sh execs bun: this is the server's PID
cleanup() {
  kill "$REF_PID" 2>/dev/null && wait "$REF_PID" 2>/dev/null || true
  kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 600); do grep -q '^READY' "$OUT/refpeer.out" 2>/dev/null && break; sleep 0.5; done
WS_PORT=$(awk '/^READY/ {print $2}' "$OUT/refpeer.out")
[ -n "$WS_PORT" ] || { echo "refpeer did not start; see $OUT/refpeer.err" >&2; exit 1; }
sleep 2

# This machine may be shared (builds): wait up to QUIET_WAIT_S for the host to be idle
# before each run. Each report's client.other_cores still records any interference.
QUIET_WAIT_S="${QUIET_WAIT_S:-300}"
host_busy_pct() {
  local a b
  a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
  local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))
  local idle=$(( (b[4]+b[5]) - (a[4]+a[5]) ))
  echo $(( 100 * busy / (busy + idle + 1) ))
}
wait_quiet() {
  local waited=0 pct
  while pct=$(host_busy_pct); [ "$pct" -gt 10 ] && [ "$waited" -lt "$QUIET_WAIT_S" ]; do
    echo "host ${pct}% busy, waiting for quiet..." >&2; waited=$((waited + 2))
  done
}

URL="ws://127.0.0.1:$WS_PORT/ws"
REDIS="redis://127.0.0.1:$REDIS_PORT"
COMMON=(--url "$URL" --jwt-secret s --server-pid "$REF_PID" --no-progress)
load() { local name=$1; shift; wait_quiet; echo "== $name: shardcast-load $*" | tee "$OUT/$name.txt";
         timeout 300 taskset -c "$LOAD_CPU" "$BIN" "$@" "${COMMON[@]}" --json "$OUT/$name.json" | tee -a "$OUT/$name.txt"; sleep 2; }

load connect-2000        connect --clients 2000 --hold-s 10
load fanout-1x1000-r500  fanout  --clients 1000 --rooms 1 --rate 500 --duration-s 10 --redis "$REDIS"
load fanout-1x1000-r2000 fanout  --clients 1000 --rooms 1 --rate 2000 --duration-s 10 --redis "$REDIS"
load fanout-100x5000-r2000 fanout --clients 5000 --rooms 100 --rate 2000 --duration-s 10 --redis "$REDIS"
load churn-500           churn   --rate 500 --duration-s 10

{ echo "date: $(date -u +%FT%TZ)"; echo "host: $(hostname) $(uname -r) $(nproc) CPUs"
  echo "refpeer: $(grep -o '"@venizia/ignis-helpers": *"[^"]*"' "$REFPEER/package.json" || true)"
  echo "server CPU $SERVER_CPU, load + redis CPU $LOAD_CPU"; } >"$OUT/ENV.txt"
echo "results in $OUT"

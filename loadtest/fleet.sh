#!/usr/bin/env bash
# Interest-based Redis subscriptions, side by side in one run: NODES shardcast nodes on
# one Redis, CLIENTS clients in ROOMS rooms spread over the nodes (disjoint: each room's
# members on one node; mixed: each room spanning the nodes), a publisher at RATE
# messages/s through Redis. For every placement, the nodes run with `--redis-subscribe
# patterns` (PSUBSCRIBE ws:room:* …: every node receives every room's messages) and
# `--redis-subscribe interest` (SUBSCRIBE to the rooms, clients and users a node hosts),
# interleaved round by round. Figures: Redis messages received per node, node CPU per
# delivery, publish → receive latency (every delivery crosses Redis), lost messages.
# Writes a dated run folder with the exact commands, machine facts, raw JSON and metrics,
# summary.md and summary.json.
#
#   loadtest/fleet.sh                                    # 3 rounds × 2 placements × 2 modes (~4 min + builds)
#   RUNS=1 CLIENTS=2000 ROOMS=200 DURATION=3 loadtest/fleet.sh   # a short check
#   SHARDCAST=/path/to/shardcast loadtest/fleet.sh       # another server binary (no build)
#
# Knobs (environment): RUNS (3), PLACEMENTS ("disjoint mixed"), MODES ("patterns
# interest"), NODES (4), CLIENTS (10000), ROOMS (1000), RATE (2000), DURATION (10),
# CONNECT_RATE (4000), MAX_INFLIGHT (256), SOURCE_IPS (1), SERVER_CPU (1), LOAD_CPU (0),
# READY_TIMEOUT_S (30), SHARDCAST, EXTRA (more shardcast-load flags), OUT.
#
# A server without `--redis-subscribe` (before the feature) runs in its only mode, with
# no flag, labelled `patterns`; the script says so loudly and in the summary.
#
# Pinning: every node on core SERVER_CPU; the load generator and Redis on core LOAD_CPU.
# Within a round the modes take turns first (round 1 patterns first, round 2 interest
# first, …), so neither always holds the same slot. Traffic stays on 127.0.0.1; every
# wait has a timeout and the load generator runs under `timeout`. Every process the
# script starts is stopped by its PID.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-3}"
PLACEMENTS="${PLACEMENTS:-disjoint mixed}"
MODES="${MODES:-patterns interest}"
NODES="${NODES:-4}"
CLIENTS="${CLIENTS:-10000}"
ROOMS="${ROOMS:-1000}"
RATE="${RATE:-2000}"
DURATION="${DURATION:-10}"
CONNECT_RATE="${CONNECT_RATE:-4000}"
MAX_INFLIGHT="${MAX_INFLIGHT:-256}"
SOURCE_IPS="${SOURCE_IPS:-1}"
SERVER_CPU="${SERVER_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
READY_TIMEOUT_S="${READY_TIMEOUT_S:-30}"
EXTRA="${EXTRA:-}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Counters and gauges read from every node (each the sum over its label sets); the last
# four come with interest mode and are recorded when a node exports them.
METRICS=(shardcast_redis_received_total shardcast_deliveries_total shardcast_redis_subscriptions
  shardcast_redis_subscription_changes_total shardcast_redis_subscription_commands_total
  shardcast_redis_received_unwanted_total)

log() { echo "[fleet] $*" >&2; }
# quoted CMD...: the command as a shell would need it typed (empty arguments kept).
quoted() { printf '%q ' "$@"; echo; }
die() { log "$*"; exit 2; }

# The load generator holds every client socket; a node holds its share.
HARD_FDS="$(ulimit -Hn)"
(( CLIENTS + MAX_INFLIGHT + 64 <= HARD_FDS )) ||
  die "CLIENTS=$CLIENTS needs $(( CLIENTS + MAX_INFLIGHT + 64 )) descriptors in the load generator; the hard limit is $HARD_FDS"
ulimit -n "$HARD_FDS"
command -v curl >/dev/null || die "curl is needed (readiness and /metrics)"

# shellcheck source=scripts/common.sh
source "$HERE/scripts/common.sh"
run_folder fleet

# build ARGS...: cargo build --release ARGS, output in logs/build.log; dies on failure.
build() {
  (cd "$ROOT" && cargo build --release "$@" >>"$OUT/logs/build.log" 2>&1) ||
    { tail -20 "$OUT/logs/build.log" >&2; die "build failed: cargo build --release $*"; }
}
log "building release binaries (log: $OUT/logs/build.log)"
if [[ -n ${SHARDCAST:-} ]]; then
  SC="$SHARDCAST"
else
  build -p shardcast --bins
  SC="$TARGET_DIR/release/shardcast"
fi
# Always built: the fleet options (--node, --node-pid, --node-metric) must be there.
build -p shardcast-load
LOAD="$TARGET_DIR/release/shardcast-load"
[[ -x $SC ]] || die "no server binary at $SC"

# Does this server know --redis-subscribe? Without it: one mode, today's, unflagged.
MODE_FLAG=yes
if ! "$SC" serve --help 2>/dev/null | grep -q -- '--redis-subscribe'; then
  MODE_FLAG=no
  MODES=patterns
  log "WARNING: $SC serve has no --redis-subscribe: running its only mode (pattern"
  log "WARNING: subscriptions), labelled 'patterns', without the flag; no interest mode to compare"
fi

NODE_PIDS=()
cleanup() {
  for p in "${NODE_PIDS[@]:-}" "${RPID:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
  for p in "${NODE_PIDS[@]:-}" "${RPID:-}"; do [[ -n $p ]] && wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

start_redis
redis-cli -p "$RPORT" ping >/dev/null 2>&1 || die "redis-server did not answer on port $RPORT"
quoted "${REDIS_CMD[@]}" >>"$OUT/commands.txt"

# cpu_ticks PID: utime + stime of PID, in clock ticks (fields 14 and 15 of stat(5)).
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# start_node MODE LOG → appends to NODE_PIDS and NODE_PORTS
start_node() {
  local mode=$1 log=$2
  local args=(serve --listen 127.0.0.1:0 --shards 1 --dev --allow-rooms 'public-*' --redis "$REDIS"
    --default-rooms '' --log warn)
  [[ $MODE_FLAG == yes ]] && args+=(--redis-subscribe "$mode")
  quoted taskset -c "$SERVER_CPU" "$SC" "${args[@]}" >>"$OUT/commands.txt"
  taskset -c "$SERVER_CPU" "$SC" "${args[@]}" >"$log.out" 2>"$log.err" &
  NODE_PIDS+=($!)
  local port=""
  for _ in $(seq 100); do
    port="$(sed -n 's/^listening on 127.0.0.1://p' "$log.out" 2>/dev/null | head -1)"
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { log "  a node did not start (see $log.err)"; return 1; }
  NODE_PORTS+=("$port")
}

# wait_ready PORT: GET /ready answers 200 once the node's Redis subscription is up.
wait_ready() {
  local deadline=$(( SECONDS + READY_TIMEOUT_S ))
  until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/ready") == 200 ]]; do
    (( SECONDS < deadline )) || return 1
    sleep 0.1
  done
}

# start_fleet MODE NAME: NODES nodes, each ready; NODE_PIDS and NODE_PORTS in node order.
start_fleet() {
  NODE_PIDS=() NODE_PORTS=()
  local k
  for ((k = 0; k < NODES; k++)); do start_node "$1" "$OUT/logs/$2-node$k" || return 1; done
  for port in "${NODE_PORTS[@]}"; do
    wait_ready "$port" || { log "  node on port $port not ready within $READY_TIMEOUT_S s"; return 1; }
  done
}

# stop_fleet: TERM every node, KILL what is still there after 15 s.
stop_fleet() {
  local p
  for p in "${NODE_PIDS[@]:-}"; do [[ -n $p ]] && kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 150); do
    local alive=0
    for p in "${NODE_PIDS[@]:-}"; do [[ -n $p ]] && kill -0 "$p" 2>/dev/null && alive=1; done
    (( alive )) || break
    sleep 0.1
  done
  for p in "${NODE_PIDS[@]:-}"; do [[ -n $p ]] && kill -KILL "$p" 2>/dev/null || true; done
  for p in "${NODE_PIDS[@]:-}"; do [[ -n $p ]] && wait "$p" 2>/dev/null || true; done
  NODE_PIDS=()
  sleep 0.5
}

# snapshot NAME EDGE: every node's /metrics and CPU ticks, and Redis's CPU ticks.
snapshot() {
  local k
  for ((k = 0; k < NODES; k++)); do
    curl -s --max-time 5 "http://127.0.0.1:${NODE_PORTS[$k]}/metrics" >"$OUT/raw/$1.node$k.$2.prom" || true
    echo "$2 node$k ${NODE_PIDS[$k]} ${NODE_PORTS[$k]} $(cpu_ticks "${NODE_PIDS[$k]}" 2>/dev/null || echo NA)" >>"$OUT/raw/$1.cpu"
  done
  echo "$2 redis $RPID $RPORT $(cpu_ticks "$RPID" 2>/dev/null || echo NA)" >>"$OUT/raw/$1.cpu"
}

# measure PLACEMENT MODE RUN
measure() {
  local placement=$1 mode=$2 run=$3
  local name="$placement-$mode-$run"
  log "$name"
  if ! start_fleet "$mode" "$name"; then
    echo "nodes did not start or become ready" >"$OUT/raw/$name.failed"
    stop_fleet
    return
  fi
  local nodes=() port pids
  for port in "${NODE_PORTS[@]}"; do nodes+=(--node "ws://127.0.0.1:$port/ws"); done
  pids="$(IFS=,; echo "${NODE_PIDS[*]}")"
  local metric_flags=() m
  for m in "${METRICS[@]}"; do metric_flags+=(--node-metric "$m"); done
  # Bound: the ramp, warm-up (15 s), publishing, drain (10 s), close, and a margin.
  local bound=$(( CLIENTS / CONNECT_RATE + DURATION + 120 ))
  # shellcheck disable=SC2206
  local cmd=(timeout --kill-after=10 "$bound" taskset -c "$LOAD_CPU" "$LOAD" fanout
    --url "ws://127.0.0.1:${NODE_PORTS[0]}/ws" "${nodes[@]}" --placement "$placement"
    --token 'load-{i}' --redis "$REDIS" --clients "$CLIENTS" --rooms "$ROOMS" --rate "$RATE"
    --duration-s "$DURATION" --connect-rate "$CONNECT_RATE" --max-inflight "$MAX_INFLIGHT"
    --source-ips "$SOURCE_IPS" --node-pid "$pids" "${metric_flags[@]}" --no-progress
    --json "$OUT/raw/$name.json" $EXTRA)
  quoted "${cmd[@]}" >>"$OUT/commands.txt"
  snapshot "$name" before
  local rc=0
  "${cmd[@]}" >"$OUT/raw/$name.txt" 2>&1 || rc=$?
  (( rc == 0 )) || log "  shardcast-load exited $rc (see raw/$name.txt)"
  [[ -s $OUT/raw/$name.json ]] || echo "no JSON report: shardcast-load exited $rc" >"$OUT/raw/$name.failed"
  snapshot "$name" after
  stop_fleet
}

# modes_of_round RUN: MODES rotated by RUN − 1.
modes_of_round() {
  # shellcheck disable=SC2206
  local modes=($MODES) n i
  n=${#modes[@]}
  for ((i = 0; i < n; i++)); do echo "${modes[$(( (i + $1 - 1) % n ))]}"; done
}

for run in $(seq "$RUNS"); do
  for placement in $PLACEMENTS; do
    for mode in $(modes_of_round "$run"); do
      measure "$placement" "$mode" "$run"
    done
  done
done

{
  echo "date: $STAMP"
  echo "host: $(hostname)  kernel: $(uname -r)  cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "shardcast: $("$SC" --version) (tree $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/'))"
  echo "shardcast-load: $("$LOAD" --version)  rustc: $(rustc --version)  redis: $(redis-server --version | cut -d' ' -f3)"
  echo "binaries: $SC, $LOAD"
  echo "load average at the end (the machine may be shared): $(cut -d" " -f1-3 /proc/loadavg)"
  echo "pinning: $NODES nodes (1 shard each) on CPU $SERVER_CPU (taskset -c $SERVER_CPU); load generator and Redis on CPU $LOAD_CPU (taskset -c $LOAD_CPU)"
  echo "load: $CLIENTS clients in $ROOMS rooms, $RATE msg/s for $DURATION s through Redis, connect rate $CONNECT_RATE/s; runs: $RUNS, placements: $PLACEMENTS, modes: $MODES, interleaved round by round"
  echo "mode flag: $([[ $MODE_FLAG == yes ]] && echo '--redis-subscribe MODE' || echo 'absent: one unflagged mode, labelled patterns')"
  echo "clock ticks per second: $(getconf CLK_TCK)"
} >"$OUT/machine.txt"

python3 "$HERE/scripts/fleet_summary.py" "$OUT"
cat "$OUT/summary.md"
log "done: $OUT"

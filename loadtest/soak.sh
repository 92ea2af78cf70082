#!/usr/bin/env bash
# Soak: one shardcast server holding as many connections as the descriptor limit allows,
# with continuous churn (connect, authenticate, join, leave, close) and fan-out, for
# DURATION seconds; the server's RSS and descriptors are sampled into a series and judged
# (RSS flat after warm-up, no descriptor leak, no error, every message accounted for).
# Writes a dated run folder with the exact commands, machine facts, the raw JSON, a
# summary and an RSS-versus-time plot. Exits 1 when the verdict fails.
#
#   loadtest/soak.sh                               # the full soak: 10 min, ~19,000 members
#   DURATION=60 CLIENTS=2000 loadtest/soak.sh      # a short check (about 1.5 min)
#   SHARDCAST=/path/to/shardcast loadtest/soak.sh  # another server binary (no build)
#
# Pinning: the server on core 0 (SERVER_CPU), load generator and Redis on core 1
# (LOAD_CPU). Traffic stays on 127.0.0.0/8; the run is bounded in time. Every process the
# script starts is stopped by its PID on exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
DURATION="${DURATION:-600}"
HARD_FDS="$(ulimit -Hn)"
# Members: as many as the per-process open-file limit allows both the server and the
# load generator (one process: it also needs MAX_INFLIGHT churn sockets and headroom),
# as compare.sh's CONNECT_CLIENTS.
CLIENTS="${CLIENTS:-$(( HARD_FDS > 20000 ? 19000 : HARD_FDS - 1000 ))}"
MAX_INFLIGHT="${MAX_INFLIGHT:-256}"
ROOMS="${ROOMS:-100}"
RATE="${RATE:-100}"                 # fan-out messages/s (each reaches CLIENTS/ROOMS members)
CHURN_RATE="${CHURN_RATE:-100}"     # churn cycles/s
CHURN_HOLD_MS="${CHURN_HOLD_MS:-1000}"
SAMPLE_S="${SAMPLE_S:-5}"
SOURCE_IPS="${SOURCE_IPS:-4}"       # members + churn on one port: spread the source ports
CONNECT_RATE="${CONNECT_RATE:-2000}"
SHARDS="${SHARDS:-1}"
PUBLISH="${PUBLISH:-redis}"         # redis | http
EXTRA="${EXTRA:-}"                  # more shardcast-load flags, e.g. "--rss-warmup-s 120"
SECRET=soak-secret
APIKEY=soak-key

log() { echo "[soak] $*" >&2; }

budget=$(( CLIENTS + MAX_INFLIGHT + 64 + 2 ))
if (( budget > HARD_FDS )); then
  log "CLIENTS=$CLIENTS + MAX_INFLIGHT=$MAX_INFLIGHT + headroom needs $budget descriptors; the hard limit is $HARD_FDS"
  exit 2
fi
ulimit -n "$HARD_FDS"
# shellcheck source=scripts/common.sh
source "$HERE/scripts/common.sh"
run_folder soak

if [[ -n ${SHARDCAST:-} ]]; then
  SC="$SHARDCAST"
  LOAD="${SHARDCAST_LOAD:-${CARGO_TARGET_DIR:-$ROOT/target}/release/shardcast-load}"
  [[ -x $LOAD ]] || (cd "$ROOT" && cargo build --release -p shardcast-load >/dev/null 2>&1)
else
  log "building release binaries"
  (cd "$ROOT" && cargo build --release -p shardcast -p shardcast-load >/dev/null 2>&1)
  SC="${CARGO_TARGET_DIR:-$ROOT/target}/release/shardcast"
  LOAD="${CARGO_TARGET_DIR:-$ROOT/target}/release/shardcast-load"
fi

PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [[ -n $p ]] && wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

start_redis
PIDS+=("$RPID")

SERVER_CMD=(taskset -c "$SERVER_CPU" "$SC" serve --jwt-secret "$SECRET" --api-key "$APIKEY"
  --listen 127.0.0.1:0 --allow-rooms 'public-*' --shards "$SHARDS" --redis "$REDIS")
"${SERVER_CMD[@]}" >"$OUT/logs/server.out" 2>"$OUT/logs/server.err" &
SPID=$!
PIDS+=("$SPID")
for _ in $(seq 100); do grep -q listening "$OUT/logs/server.out" 2>/dev/null && break; sleep 0.1; done
ADDR="$(sed -n 's/listening on //p' "$OUT/logs/server.out")"
[[ -n $ADDR ]] || { log "the server did not start (see $OUT/logs/server.err)"; exit 2; }
sleep 0.5

case $PUBLISH in
  redis) PUB=(--redis "$REDIS") ;;
  http) PUB=(--api-key "$APIKEY") ;;
  *) log "PUBLISH must be redis or http"; exit 2 ;;
esac
# shellcheck disable=SC2206
LOAD_CMD=(taskset -c "$LOAD_CPU" "$LOAD" soak --url "ws://$ADDR/ws" --jwt-secret "$SECRET"
  --server-pid "$SPID" "${PUB[@]}" --clients "$CLIENTS" --rooms "$ROOMS" --rate "$RATE"
  --churn-rate "$CHURN_RATE" --churn-hold-ms "$CHURN_HOLD_MS" --duration-s "$DURATION"
  --sample-s "$SAMPLE_S" --source-ips "$SOURCE_IPS" --connect-rate "$CONNECT_RATE"
  --max-inflight "$MAX_INFLIGHT" $EXTRA --no-progress --json "$OUT/raw/soak.json")
{
  echo "# redis"; echo "${REDIS_CMD[*]}"
  echo "# server (ulimit -n $(ulimit -n))"; echo "${SERVER_CMD[*]}"
  echo "# load"; echo "${LOAD_CMD[*]}"
} >"$OUT/commands.txt"
log "soak: $CLIENTS members, $ROOMS rooms, $RATE msg/s, churn $CHURN_RATE/s for $DURATION s → $OUT"
rc=0
"${LOAD_CMD[@]}" >"$OUT/raw/soak.txt" 2>&1 || rc=$?
cat "$OUT/raw/soak.txt" >&2
kill -TERM "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true

{
  echo "date: $STAMP"
  echo "host: $(hostname)  kernel: $(uname -r)  cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "shardcast: $("$SC" --version) ($(git -C "$ROOT" rev-parse --short HEAD))  rustc: $(rustc --version)"
  echo "redis: $(redis-server --version | cut -d' ' -f3)"
  echo "open files: ulimit -Hn $HARD_FDS; members $CLIENTS + up to $MAX_INFLIGHT churn sockets"
  echo "pinning: server on CPU $SERVER_CPU, load generator and Redis on CPU $LOAD_CPU"
} >"$OUT/machine.txt"

if [[ $rc -ne 0 || ! -s $OUT/raw/soak.json ]]; then
  log "the load generator failed (exit $rc); see $OUT/raw/soak.txt"
  exit 2
fi
python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib >/dev/null 2>&1 || log "no matplotlib: no plot"
python3 "$HERE/scripts/soak_summary.py" "$OUT" >"$OUT/summary.md"
log "done: $OUT"
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["results"]["verdict"]["passed"] else 1)' "$OUT/raw/soak.json"

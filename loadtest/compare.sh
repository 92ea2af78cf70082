#!/usr/bin/env bash
# Side-by-side benchmark: shardcast vs the Ignis reference (refpeer, Bun), same machine,
# same run, same load. Writes a dated run folder with the exact commands, versions,
# machine facts, raw JSON of every run, a summary table and a latency-vs-load plot.
#
#   loadtest/compare.sh            # full comparison (3 runs per figure, ~25 min)
#   RUNS=1 loadtest/compare.sh     # one run per figure (~9 min)
#   SCENARIOS="fanout1k many" loadtest/compare.sh
#   BASELINE_SC=/path/to/older/shardcast loadtest/compare.sh   # + before/after rows
#   SCENARIOS=deflate loadtest/compare.sh   # permessage-deflate comparison (not in the default list)
#   SCENARIOS=deflatehigh loadtest/compare.sh   # shardcast alone, compression off/on, at 10× deflate's rates
#
# deflate: the ~1 KB JSON message (--payload json --frame-bytes 1024) to a 1,000-member
# room (deflate1k) and to 100 rooms of 50 (deflatemany, the `many` shape), each against
# shardcast plain (sc) and with --compression (scz), the refpeer plain (ref) and with
# PER_MESSAGE_DEFLATE=1 (refz), interleaved. Every client offers permessage-deflate
# (--compression): a server without it answers without the extension, which the report
# counts; against scz and refz the clients also pass --require-compression, so a
# compression server that did not agree fails its run. Rates are lower than fanout1k's
# and many's (DEFLATE_RATE_1K, DEFLATE_RATE_MANY messages/s; 20,000 deliveries/s each by
# default): Bun compresses for every recipient (about 30 µs of CPU per compressed delivery
# in a short run on the development VM) and fell far behind at 50,000/s on its one core.
#
# Pinning: every server on core 0 (SERVER_CPU), load generator and Redis on core 1
# (LOAD_CPU). Traffic stays on 127.0.0.0/8; every run is bounded in time. The servers
# of a figure are interleaved run by run, their order rotating (ref [base] sc, then
# [base] sc ref, …), so drift and slot effects hit each alike. BASELINE_SC adds an older
# shardcast binary ("base") to every shardcast figure, for before/after comparisons.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
RUNS="${RUNS:-3}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
SCENARIOS="${SCENARIOS:-fanout1k fanout2k ceiling many stalled connect shards}"
DURATION="${DURATION:-10}"
DEFLATE_RATE_1K="${DEFLATE_RATE_1K:-20}"
DEFLATE_RATE_MANY="${DEFLATE_RATE_MANY:-400}"
# Connections for the memory/connect figure: as many as the per-process open-file limit
# allows both the server and the load generator (fixed per-process memory amortizes).
CONNECT_CLIENTS="${CONNECT_CLIENTS:-$(( $(ulimit -Hn) > 20000 ? 19000 : $(ulimit -Hn) - 1000 ))}"
# The stalled-reader comparison is noisy at p99: more runs for it.
RUNS_STALLED="${RUNS_STALLED:-5}"
# shellcheck source=scripts/common.sh
source "$HERE/scripts/common.sh"
run_folder
BASE="${BASELINE_SC:-}"
SECRET=compare-secret
APIKEY=compare-key

log() { echo "[compare] $*" >&2; }

log "building release binaries"
(cd "$ROOT" && cargo build --release -p shardcast -p shardcast-load >/dev/null 2>&1)
SC="$ROOT/target/release/shardcast"
LOAD="$ROOT/target/release/shardcast-load"
python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib >/dev/null 2>&1 || log "no matplotlib: no plot"

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start_redis
PIDS+=("$RPID")

# start_server NAME LOG [shardcast flags...] → sets SPID and ADDR; server output in LOG.{out,err}
# NAME: ref, refz (refpeer with PER_MESSAGE_DEFLATE=1), sc, scz (shardcast --compression), base.
start_server() {
  local name=$1 log=$2; shift 2
  if [[ $name == ref || $name == refz ]]; then
    local deflate=0
    [[ $name == refz ]] && deflate=1
    PER_MESSAGE_DEFLATE=$deflate PORT=0 HOST=127.0.0.1 REDIS_URL="$REDIS" JWT_SECRET="$SECRET" API_KEY="$APIKEY" ROOM_ALLOW_PREFIX=public- \
      taskset -c "$SERVER_CPU" bash "$SHARED/refpeer/run.sh" >"$log.out" 2>"$log.err" &
    SPID=$!
    for _ in $(seq 600); do grep -q READY "$log.out" 2>/dev/null && break; sleep 0.1; done
    ADDR="127.0.0.1:$(sed -n 's/READY //p' "$log.out")"
    # run.sh execs bun, so $SPID is the server itself.
  else
    local bin="$SC" extra=()
    [[ $name == base ]] && bin="$BASE"
    [[ $name == scz ]] && extra=(--compression)
    taskset -c "$SERVER_CPU" "$bin" serve --jwt-secret "$SECRET" --api-key "$APIKEY" --listen 127.0.0.1:0 \
      --allow-rooms 'public-*' --redis "$REDIS" "$@" "${extra[@]}" >"$log.out" 2>"$log.err" &
    SPID=$!
    for _ in $(seq 100); do grep -q listening "$log.out" 2>/dev/null && break; sleep 0.1; done
    ADDR="$(sed -n 's/listening on //p' "$log.out")"
  fi
  sleep 0.5
}
stop_server() { kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; sleep 0.5; }

# measure LABEL "SERVERS" "server flags" load-args...   (RUNS_OVERRIDE changes the run count)
# Runs every server of SERVERS once per round, RUNS rounds (interleaved). "sc" also
# brings "base" when BASELINE_SC is set.
measure() {
  local label=$1 servers=$2 flags=$3; shift 3
  [[ -n $BASE && " $servers " == *" sc "* ]] && servers="${servers/sc/base sc}"
  # The order rotates run by run (ref base sc, base sc ref, sc ref base): a slot in the
  # rotation has its own bias (an A/A run, 2026-12-01T111507Z, gave the same binary 1.36×
  # the p99 in the third slot), so no server may always hold the same one.
  local order=($servers) n
  n=${#order[@]}
  for run in $(seq "${RUNS_OVERRIDE:-$RUNS}"); do
    for ((i = 0; i < n; i++)); do
      measure_one "$label" "${order[$(( (i + run - 1) % n ))]}" "$run" "$flags" "$@"
    done
  done
}

# measure_one LABEL SERVER RUN "server flags" load-args...
measure_one() {
  local label=$1 server=$2 run=$3 flags=$4; shift 4
  # shellcheck disable=SC2086
  start_server "$server" "$OUT/logs/$label-$server-$run" $flags
  local json="$OUT/raw/$label-$server-$run.json"
  # A compression server (scz, refz) must agree to permessage-deflate on every connection.
  local require=()
  [[ $server == scz || $server == refz ]] && require=(--require-compression)
  local cmd=(taskset -c "$LOAD_CPU" "$LOAD" "$@" "${require[@]}" --url "ws://$ADDR/ws" --jwt-secret "$SECRET" --server-pid "$SPID" --no-progress --json "$json")
  echo "${cmd[*]}" >>"$OUT/commands.txt"
  log "$label $server run $run"
  "${cmd[@]}" >"$OUT/raw/$label-$server-$run.txt" 2>&1 || log "  run failed (see raw/$label-$server-$run.txt)"
  stop_server
}

fanout() { echo fanout --redis "$REDIS" --duration-s "$DURATION" "$@"; }
# The compression comparison's load: the ~1 KB JSON message, every client offering permessage-deflate.
deflate() { fanout --payload json --frame-bytes 1024 --compression "$@"; }

for s in $SCENARIOS; do
  case $s in
    fanout1k) measure fanout1k "ref sc" "--shards 1" $(fanout --clients 1000 --rooms 1 --rate 1000) ;;
    fanout2k) measure fanout2k "ref sc" "--shards 1" $(fanout --clients 1000 --rooms 1 --rate 2000) ;;
    ceiling) measure ceiling "ref sc" "--shards 1" $(fanout --clients 1000 --rooms 1 --rate 5000) ;;
    many) measure many "ref sc" "--shards 1" $(fanout --clients 5000 --rooms 100 --rate 2000 --source-ips 2) ;;
    stalled)
      RUNS_OVERRIDE=$RUNS_STALLED measure stalled0 "ref sc" "--shards 1" $(fanout --clients 1000 --rooms 1 --rate 1000)
      RUNS_OVERRIDE=$RUNS_STALLED measure stalled1 "ref sc" "--shards 1" $(fanout --clients 1000 --rooms 1 --rate 1000 --stalled 1) ;;
    connect) measure connect "ref sc" "--shards 1" connect --clients "$CONNECT_CLIENTS" --connect-rate 4000 --hold-s 5 --heartbeat-s 2 --source-ips 4 ;;
    shards)
      measure shards1 "sc" "--shards 1" $(fanout --clients 1000 --rooms 1 --rate 2000)
      measure shards2 "sc" "--shards 2" $(fanout --clients 1000 --rooms 1 --rate 2000) ;;
    deflate)
      measure deflate1k "ref refz sc scz" "--shards 1" $(deflate --clients 1000 --rooms 1 --rate "$DEFLATE_RATE_1K")
      measure deflatemany "ref refz sc scz" "--shards 1" $(deflate --clients 5000 --rooms 100 --rate "$DEFLATE_RATE_MANY" --source-ips 2) ;;
    deflatehigh)
      # shardcast off vs on at 10× deflate's rates, beyond what the reference follows while
      # compressing on one core (and as far as one load core inflates: 1,000 msg/s to
      # 1,000 members saturates it).
      measure deflatehigh1k "sc scz" "--shards 1" $(deflate --clients 1000 --rooms 1 --rate 200)
      measure deflatehighmany "sc scz" "--shards 1" $(deflate --clients 5000 --rooms 100 --rate 4000 --source-ips 2) ;;
  esac
done

{
  echo "date: $STAMP"
  echo "host: $(hostname)  kernel: $(uname -r)  cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "shardcast: $("$SC" --version) ($(git -C "$ROOT" rev-parse --short HEAD))  rustc: $(rustc --version)"
  [[ -n $BASE ]] && echo "baseline (base): $BASE ($("$BASE" --version))${BASELINE_REV:+ at $BASELINE_REV}"
  BUN="$(bash "$SHARED/refpeer/setup.sh" 2>/dev/null || true)"
  echo "refpeer: bun $("$BUN" --version 2>/dev/null || echo '?'), @venizia/ignis-helpers 0.0.7"
  echo "redis: $(redis-server --version | cut -d' ' -f3)"
  echo "pinning: servers on CPU $SERVER_CPU, load generator and Redis on CPU $LOAD_CPU; runs per figure: $RUNS (stalled: $RUNS_STALLED), servers interleaved run by run; connect: $CONNECT_CLIENTS clients"
  if [[ " $SCENARIOS " == *" deflate"* ]]; then
    echo "deflate: ~1 KB JSON (--payload json --frame-bytes 1024), clients offer permessage-deflate; $DEFLATE_RATE_1K msg/s to 1 room × 1,000, $DEFLATE_RATE_MANY msg/s to 100 rooms × 50"
  fi
} >"$OUT/machine.txt"

python3 "$HERE/scripts/summarize.py" "$OUT" | tee "$OUT/summary.md"
log "done: $OUT"

# Sourced by the run scripts of loadtest/ (compare.sh, soak.sh, tls.sh, mount.sh,
# history.sh, deflate_memory.sh, fleet.sh): what every one of them does the same way.
#
#   run_folder SUFFIX   STAMP, and OUT = runs/<stamp>-<host>[-SUFFIX] (unless OUT is set)
#                       with raw/ and logs/
#   free_port           prints a free TCP port on 127.0.0.1
#   start_redis         a throwaway redis-server on a free port of 127.0.0.1, pinned to
#                       LOAD_CPU, no persistence, log in $OUT/logs/redis.log; sets RPORT,
#                       RPID, REDIS (its URL) and REDIS_CMD (the command, for the record);
#                       installs Debian's redis-server when it is missing
#
# The caller sets HERE (the loadtest directory) and LOAD_CPU first, and stops RPID itself.

run_folder() {
  STAMP="$(date -u +%Y-%m-%dT%H%M%SZ)"
  OUT="${OUT:-$HERE/runs/$STAMP-$(hostname)${1:+-$1}}"
  mkdir -p "$OUT/raw" "$OUT/logs"
}

free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

start_redis() {
  command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
  RPORT="$(free_port)"
  REDIS_CMD=(taskset -c "$LOAD_CPU" redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no)
  "${REDIS_CMD[@]}" >"$OUT/logs/redis.log" 2>&1 &
  RPID=$!
  REDIS="redis://127.0.0.1:$RPORT"
  for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

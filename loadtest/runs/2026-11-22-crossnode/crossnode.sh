#!/usr/bin/env bash
# Cross-node latency: clients on node B, messages published over HTTP to node A, which
# delivers locally and publishes the envelope to Redis; B delivers. Nodes on CPU 0,
# Redis and the load generator on CPU 1.
set -u
RATE=${1:-500}
RPORT=$((20000 + RANDOM % 10000))
taskset -c 1 redis-server --port $RPORT --bind 127.0.0.1 --save "" --appendonly no > /dev/null 2>&1 & RPID=$!
sleep 0.3
for n in a b; do
  taskset -c 0 /work/main/target/release/shardcast serve --jwt-secret s --api-key k --listen 127.0.0.1:0 --shards 1 --allow-rooms 'public-*' --redis redis://127.0.0.1:$RPORT > /tmp/sc/$n.out 2>/tmp/sc/$n.err &
  eval "PID_$n=\$!"
done
sleep 1
A=$(sed -n 's/listening on //p' /tmp/sc/a.out); B=$(sed -n 's/listening on //p' /tmp/sc/b.out)
taskset -c 1 /work/main/target/release/shardcast-load fanout --url ws://$B/ws --jwt-secret s --clients 1000 --rooms 10 --rate $RATE --duration-s 10 --publish http --api-key k --api-url http://$A/api/publish --server-pid $PID_b --no-progress --json /tmp/sc/crossnode-$RATE.json > /tmp/sc/crossnode-$RATE.txt 2>&1
kill $PID_a $PID_b $RPID; wait 2>/dev/null
grep -E "throughput|latency|lost|duplicates|SATUR" /tmp/sc/crossnode-$RATE.txt

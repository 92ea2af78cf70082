#!/bin/bash
# mode → prints rss before, held, held-after-collect
mode=$1
taskset -c 0 target/release/examples/mounted_server $mode 127.0.0.1:0 sec > /tmp/ms.out 2>/tmp/ms.err &
SPID=$!
for i in $(seq 50); do grep -q READY /tmp/ms.out && break; sleep 0.1; done
PORT=$(sed -n 's/READY //p' /tmp/ms.out)
APPPORT=$PORT
rss() { grep VmRSS /proc/$SPID/status | awk '{print $2}'; }
B=$(rss)
taskset -c 1 target/release/shardcast-load connect --clients 10000 --connect-rate 1000 --hold-s 12 --heartbeat-s 0 --url ws://127.0.0.1:$PORT/ws --jwt-secret sec --no-progress > /tmp/ld.out 2>&1 &
LPID=$!
sleep 14
H=$(rss)
# the app port: in own mode the app listener is a different port; find it from ss
APP=$(ss -ltnp | grep "pid=$SPID," | awk '{print $4}' | sed 's/.*://' | while read p; do curl -s -m 2 http://127.0.0.1:$p/ | grep -q application && echo $p; done | head -1)
curl -s -m 5 http://127.0.0.1:$APP/collect >/dev/null
sleep 1
C=$(rss)
echo "$mode before=${B}k held=${H}k collected=${C}k per-conn-held=$(( (H-B)*1024/10000 )) per-conn-collected=$(( (C-B)*1024/10000 ))"
wait $LPID
kill -INT $SPID; wait $SPID 2>/dev/null

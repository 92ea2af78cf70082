#!/usr/bin/env python3
"""Summarize a history.sh run folder: the cost of history (fan-out, history off vs on,
single node and Redis), recovery under drops, and memory per room. Usage:
history_summary.py RUN_DIR"""
import glob
import json
import os
import statistics
import sys
from collections import defaultdict

run = sys.argv[1]
raw = defaultdict(list)  # (load, mode, history) -> [results]
for path in sorted(glob.glob(os.path.join(run, "raw", "*.json"))):
    load, mode, history, _ = os.path.basename(path)[:-5].split("-")
    with open(path) as f:
        raw[(load, mode, history)].append(json.load(f)["results"])


def med(key, get):
    values = []
    for r in raw.get(key, []):
        try:
            values.append(get(r))
        except (KeyError, TypeError, ZeroDivisionError):
            pass
    return statistics.median(values) if values else None


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


per_cpu = lambda r: r["deliveries_per_s"] / r["server"]["measured"]["cores"]
us_per_delivery = lambda r: 1e6 / per_cpu(r)
p50 = lambda r: r["latency"]["p50_us"] / 1000
p99 = lambda r: r["latency"]["p99_us"] / 1000
lost = lambda r: r["lost"]
dups = lambda r: r["duplicates"]

out = ["## Cost of history (medians)", "",
       "| load | Redis | history | deliveries per CPU-s | server CPU µs per delivery | p50 ms | p99 ms | lost | dup |",
       "|---|---|---|---|---|---|---|---|---|"]
names = {"room1k": "1 room × 1,000 members, 1,000 msg/s", "rooms100": "100 rooms × 50 members, 2,000 msg/s"}
for load in ("room1k", "rooms100"):
    for mode in ("single", "redis"):
        for history in ("off", "on"):
            key = (load, mode, history)
            if key not in raw:
                continue
            out.append(f"| {names[load]} | {'yes' if mode == 'redis' else 'no'} | {history} | "
                       f"{fmt(med(key, per_cpu))} | {fmt(med(key, us_per_delivery), 3)} | {fmt(med(key, p50))} | "
                       f"{fmt(med(key, p99))} | {fmt(med(key, lost), 0)} | {fmt(med(key, dups), 0)} |")
out += ["", "| load | Redis | CPU per delivery on/off | p99 on − off (ms) |", "|---|---|---|---|"]
for load in ("room1k", "rooms100"):
    for mode in ("single", "redis"):
        off, on = med((load, mode, "off"), us_per_delivery), med((load, mode, "on"), us_per_delivery)
        p_off, p_on = med((load, mode, "off"), p99), med((load, mode, "on"), p99)
        if off and on:
            out.append(f"| {names[load]} | {'yes' if mode == 'redis' else 'no'} | {fmt(on / off)}× | "
                       f"{fmt(p_on - p_off) if p_on is not None and p_off is not None else 'n/a'} |")

out += ["", "## Recovery under drops", "",
        "| Redis | rejoins | recovered | recovered ratio | replayed | gaps | duplicates | out of order | time to recover p50 / p99 / max ms |",
        "|---|---|---|---|---|---|---|---|---|"]
for mode in ("single", "redis"):
    for r in raw.get(("recovery", mode, "on"), []):
        t = r.get("time_to_recover", {})
        ms = lambda k: fmt(t.get(k, 0) / 1000) if t.get(k) is not None else "n/a"
        out.append(f"| {'yes' if mode == 'redis' else 'no'} | {r.get('rejoins')} | {r.get('recovered')} | "
                   f"{fmt(r.get('recovered_ratio'), 4)} | {r.get('messages_replayed')} | {r.get('gaps')} | "
                   f"{r.get('duplicates')} | {r.get('out_of_order')} | {ms('p50_us')} / {ms('p99_us')} / {ms('max_us')} |")

memory = os.path.join(run, "raw", "memory.jsonl")
if os.path.exists(memory):
    out += ["", "## Memory of history (single node, mimalloc, RSS added)", "",
            "| rooms | messages per room | data bytes | frame bytes | RSS added | per room | per kept message |",
            "|---|---|---|---|---|---|---|"]
    with open(memory) as f:
        for line in f:
            m = json.loads(line)
            out.append(f"| {m['rooms']:,} | {m['size']:,} | {m['data_bytes']} | {m['frame_bytes']} | "
                       f"{m['rss_added_bytes'] / 1048576:.1f} MiB | {fmt(m['bytes_per_room'] / 1024)} KiB | "
                       f"{fmt(m['bytes_per_message'], 0)} B |")
print("\n".join(out))

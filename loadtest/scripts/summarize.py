#!/usr/bin/env python3
"""Summarize a compare.sh run folder: medians per figure, ratio tables (and, for the
`deflate` scenario, wire bytes per delivery with and without permessage-deflate), and a
latency-versus-load plot (latency.png). Usage: summarize.py RUN_DIR"""
import glob
import json
import os
import statistics
import sys
from collections import defaultdict

run = sys.argv[1]
raw = defaultdict(list)  # (label, server) -> [results]
for path in sorted(glob.glob(os.path.join(run, "raw", "*.json"))):
    label, server, _ = os.path.basename(path)[:-5].rsplit("-", 2)
    with open(path) as f:
        doc = json.load(f)
    results = doc["results"]
    # The report's wire section (bytes per delivery, compression agreed) and the load
    # generator's verdict travel with the results.
    results["_wire"] = doc.get("wire") or {}
    results["_saturated"] = doc.get("client", {}).get("saturated", False)
    raw[(label, server)].append(results)


def med(label, server, get):
    values = []
    for r in raw.get((label, server), []):
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


def ratio(a, b):
    return fmt(a / b) + "×" if a and b else "n/a"


cores = lambda r: r["server"]["measured"]["cores"]
rate = lambda r: r["deliveries_per_s"]
per_cpu = lambda r: r["deliveries_per_s"] / r["server"]["measured"]["cores"]
p50 = lambda r: r["latency"]["p50_us"] / 1000
p99 = lambda r: r["latency"]["p99_us"] / 1000
lost = lambda r: r["lost"]
dups = lambda r: r["duplicates"]

out = []
counts = sorted({len(v) for v in raw.values()})
runs = " or ".join(str(c) for c in counts) or "0"
out.append(f"# Comparison run `{os.path.basename(run)}` (median of {runs} run(s) per cell)\n")
machine = os.path.join(run, "machine.txt")
if os.path.exists(machine):
    out.append("```\n" + open(machine).read().strip() + "\n```\n")

fan = [("fanout1k", "1 room × 1,000, 1,000 pub/s"), ("fanout2k", "1 room × 1,000, 2,000 pub/s"),
       ("ceiling", "1 room × 1,000, 5,000 pub/s (saturation)"), ("many", "100 rooms × 5,000 conns, 2,000 pub/s"),
       ("stalled0", "1 room × 1,000, 1,000 pub/s"), ("stalled1", "same + 1 stalled reader")]
out.append("## Fan-out\n")
out.append("| load | server | deliveries/s | server cores | deliveries per CPU-s | p50 ms | p99 ms | lost | dup |")
out.append("|---|---|---|---|---|---|---|---|---|")
NAMES = {"ref": "Ignis (Bun)", "refz": "Ignis (Bun), perMessageDeflate", "base": "shardcast (baseline)",
         "sc": "shardcast", "scz": "shardcast --compression"}
for label, what in fan:
    for server in ("ref", "base", "sc"):
        if (label, server) not in raw:
            continue
        out.append(f"| {what} | {NAMES[server]} | {fmt(med(label, server, rate))} | "
                   f"{fmt(med(label, server, cores), 3)} | {fmt(med(label, server, per_cpu))} | {fmt(med(label, server, p50))} | "
                   f"{fmt(med(label, server, p99))} | {fmt(med(label, server, lost), 0)} | {fmt(med(label, server, dups), 0)} |")
out.append("")

out.append("## Targets\n")
out.append("| target | reference | shardcast | ratio | goal |")
out.append("|---|---|---|---|---|")
for label, name in (("fanout1k", "fan-out CPU at 1 M/s (cores)"), ("fanout2k", "fan-out CPU at 2 M/s (cores)")):
    r, s = med(label, "ref", cores), med(label, "sc", cores)
    out.append(f"| {name} | {fmt(r, 3)} | {fmt(s, 3)} | {ratio(s, r)} | ≤ 0.5× |")
    r, s = med(label, "ref", p99), med(label, "sc", p99)
    out.append(f"| p99 at {label} (ms) | {fmt(r)} | {fmt(s)} | {ratio(s, r)} | ≤ 1× |")
r, s = med("ceiling", "ref", per_cpu), med("ceiling", "sc", per_cpu)
out.append(f"| ceiling: deliveries per CPU-s | {fmt(r)} | {fmt(s)} | {ratio(s, r)} | ≥ 1.5× |")
r, s = med("many", "ref", per_cpu), med("many", "sc", per_cpu)
out.append(f"| many rooms: deliveries per CPU-s | {fmt(r)} | {fmt(s)} | {ratio(s, r)} | ≥ 1.3× |")
r, s = med("many", "ref", p99), med("many", "sc", p99)
out.append(f"| many rooms: p99 (ms) | {fmt(r)} | {fmt(s)} | {ratio(s, r)} | ≤ 1× |")
conn_rss = lambda r: r["server"]["rss_per_conn_bytes"] / 1024
conn_cpu = lambda r: r["server"]["cpu_per_conn_ms"]
r, s = med("connect", "ref", conn_rss), med("connect", "sc", conn_rss)
out.append(f"| RSS per idle authenticated connection (KiB) | {fmt(r)} | {fmt(s)} | {ratio(s, r)} | ≤ 2.5 KiB |")
r, s = med("connect", "ref", conn_cpu), med("connect", "sc", conn_cpu)
out.append(f"| connect + JWT auth: server CPU per connection (ms) | {fmt(r, 3)} | {fmt(s, 3)} | {ratio(s, r)} | ≤ 0.33× |")
one, two = med("shards1", "sc", per_cpu), med("shards2", "sc", per_cpu)
out.append(f"| 2 shards vs 1: deliveries per CPU-s | (1 shard) {fmt(one)} | (2 shards) {fmt(two)} | {ratio(two, one)} | ≥ 0.9× |")
for server in ("ref", "sc"):
    a, b = med("stalled0", server, p99), med("stalled1", server, p99)
    if a and b:
        out.append(f"| stalled reader: others' p99 change ({'reference' if server == 'ref' else 'shardcast'}) | {fmt(a)} ms | {fmt(b)} ms | {fmt((b - a) / a * 100, 1)} % | < 10 % |")
out.append("")

deflate = [("deflate1k", "1 room × 1,000"), ("deflatemany", "100 rooms × 50"),
           ("deflatehigh1k", "1 room × 1,000, 200 msg/s"),
           ("deflatehighmany", "100 rooms × 50, 4,000 msg/s")]
if any(label in dict(deflate) for label, _ in raw):
    wire = lambda r: r["_wire"]["wire_bytes_per_delivery"]
    inflated = lambda r: r["_wire"]["payload_bytes_per_delivery"]
    cpu_us = lambda r: r["server"]["cpu_s_per_million_deliveries"]
    agreed = lambda r: r["_wire"]["compression_agreed"] / r["_wire"]["connections"]
    out.append("## Compression (~1 KB JSON, every client offers permessage-deflate)\n")
    out.append("| load | server | agreed | wire B/delivery | inflated B/delivery | ratio | deliveries/s | "
               "server CPU µs/delivery | p50 ms | p99 ms | lost | runs saturated |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, what in deflate:
        for server in ("ref", "refz", "base", "sc", "scz"):
            if (label, server) not in raw:
                continue
            w, i, a = med(label, server, wire), med(label, server, inflated), med(label, server, agreed)
            sat = sum(1 for r in raw[(label, server)] if r["_saturated"])
            out.append(f"| {what} | {NAMES[server]} | {fmt(None if a is None else a * 100, 0)} % | "
                       f"{fmt(w, 1)} | {fmt(i, 1)} | {ratio(i, w)} | {fmt(med(label, server, rate))} | "
                       f"{fmt(med(label, server, cpu_us))} | {fmt(med(label, server, p50))} | {fmt(med(label, server, p99))} | "
                       f"{fmt(med(label, server, lost), 0)} | {sat} of {len(raw[(label, server)])} |")
    out.append("")
    against = [(label, what) for label, what in deflate if (label, "refz") in raw]
    if against:
        out.append("| load | compression on: wire bytes, shardcast vs Ignis | server CPU per delivery, shardcast vs Ignis | p99, shardcast vs Ignis |")
        out.append("|---|---|---|---|")
        for label, what in against:
            cells = [ratio(med(label, "scz", get), med(label, "refz", get)) for get in (wire, cpu_us, p99)]
            out.append(f"| {what} | " + " | ".join(cells) + " |")
        out.append("")
    out.append("| load | what compression adds to server CPU per delivery: shardcast | Ignis |")
    out.append("|---|---|---|")
    for label, what in deflate:
        added = lambda off, on: (None if med(label, on, cpu_us) is None or med(label, off, cpu_us) is None
                                 else med(label, on, cpu_us) - med(label, off, cpu_us))
        if (label, "scz") not in raw:
            continue
        us = lambda v: "n/a" if v is None else f"{fmt(v, 2)} µs"
        out.append(f"| {what} | {us(added('sc', 'scz'))} | {us(added('ref', 'refz'))} |")
    out.append("")

if any(server == "base" for _, server in raw):
    out.append("## Before / after (shardcast vs the baseline binary, same run)\n")
    out.append("| load | cores base → now | deliveries per CPU-s base → now | ratio | p99 ms base → now | ratio |")
    out.append("|---|---|---|---|---|---|")
    for label, what in fan + [("shards1", "1 shard, 2,000 pub/s"), ("shards2", "2 shards, 2,000 pub/s")]:
        if (label, "base") not in raw:
            continue
        b, n = med(label, "base", per_cpu), med(label, "sc", per_cpu)
        b99, n99 = med(label, "base", p99), med(label, "sc", p99)
        out.append(f"| {what} | {fmt(med(label, 'base', cores), 3)} → {fmt(med(label, 'sc', cores), 3)} | "
                   f"{fmt(b)} → {fmt(n)} | {ratio(n, b)} | {fmt(b99)} → {fmt(n99)} | {ratio(n99, b99)} |")
    out.append("")
print("\n".join(out))

# Latency versus load plot.
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.stderr.write("matplotlib missing: no plot (pip install matplotlib)\n")
    sys.exit(0)
fig, ax = plt.subplots(figsize=(7, 4))
for server, name, color in (("ref", "Ignis (Bun)", "#cc5533"), ("sc", "shardcast", "#3366cc")):
    points = []
    for label in ("fanout1k", "fanout2k", "ceiling"):
        x, y50, y99 = med(label, server, rate), med(label, server, p50), med(label, server, p99)
        if x and y99:
            points.append((x / 1e6, y50, y99))
    if points:
        xs = [p[0] for p in points]
        ax.plot(xs, [p[2] for p in points], "o-", color=color, label=f"{name} p99")
        ax.plot(xs, [p[1] for p in points], "o--", color=color, alpha=0.6, label=f"{name} p50")
ax.set_xlabel("delivered (M messages/s), 1 room × 1,000 clients")
ax.set_ylabel("end-to-end latency (ms)")
ax.set_yscale("log")
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(run, "latency.png"), dpi=110)

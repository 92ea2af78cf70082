#!/usr/bin/env python3
"""Summarize a soak.sh run folder: the verdict, the figures behind it, the server's RSS
and descriptor series (summary.md), and an RSS/descriptors-versus-time plot (rss.png,
when matplotlib is available). Usage: soak_summary.py RUN_DIR"""
import json
import os
import sys

run = sys.argv[1]
with open(os.path.join(run, "raw", "soak.json")) as f:
    doc = json.load(f)
r = doc["results"]
v = r["verdict"]
series = r["series"]
window = r["window"]
MIB = 1024 * 1024


def mark(ok):
    return "ok" if ok else "**FAIL**"


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def rss_at(t):
    for p in series:
        if p["t_s"] >= t:
            return p["rss_bytes"] / MIB
    return None


out = [f"# Soak run `{os.path.basename(run)}`: {'PASS' if v['passed'] else 'FAIL'}\n"]
machine = os.path.join(run, "machine.txt")
if os.path.exists(machine):
    out.append("```\n" + open(machine).read().strip() + "\n```\n")

m, c, p, a = r["members"], r["churn"], r["publisher"], v["accounting"]
out.append("## Load\n")
out.append(f"- members: {m['established']:,} of {m['clients']:,} in {r['rooms']} rooms, "
           f"{m['failed']} failed; endings {m['endings']}")
out.append(f"- churn: {c['attempted']:,} of {c['planned']:,} cycles "
           f"({c['achieved_rate']:.1f}/s, asked {r['churn_rate']:g}/s), {c['succeeded']:,} authenticated, "
           f"{c['failed']} failed; {c['closes_clean']:,} clean closes; cycle p50 "
           f"{c['cycle_latency']['p50_us'] / 1000:.1f} ms")
out.append(f"- fan-out: {p['sent']:,} published via {p['via']} ({p['achieved_rate']:.0f}/s), "
           f"{a['received']:,} of {a['expected']:,} expected deliveries; latency p50 "
           f"{m['latency']['p50_us'] / 1000:.2f} ms, p99 {m['latency']['p99_us'] / 1000:.2f} ms")
out.append(f"- soak window: {window['start_s']:.1f} s → {window['end_s']:.1f} s of the run; "
           f"samples every {r['sample_s']:g} s ({len(series)} in all)\n")

rss, fds, err = v["rss"], v["fds"], v["errors"]
slope = rss["slope_bytes_per_min"]
out.append("## Verdict\n")
out.append("| check | result | figures |")
out.append("|---|---|---|")
out.append(f"| RSS flat after warm-up | {mark(rss['flat'])} | slope "
           f"{fmt(None if slope is None else slope / 1024)} KiB/min (tolerance ±"
           f"{rss['tolerance_bytes_per_min'] / 1024:.0f}), r² {fmt(rss['r_squared'], 2)}, "
           f"{rss['points']} samples after {rss['warmup_s']:.0f} s; "
           f"{fmt(rss['bytes_per_churn_cycle'], 2)} B per churn cycle |")
out.append(f"| no descriptor leak | {mark(fds['no_leak'])} | idle {fds['idle']['fds']}, soak start "
           f"{fds['steady_start']['fds']} ({fds['fds_per_held_connection']:.2f} per member), soak end "
           f"{fds['steady_end']['fds']}, after close {fds['after_close']['fds']}; excess "
           f"{fds['excess_after_churn']:+d} / {fds['excess_after_close']:+d} (tolerance {fds['tolerance']}) |")
nonzero = {k: n for k, n in err["by_kind"].items() if n}
out.append(f"| no error | {mark(err['none'])} | {nonzero or 'none'} |")
out.append(f"| every message accounted for | {mark(a['complete'])} | {a['lost']} lost, "
           f"{a['duplicates']} duplicates, {a['unexpected']} unexpected |")
out.append("")
out.append(f"RSS: {fmt(rss_at(0))} MiB idle, {fmt(rss_at(window['start_s']))} MiB at soak start, "
           f"{fmt(rss_at(window['start_s'] + rss['warmup_s']))} MiB after warm-up, "
           f"{fmt(rss_at(window['end_s']))} MiB at soak end.\n")
if doc.get("warnings"):
    out.append("Warnings:\n")
    out.extend(f"- {w}" for w in doc["warnings"])
    out.append("")

out.append("## Series (every sample is in `raw/soak.json`, `results.series`)\n")
out.append("| t s | stage | RSS MiB | fds | held | churn open | published | deliveries |")
out.append("|---|---|---|---|---|---|---|---|")
step = max(1, len(series) // 30)
shown = series[::step] + ([series[-1]] if (len(series) - 1) % step else [])
for q in shown:
    out.append(f"| {q['t_s']:.0f} | {q['stage']} | {q['rss_bytes'] / MIB:.1f} | {q['fds']:,} | "
               f"{q['held']:,} | {q['churn_open']} | {q['published']:,} | {q['deliveries']:,} |")
print("\n".join(out))

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(0)

t = [q["t_s"] for q in series]
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.plot(t, [q["rss_bytes"] / MIB for q in series], "o-", ms=3, color="tab:blue", label="server RSS")
ax.axvspan(window["start_s"], window["end_s"], color="0.93", label="soak (churn + fan-out)")
ax.axvline(window["start_s"] + rss["warmup_s"], color="0.5", ls=":", label="end of warm-up")
if slope is not None and rss["fit_from_s"] is not None:
    fit = [q for q in series if rss["fit_from_s"] <= q["t_s"] <= rss["fit_to_s"]]
    mean_t = sum(q["t_s"] for q in fit) / len(fit)
    mean_y = sum(q["rss_bytes"] for q in fit) / len(fit)
    xs = [rss["fit_from_s"], rss["fit_to_s"]]
    ys = [(mean_y + slope / 60 * (x - mean_t)) / MIB for x in xs]
    ax.plot(xs, ys, "-", color="tab:red", label=f"fit {slope / 1024:+.1f} KiB/min")
ax.set_xlabel("seconds since the run started")
ax.set_ylabel("RSS (MiB)")
ax.set_ylim(bottom=0)
ax2 = ax.twinx()
ax2.plot(t, [q["fds"] for q in series], "-", color="tab:green", alpha=0.6, label="server descriptors")
ax2.set_ylabel("open descriptors")
ax2.set_ylim(bottom=0)
lines = ax.get_legend_handles_labels()
lines2 = ax2.get_legend_handles_labels()
ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower right", fontsize=8)
ax.set_title(f"soak {os.path.basename(run)}: {'PASS' if v['passed'] else 'FAIL'}")
fig.tight_layout()
fig.savefig(os.path.join(run, "rss.png"), dpi=110)

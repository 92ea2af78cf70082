"""The connect table of a run folder whose raw/connect<CLIENTS>-<MODE>-<RUN>.json files the
`connect` scenario wrote (loadtest/tls.sh, loadtest/mount.sh): per client count and mode,
medians (range) of RSS per idle connection and server CPU per connect, connect latency,
and the marginal RSS per added connection between the smallest and largest count.

    python3 loadtest/scripts/connect_summary.py RUN_FOLDER
"""
import json
import pathlib
import statistics
import sys


def rows_of(out):
    """(clients, mode) -> [(rss/conn, cpu µs/conn, p50 µs, p99 µs, established), ...]"""
    rows = {}
    for f in sorted((out / "raw").glob("connect*.json")):
        clients, mode, _run = f.stem.removeprefix("connect").split("-")
        r = json.loads(f.read_text())["results"]
        s = r["server"]
        rows.setdefault((int(clients), mode), []).append(
            (s["rss_per_conn_bytes"], s["cpu_per_conn_ms"] * 1000, r["connect_latency"]["p50_us"],
             r["connect_latency"]["p99_us"], r["established"]))
    return rows


def print_table(rows):
    print("| clients | mode | runs | RSS per idle conn (B) | server CPU per connect (µs) | connect p50 / p99 (µs) | established |")
    print("|---|---|---|---|---|---|---|")
    for (clients, mode), v in sorted(rows.items()):
        med = lambda i: statistics.median(x[i] for x in v)
        spread = lambda i: f"{min(x[i] for x in v):.0f}–{max(x[i] for x in v):.0f}"
        print(f"| {clients} | {mode} | {len(v)} | {med(0):.0f} ({spread(0)}) | {med(1):.0f} ({spread(1)}) "
              f"| {med(2):.0f} / {med(3):.0f} | {min(x[4] for x in v)} |")


def print_marginal(rows):
    """What the RSS grows by per added connection, free of fixed costs (allocator pages,
    runtime threads) that a per-connection average spreads over the count."""
    modes = sorted({m for _, m in rows if len({c for c, n in rows if n == m}) > 1})
    if not modes:
        return
    print()
    print("| mode | marginal RSS per added connection (B), medians |")
    print("|---|---|")
    for mode in modes:
        counts = sorted(c for c, m in rows if m == mode)
        lo, hi = counts[0], counts[-1]
        held = lambda c: statistics.median(x[0] for x in rows[(c, mode)]) * c
        print(f"| {mode} | {(held(hi) - held(lo)) / (hi - lo):.0f} ({lo:,} → {hi:,}) |")


if __name__ == "__main__":
    rows = rows_of(pathlib.Path(sys.argv[1]))
    print_table(rows)
    print_marginal(rows)

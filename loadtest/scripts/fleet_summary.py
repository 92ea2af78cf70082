#!/usr/bin/env python3
"""Summarize a fleet.sh run folder: pattern vs interest Redis subscriptions, per
placement, medians over the runs. Writes RUN_DIR/summary.md and RUN_DIR/summary.json.
Usage: fleet_summary.py RUN_DIR

Two windows per run:
- measured (publish start -> drain end), read by shardcast-load itself through
  --node-pid and --node-metric: the main figures;
- whole run (the script's /metrics and /proc/PID/stat before and after shardcast-load,
  so connecting, joining and warm-up included): node CPU, Redis received, deliveries.
Stdlib only."""
import glob
import json
import os
import statistics
import sys
from collections import defaultdict

RECEIVED = "shardcast_redis_received_total"
DELIVERIES = "shardcast_deliveries_total"
SUBSCRIPTIONS = "shardcast_redis_subscriptions"
CHANGES = "shardcast_redis_subscription_changes_total"
COMMANDS = "shardcast_redis_subscription_commands_total"
UNWANTED = "shardcast_redis_received_unwanted_total"


def metric_sum(text, name):
    """Sum of every sample of `name` in Prometheus text, None when absent."""
    total = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=-1)
        if end < 0 or line[:end] != name:
            continue
        rest = line[end:]
        if rest.startswith("{"):
            close = rest.rfind("}")
            if close < 0:
                continue
            rest = rest[close + 1:]
        try:
            value = float(rest.split()[0])
        except (IndexError, ValueError):
            continue
        total = value if total is None else total + value
    return total


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def cpu_ticks(run_dir, name):
    """{(edge, who): ticks} from raw/NAME.cpu (`edge who pid port ticks` lines)."""
    ticks = {}
    for line in (read(os.path.join(run_dir, "raw", name + ".cpu")) or "").splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[4] != "NA":
            ticks[(parts[0], parts[1])] = int(parts[4])
    return ticks


def whole_run(run_dir, name, nodes, clk_tck):
    """Figures over the whole run from the script's snapshots."""
    def prom(k, edge):
        return read(os.path.join(run_dir, "raw", f"{name}.node{k}.{edge}.prom")) or ""

    def delta(metric):
        per_node = []
        for k in range(nodes):
            a, b = metric_sum(prom(k, "before"), metric), metric_sum(prom(k, "after"), metric)
            per_node.append(b - a if a is not None and b is not None else None)
        return per_node

    ticks = cpu_ticks(run_dir, name)

    def cpu_s(who):
        a, b = ticks.get(("before", who)), ticks.get(("after", who))
        return (b - a) / clk_tck if a is not None and b is not None else None

    node_cpu = [cpu_s(f"node{k}") for k in range(nodes)]
    fig = {
        "redis_received_per_node": delta(RECEIVED),
        "deliveries_per_node": delta(DELIVERIES),
        "subscription_changes_per_node": delta(CHANGES),
        "subscription_commands_per_node": delta(COMMANDS),
        "unwanted_per_node": delta(UNWANTED),
        "node_cpu_s_per_node": node_cpu,
        "redis_cpu_s": cpu_s("redis"),
    }
    fig["redis_received_total"] = total(fig["redis_received_per_node"])
    fig["deliveries"] = total(fig["deliveries_per_node"])
    fig["subscription_changes"] = total(fig["subscription_changes_per_node"])
    fig["subscription_commands"] = total(fig["subscription_commands_per_node"])
    fig["unwanted"] = total(fig["unwanted_per_node"])
    fig["node_cpu_s"] = total(node_cpu)
    fig["cpu_us_per_delivery"] = per_delivery(fig["node_cpu_s"], fig["deliveries"])
    return fig


def total(values):
    """Sum, or None when any value is missing."""
    return None if not values or any(v is None for v in values) else sum(values)


def per_delivery(cpu_s, deliveries):
    return cpu_s / deliveries * 1e6 if cpu_s is not None and deliveries else None


def measured(doc):
    """Figures over the measured window from shardcast-load's JSON."""
    r = doc["results"]
    nodes = r.get("nodes", [])

    def per_node(metric, field="delta"):
        return [(n.get("metrics", {}).get(metric) or {}).get(field) for n in nodes]

    node_cpu = [(n.get("measured") or {}).get("cpu_s") for n in nodes]
    fig = {
        "clients_per_node": [n.get("clients") for n in nodes],
        "established_per_node": [n.get("established") for n in nodes],
        "redis_received_per_node": per_node(RECEIVED),
        "deliveries_per_node": per_node(DELIVERIES),
        "subscriptions_per_node": per_node(SUBSCRIPTIONS, "start"),
        "subscription_changes_per_node": per_node(CHANGES),
        "unwanted_per_node": per_node(UNWANTED),
        "node_cpu_s_per_node": node_cpu,
        "client_received": r.get("received"),
        "expected": r.get("expected"),
        "lost": r.get("lost"),
        "loss_ratio": r.get("loss_ratio"),
        "duplicates": r.get("duplicates"),
        "failed": r.get("failed"),
        "not_warmed": r.get("not_warmed"),
        "p50_ms": r["latency"]["p50_us"] / 1000 if r["latency"]["count"] else None,
        "p99_ms": r["latency"]["p99_us"] / 1000 if r["latency"]["count"] else None,
        "p999_ms": r["latency"]["p999_us"] / 1000 if r["latency"]["count"] else None,
        "published": r.get("publisher", {}).get("acked"),
        "achieved_rate": r.get("publisher", {}).get("achieved_rate"),
        "saturated": bool(doc.get("client", {}).get("saturated")),
        "warnings": doc.get("warnings", []),
    }
    for key in ("redis_received", "subscriptions", "subscription_changes", "unwanted"):
        fig[key + "_total"] = total(fig[key + "_per_node"])
    fig["deliveries"] = total(fig["deliveries_per_node"])
    fig["node_cpu_s"] = total(node_cpu)
    # Server deliveries when the nodes export them, else what the clients received.
    fig["cpu_us_per_delivery"] = per_delivery(fig["node_cpu_s"], fig["deliveries"] or fig["client_received"])
    return fig


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def median_figures(runs):
    """Per key: the median over runs (lists: per element)."""
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        if isinstance(values[0], list):
            if any(isinstance(x, str) for v in values for x in v):
                continue
            width = max(len(v) for v in values)
            out[key] = [median([v[i] if i < len(v) else None for v in values]) for i in range(width)]
        elif isinstance(values[0], bool):
            out[key] = sum(values)
        elif isinstance(values[0], (int, float)) or values[0] is None:
            out[key] = median(values)
    return out


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if abs(v) >= 1000 or digits == 0:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def fmt_list(values, digits=0):
    return " / ".join(fmt(v, digits) for v in values) if values else "n/a"


def ratio(a, b):
    return a / b if a is not None and b else None


def load_runs(run_dir, clk_tck):
    """{(placement, mode): [figures]} and the list of failed runs."""
    groups, failed = defaultdict(list), []
    for path in sorted(glob.glob(os.path.join(run_dir, "raw", "*.failed"))):
        failed.append(os.path.basename(path)[: -len(".failed")])
    for path in sorted(glob.glob(os.path.join(run_dir, "raw", "*.json"))):
        name = os.path.basename(path)[:-5]
        placement, mode, run = name.rsplit("-", 2)
        try:
            with open(path) as f:
                doc = json.load(f)
            fig = {"run": int(run), "measured": measured(doc)}
        except (OSError, ValueError, KeyError) as e:
            failed.append(f"{name} ({e})")
            continue
        fig["whole"] = whole_run(run_dir, name, len(fig["measured"]["clients_per_node"]), clk_tck)
        groups[(placement, mode)].append(fig)
    return groups, failed


def machine_facts(run_dir):
    lines = (read(os.path.join(run_dir, "machine.txt")) or "").splitlines()
    facts = dict(line.split(": ", 1) for line in lines if ": " in line)
    return lines, facts


def cell_table(groups, order):
    rows = [
        "| placement | mode | runs | Redis received per node | Redis received, all nodes | deliveries | node CPU µs per delivery | p50 ms | p99 ms | lost | subscriptions at start | subscription changes | unwanted |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for placement, mode in order:
        m = groups[(placement, mode)]["median"]["measured"]
        w = groups[(placement, mode)]["median"]["whole"]
        rows.append(
            f"| {placement} | {mode} | {groups[(placement, mode)]['runs']} | {fmt_list(m['redis_received_per_node'])} | "
            f"{fmt(m['redis_received_total'], 0)} | {fmt(m['deliveries'], 0)} | {fmt(m['cpu_us_per_delivery'], 3)} | "
            f"{fmt(m['p50_ms'])} | {fmt(m['p99_ms'])} | {fmt(m['lost'], 0)} | {fmt(m['subscriptions_total'], 0)} | "
            f"{fmt(w['subscription_changes'], 0)} | {fmt(m['unwanted_total'], 0)} |"
        )
    return rows


def whole_table(groups, order):
    rows = [
        "| placement | mode | Redis received, all nodes | deliveries | node CPU s (per node) | node CPU µs per delivery | Redis CPU s | subscription changes / commands | unwanted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for placement, mode in order:
        w = groups[(placement, mode)]["median"]["whole"]
        rows.append(
            f"| {placement} | {mode} | {fmt(w['redis_received_total'], 0)} | {fmt(w['deliveries'], 0)} | "
            f"{fmt(w['node_cpu_s'])} ({fmt_list(w['node_cpu_s_per_node'], 2)}) | {fmt(w['cpu_us_per_delivery'], 3)} | "
            f"{fmt(w['redis_cpu_s'])} | {fmt(w['subscription_changes'], 0)} / {fmt(w['subscription_commands'], 0)} | "
            f"{fmt(w['unwanted'], 0)} |"
        )
    return rows


RATIO_KEYS = [
    ("Redis received, all nodes", "measured", "redis_received_total"),
    ("node CPU µs per delivery", "measured", "cpu_us_per_delivery"),
    ("node CPU µs per delivery, whole run", "whole", "cpu_us_per_delivery"),
    ("p50 latency", "measured", "p50_ms"),
    ("p99 latency", "measured", "p99_ms"),
]


def ratios(groups, placements):
    out = {}
    for placement in placements:
        a, b = groups.get((placement, "interest")), groups.get((placement, "patterns"))
        if not a or not b:
            continue
        out[placement] = {
            ratio_key(window, key): ratio(a["median"][window][key], b["median"][window][key])
            for _, window, key in RATIO_KEYS
        }
    return out


def ratio_key(window, key):
    """The JSON name of a ratio: the figure's key, `whole_` first for the whole run."""
    return key if window == "measured" else f"{window}_{key}"


def ratio_table(rat):
    if not rat:
        return ["No interest/patterns pair to compare (a server without --redis-subscribe runs one mode)."]
    rows = ["| placement | " + " | ".join(label for label, _, _ in RATIO_KEYS) + " |",
            "|---|" + "---|" * len(RATIO_KEYS)]
    for placement, r in rat.items():
        values = [r[ratio_key(window, key)] for _, window, key in RATIO_KEYS]
        rows.append(f"| {placement} | " + " | ".join(fmt(v, 3) + "×" if v else "n/a" for v in values) + " |")
    return rows


def notes(groups, order, failed, facts):
    out = []
    if "absent" in facts.get("mode flag", ""):
        out.append("- **The server had no `--redis-subscribe`**: one mode only, today's pattern "
                   "subscriptions, labelled `patterns`.")
    for placement, mode in order:
        cell = groups[(placement, mode)]
        m = cell["median"]["measured"]
        if m["saturated"]:
            out.append(f"- {placement}/{mode}: the load generator saturated in {m['saturated']} run(s).")
        if m["failed"] or m["not_warmed"]:
            out.append(f"- {placement}/{mode}: median {fmt(m['failed'], 0)} clients failed, "
                       f"{fmt(m['not_warmed'], 0)} not warmed.")
        if m["subscriptions_total"] is None:
            out.append(f"- {placement}/{mode}: the nodes export no `{SUBSCRIPTIONS}` (columns n/a).")
        warnings = sorted({w for run in cell["figures"] for w in run["measured"]["warnings"]})
        out += [f"- {placement}/{mode}: warning: {w}" for w in warnings]
    out += [f"- failed run: {name}" for name in failed]
    return out


def main():
    run_dir = sys.argv[1]
    lines, facts = machine_facts(run_dir)
    clk_tck = int(facts.get("clock ticks per second", "100"))
    loaded, failed = load_runs(run_dir, clk_tck)
    placements = [p for p in ("disjoint", "mixed") if any(k[0] == p for k in loaded)]
    placements += sorted({k[0] for k in loaded} - set(placements))
    modes = ["patterns", "interest"] + sorted({k[1] for k in loaded} - {"patterns", "interest"})
    order = [(p, m) for p in placements for m in modes if (p, m) in loaded]
    groups = {}
    for key in order:
        figures = sorted(loaded[key], key=lambda f: f["run"])
        groups[key] = {
            "runs": len(figures),
            "figures": figures,
            "median": {w: median_figures([f[w] for f in figures]) for w in ("measured", "whole")},
        }
    rat = ratios(groups, placements)
    clients_per_node = {}
    for p, m in order:
        clients_per_node.setdefault(p, groups[(p, m)]["median"]["measured"]["clients_per_node"])
    md = [f"# Fleet run `{os.path.basename(os.path.abspath(run_dir))}`: Redis pattern vs interest subscriptions", ""]
    md += ["Medians over the runs of each cell. Measured window: publish start → drain end "
           "(shardcast-load reads every node's CPU and /metrics at both edges); every delivery "
           "crosses Redis, so the latency is the cross-node latency.", ""]
    md += ["```"] + lines + ["```", ""]
    if clients_per_node:
        md += ["Clients per node (placed): " + "; ".join(f"{p} {fmt_list(c)}" for p, c in clients_per_node.items()), ""]
    md += ["## Measured window", ""] + (cell_table(groups, order) if order else ["No run produced results."])
    md += ["", "Subscriptions: the nodes' `shardcast_redis_subscriptions` at publish start, summed; "
           "subscription changes: over the whole run (connect and join included); unwanted: "
           "`shardcast_redis_received_unwanted_total` in the window. n/a: not exported.", ""]
    md += ["## Interest / patterns", ""] + ratio_table(rat)
    md += ["", "## Whole run (script snapshots before and after shardcast-load: connect, join, warm-up included)", ""]
    md += whole_table(groups, order) if order else []
    md += ["", "## Notes", ""] + (notes(groups, order, failed, facts) or ["- none"])
    md += ["", "Commands: `commands.txt`; raw JSON, metrics and CPU ticks: `raw/`; node logs: `logs/`."]
    with open(os.path.join(run_dir, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    doc = {
        "machine": facts,
        "commands": "commands.txt",
        "cells": [{"placement": p, "mode": m, **groups[(p, m)]} for p, m in order],
        "interest_over_patterns": rat,
        "failed_runs": failed,
    }
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()

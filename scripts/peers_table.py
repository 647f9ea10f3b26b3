#!/usr/bin/env python3
"""Summarise the results scripts/peers.sh keeps (RESULTS/METHOD-sSEED with
knn.json, linear.json, spectrum.json and finetune.json, or failed): one
markdown row per method with the mean and the spread (min-max over seeds) of
kNN k=20 and k=200, linear top-1, 10% fine-tune top-1 and the effective ranks
of the backbone features and the projector outputs (each over its
dimension: the projectors' outputs differ, 64 to 512), plus the number of
seeds done. With --orders it prints, under the table, each score's order of
the methods by their mean: ">" where every seed of every method before it
beats every seed of every method after it (the worst above the best), "~"
where not, so the ">" split the methods into groups the seeds resolve and
the order inside a group is not resolved. The seeds may have run on
different CPUs, so the training logs' throughput is not compared; with
BENCH files (the JSON lines of `corinfomax bench step --method M --recipe
fashionmnist --json`, one or more rounds, all from one CPU) two more
columns give each method's step time (the median over every timed step of
every round) and peak RSS (the largest).

    /usr/bin/python3 scripts/peers_table.py [--orders] [RESULTS [BENCH...]]   (default docs/runs/peers)
"""
import json
import os
import re
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def rank(values, dims):
    """An effective-rank cell: the rank's cell over the dimension."""
    if not values:
        return "-"
    return "%s / %s" % (cell(values), "/".join(str(d) for d in sorted(set(dims))))


def cell(values):
    if not values:
        return "-"
    m = statistics.mean(values)
    if len(values) == 1:
        return "%.2f" % m
    return "%.2f (%.2f-%.2f)" % (m, min(values), max(values))


def bench(paths):
    """Per method: (median step seconds, peak RSS MiB) over the bench files."""
    steps, rss = {}, {}
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    m = d["method"]
                    steps.setdefault(m, []).extend(d["step_seconds"])
                    rss[m] = max(rss.get(m, 0), d["peak_rss_bytes"])
                except (ValueError, KeyError, TypeError) as e:
                    sys.exit("%s: line %d: want a bench step --json object with method, step_seconds and peak_rss_bytes: %s" % (path, n, e))
    return {m: (statistics.median(steps[m]), rss[m] / 2**20) for m in steps}


def orders(rows, names):
    """One line per score: the methods by mean, ">" where the seeds resolve
    the cut (the worst seed of every method before it above the best seed of
    every method after it), "~" where not."""
    out = []
    for key, label in (("k20", "kNN k=20"), ("k200", "kNN k=200"), ("lin", "linear top-1"), ("ft10", "10% fine-tune top-1")):
        ms = sorted((m for m in names if rows[m][key]), key=lambda m: -statistics.mean(rows[m][key]))
        line = ""
        for i, m in enumerate(ms):
            if i:
                above = min(min(rows[a][key]) for a in ms[:i])
                below = max(max(rows[b][key]) for b in ms[i:])
                line += " > " if above > below else " ~ "
            line += "%s %.2f" % (m, statistics.mean(rows[m][key]))
        out.append("- %s: %s" % (label, line))
    return out


def main():
    args = sys.argv[1:]
    want_orders = "--orders" in args
    args = [a for a in args if a != "--orders"]
    runs = args[0] if args else "docs/runs/peers"
    timing = bench(args[1:])
    order = ["corinfomax", "barlowtwins", "vicreg", "simclr", "wmse", "byol", "simsiam", "mocov2"]
    rows = {}
    for name in sorted(os.listdir(runs)):
        m = re.fullmatch(r"(.+)-s(\d+)", name)
        if not m:
            continue
        d = os.path.join(runs, name)
        r = rows.setdefault(m.group(1), {k: [] for k in ("k20", "k200", "lin", "ft10", "rb", "rp", "db", "dp", "seeds", "failed")})
        if os.path.exists(os.path.join(d, "failed")):
            r["failed"].append(m.group(2))
            continue
        knn, lin, sp = load(os.path.join(d, "knn.json")), load(os.path.join(d, "linear.json")), load(os.path.join(d, "spectrum.json"))
        ft = load(os.path.join(d, "finetune.json"))
        if knn:
            r["k20"].append(knn["knn_k20"])
            r["k200"].append(knn["knn_k200"])
        if lin:
            r["lin"].append(lin["linear_top1"])
        if ft:
            r["ft10"].append(ft["top1"])
        if sp:
            for s in sp["spectra"]:
                b = s["layer"] == "backbone"
                r["rb" if b else "rp"].append(s["effective_rank"])
                r["db" if b else "dp"].append(s["dim"])
        if knn and lin and ft and sp:
            r["seeds"].append(m.group(2))
    head = "| method | seeds | kNN k=20 | kNN k=200 | linear top-1 | 10% fine-tune top-1 | effective rank, backbone | effective rank, projector |"
    if timing:
        head += " step, s | peak RSS, MiB |"
    print(head)
    print("|---" * head.count(" | ") + "|---|")
    methods = sorted(rows, key=lambda x: order.index(x) if x in order else 99)
    for method in methods:
        r = rows[method]
        seeds = str(len(r["seeds"]))
        if r["failed"]:
            seeds += " (failed: seed %s)" % ", ".join(r["failed"])
        row = "| %s | %s | %s | %s | %s | %s | %s | %s |" % (method, seeds, cell(r["k20"]), cell(r["k200"]),
              cell(r["lin"]), cell(r["ft10"]), rank(r["rb"], r["db"]), rank(r["rp"], r["dp"]))
        if timing:
            row += " %.2f | %.0f |" % timing[method] if method in timing else " - | - |"
        print(row)
    if want_orders:
        print()
        for line in orders(rows, methods):
            print(line)


if __name__ == "__main__":
    main()

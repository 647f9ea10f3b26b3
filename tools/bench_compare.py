#!/usr/bin/python3
"""Runs `corinfomax bench step` and tools/pytorch/bench_step.py one after the
other on the same machine, several times, and prints a markdown table of the
medians and their ratio. Used for docs/benchmarks.md.

    /usr/bin/python3 tools/bench_compare.py --bin bin/corinfomax --repeats 5 \
        --config "supervised 16 128 2048-2048-64" --config "corinfomax 16 128 512-512-64"

Each --config is "METHOD WIDTH BATCH PROJECTOR" (ResNet-18, CIFAR stem,
32x32x3, 2 threads). Raw JSON lines go to --raw (default bench_raw.jsonl).
"""
import argparse
import json
import statistics
import subprocess
import sys


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="bin/corinfomax")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--config", action="append", required=True)
    p.add_argument("--raw", default="bench_raw.jsonl")
    a = p.parse_args()
    rows = []
    with open(a.raw, "a") as raw:
        for c in a.config:
            method, width, batch, proj = c.split()
            common = ["--arch", "resnet18", "--stem", "cifar", "--width", width, "--batch", batch,
                      "--size", str(a.size), "--channels", str(a.channels), "--method", method,
                      "--projector", proj, "--steps", str(a.steps), "--threads", str(a.threads), "--json"]
            ours, theirs = [], []
            for r in range(a.repeats):
                o = run([a.bin, "bench", "step"] + common)
                t = run(["/usr/bin/python3", "tools/pytorch/bench_step.py"] + common)
                for d in (o, t):
                    d["config"] = c
                    raw.write(json.dumps(d) + "\n")
                ours.append(o)
                theirs.append(t)
                print(f"{c} run {r+1}: ours {o['images_per_sec']:.1f} img/s, pytorch {t['images_per_sec']:.1f} img/s",
                      file=sys.stderr)
            oi = statistics.median(d["images_per_sec"] for d in ours)
            ti = statistics.median(d["images_per_sec"] for d in theirs)
            om = statistics.median(d["peak_rss_bytes"] for d in ours) / 2**20
            tm = statistics.median(d["peak_rss_bytes"] for d in theirs) / 2**20
            rows.append((method, width, batch, proj, oi, ti, oi / ti, om, tm))
    print("| method | width | batch | projector | corinfomax img/s | PyTorch img/s | ratio | corinfomax peak RSS MiB | PyTorch peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.2f}x | {r[7]:.0f} | {r[8]:.0f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Runs `corinfomax bench step` and tools/pytorch/bench_step.py one after the
other on the same machine, several times, and prints a markdown table of the
medians and their ratio. Used for docs/benchmarks.md.

    /usr/bin/python3 tools/bench_compare.py --bin bin/corinfomax --repeats 5 \
        --config "supervised 16 128 2048-2048-64" --config "corinfomax 16 128 512-512-64"

Each --config is "METHOD WIDTH BATCH PROJECTOR" (ResNet-18, CIFAR stem,
32x32x3, 2 threads). Each round runs, per precision, ours then PyTorch
(fp32, or bf16 under torch.autocast). Raw JSON lines go to --raw (default bench_raw.jsonl).
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
    p.add_argument("--precision", default="fp32",
                   help="comma-separated precisions (fp32,bf16): ours with --precision P, PyTorch in "
                        "float32 or under torch.autocast bfloat16")
    a = p.parse_args()
    rows = []
    with open(a.raw, "a") as raw:
        for c in a.config:
            method, width, batch, proj = c.split()
            common = ["--arch", "resnet18", "--stem", "cifar", "--width", width, "--batch", batch,
                      "--size", str(a.size), "--channels", str(a.channels), "--method", method,
                      "--projector", proj, "--steps", str(a.steps), "--threads", str(a.threads), "--json"]
            precs = a.precision.split(",")
            ours, theirs = {p: [] for p in precs}, {p: [] for p in precs}
            for r in range(a.repeats):
                line = []
                for prec in precs:
                    o = run([a.bin, "bench", "step", "--precision", prec] + common)
                    o["config"] = c
                    raw.write(json.dumps(o) + "\n")
                    ours[prec].append(o)
                    t = run(["/usr/bin/python3", "tools/pytorch/bench_step.py", "--precision", prec] + common)
                    t["config"] = c
                    raw.write(json.dumps(t) + "\n")
                    theirs[prec].append(t)
                    line.append(f"ours {prec} {o['images_per_sec']:.1f}, pytorch {prec} {t['images_per_sec']:.1f}")
                print(f"{c} run {r+1}: {'; '.join(line)} img/s", file=sys.stderr)
            for prec in precs:
                ti = statistics.median(d["images_per_sec"] for d in theirs[prec])
                tm = statistics.median(d["peak_rss_bytes"] for d in theirs[prec]) / 2**20
                oi = statistics.median(d["images_per_sec"] for d in ours[prec])
                om = statistics.median(d["peak_rss_bytes"] for d in ours[prec]) / 2**20
                rows.append((method, width, batch, proj, prec, oi, ti, oi / ti, om, tm))
    print("| method | width | batch | projector | precision | corinfomax img/s | PyTorch img/s | ratio | corinfomax peak RSS MiB | PyTorch peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.1f} | {r[6]:.1f} | {r[7]:.2f}x | {r[8]:.0f} | {r[9]:.0f} |")


if __name__ == "__main__":
    main()

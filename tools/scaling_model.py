#!/usr/bin/python3
"""Scaling model for data-parallel pretraining on N machines (docs/benchmarks.md).

From figures measured on one machine: the compute time of a step at the per-machine
batch (t_compute, seconds) and the gradient bytes all-reduced per step. A ring
all-reduce moves 2(N-1)/N x bytes through every machine's link and takes 2(N-1)
message latencies; the all-reduce is not overlapped with the backward pass, so

    step(N) = t_compute + 2(N-1)/N * bytes / bandwidth + 2(N-1) * latency

Weak scaling: every machine keeps its per-machine batch, the global batch grows with N
(scale the learning rate with it). Prints a markdown table.

    /usr/bin/python3 tools/scaling_model.py --t-compute 3.62 --bytes 66182912 --images 256
"""
import argparse


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--t-compute", type=float, required=True, help="seconds per step on one machine")
    p.add_argument("--bytes", type=float, required=True, help="gradient bytes all-reduced per step")
    p.add_argument("--images", type=int, required=True, help="images per machine per step (both views)")
    p.add_argument("--latency", type=float, default=50e-6, help="seconds per message (default 50 us)")
    p.add_argument("--machines", default="1,2,4,8,16,32,64")
    p.add_argument("--gbits", default="10,100", help="link speeds in Gbit/s")
    a = p.parse_args()
    speeds = [float(g) for g in a.gbits.split(",")]
    head = ["machines"]
    for g in speeds:
        head += [f"all-reduce ms @{g:g} Gbit/s", f"img/s @{g:g}", f"efficiency @{g:g}"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n in [int(m) for m in a.machines.split(",")]:
        row = [str(n)]
        for g in speeds:
            bw = g * 1e9 / 8
            t_ar = 0.0 if n == 1 else 2 * (n - 1) / n * a.bytes / bw + 2 * (n - 1) * a.latency
            step = a.t_compute + t_ar
            row += [f"{1e3 * t_ar:.1f}", f"{n * a.images / step:.0f}", f"{a.t_compute / step:.1%}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

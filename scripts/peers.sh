#!/usr/bin/env bash
# The eight methods, each on its own fashionmnist recipe (bin/corinfomax
# pretrain -h lists them: solo-learn's CIFAR settings with every width
# divided by 4), for EPOCHS epochs and each seed of SEEDS; then kNN
# (k = 20, 200), the linear probe, a 10% fine-tune and the spectra
# (effective rank of the backbone features and the projector outputs) of
# every run, the table of docs/results.md (mean and spread over seeds), and
# the seed-0 runs' spectra in one figure (RUNS_DIR/spectra.png, by
# tools/peersfig).
#
# Safe to interrupt and re-run: a run resumes from its checkpoint and every
# finished step is skipped; checkpoints every 50 steps, so a killed run loses little.
# Each finished run's small results (the JSON of pretrain, knn, linear,
# spectrum and finetune, its config and the CPU it ran on) are copied to
# RESULTS/METHOD-sSEED (default docs/runs/peers, committed), and a run found
# there is not trained again: the 24 runs can be spread over several
# machines or sessions, with RUNS_DIR (checkpoints, not committed) lost between them.
#   scripts/peers.sh [RUNS_DIR] [EPOCHS] [SEEDS]
set -euo pipefail
runs=${1:-runs/peers}
epochs=${2:-6}
seeds=${3:-0 1 2}
bin=${BIN:-bin/corinfomax}
results=${RESULTS:-docs/runs/peers}
methods=${METHODS:-corinfomax barlowtwins vicreg simclr wmse byol simsiam mocov2}
commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //')
cpu="$cpu (family $(grep -m1 '^cpu family' /proc/cpuinfo | sed 's/.*: //'), model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores)"
mkdir -p "$runs" "$results"
for seed in $seeds; do
  for m in $methods; do
    out="$runs/$m-s$seed"
    res="$results/$m-s$seed"
    [ -f "$res/finetune.json" ] || [ -f "$res/failed" ] && continue
    if [ ! -f "$out/failed" ]; then
      if [ ! -s "$out/pretrain.json" ]; then
        rc=0
        mkdir -p "$out"
        if [ -f "$out/checkpoint.safetensors" ]; then
          "$bin" pretrain --out "$out" --resume --checkpoint-every 50 --json > "$out/pretrain.json.tmp" || rc=$?
        else
          "$bin" pretrain --method "$m" --recipe fashionmnist --epochs "$epochs" --seed "$seed" --checkpoint-every 50 --out "$out" --json \
            > "$out/pretrain.json.tmp" || rc=$?
        fi
        if [ "$rc" != 0 ]; then
          # Diverged or failed: a result too; the table says so.
          echo "pretrain exited with status $rc" > "$out/failed"
        else
          # An interrupted run prints no summary: it resumes next time.
          [ -s "$out/pretrain.json.tmp" ] || exit 1
          mv "$out/pretrain.json.tmp" "$out/pretrain.json"
        fi
      fi
    fi
    if [ ! -f "$out/failed" ]; then
      [ -f "$out/knn.json" ] || { "$bin" knn --checkpoint "$out" --json > "$out/knn.json.tmp" && mv "$out/knn.json.tmp" "$out/knn.json"; }
      [ -f "$out/linear.json" ] || { "$bin" linear --checkpoint "$out" --epochs 30 --json > "$out/linear.json.tmp" && mv "$out/linear.json.tmp" "$out/linear.json"; }
      [ -f "$out/spectrum.json" ] || { "$bin" spectrum --checkpoint "$out" --out "$out/spectrum.png" --json > "$out/spectrum.json.tmp" && mv "$out/spectrum.json.tmp" "$out/spectrum.json"; }
      ft="$out/ft10"
      if [ ! -f "$ft/summary.json" ]; then
        if [ -f "$ft/checkpoint.safetensors" ]; then
          "$bin" finetune --out "$ft" --resume --json > "$out/ft10.json.tmp"
        else
          mkdir -p "$ft"
          "$bin" finetune --checkpoint "$out" --data fashion-mnist --labels 10% --seed "$seed" --out "$ft" --json > "$out/ft10.json.tmp"
        fi
        mv "$out/ft10.json.tmp" "$ft/summary.json"
      fi
    fi
    # Keep the run's results: written to a temporary directory, renamed into place.
    rm -rf "$res.tmp" && mkdir -p "$res.tmp"
    if [ -f "$out/failed" ]; then
      cp "$out/failed" "$res.tmp/failed"
    else
      cp "$out/pretrain.json" "$out/knn.json" "$out/linear.json" "$out/spectrum.json" "$res.tmp/"
      cp "$out/ft10/summary.json" "$res.tmp/finetune.json"
    fi
    [ -f "$out/config.json" ] && cp "$out/config.json" "$res.tmp/config.json"
    printf 'cpu: %s\ncheckout at commit: %s\ndate: %s\n' "$cpu" "$commit" "$(date -u +%F)" > "$res.tmp/machine.txt"
    rm -rf "$res" && mv "$res.tmp" "$res"
  done
done
# The seed-0 runs' spectra (projector and backbone) in one figure, from the kept
# spectrum.json files; then the table.
res_abs=$(cd "$results" && pwd) runs_abs=$(cd "$runs" && pwd)
(cd "$(dirname "$0")/.." && go run ./tools/peersfig --results "$res_abs" --seed 0 --out "$runs_abs/spectra.png") || true
# With bench step's rounds kept beside the results (docs/runs/peers-bench, one
# CPU), the table gives each method's step time and peak RSS too.
bench=${BENCH:-$(dirname "$results")/peers-bench}
shopt -s nullglob
/usr/bin/python3 "$(dirname "$0")/peers_table.py" "$results" "$bench"/*.jsonl

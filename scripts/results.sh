#!/usr/bin/env bash
# Pretrains CorInfoMax, Barlow Twins, VICReg and SimCLR at identical settings
# (--shared-settings: CorInfoMax's projector and optimizer for all)
# on Fashion-MNIST (the fashionmnist CPU recipe, EPOCHS epochs), evaluates
# each (kNN, linear probe) and compares them: the runs behind docs/results.md.
# Safe to interrupt and re-run: each run resumes from its checkpoint.
#   scripts/results.sh [EPOCHS] [RUNS_DIR]
set -euo pipefail
epochs=${1:-10}
runs=${2:-runs/results}
bin=${BIN:-bin/corinfomax}
mkdir -p "$runs"
# VICReg diverges on these shared settings (projector 512-512-64 without batch
# norm; docs/results.md "Why VICReg diverged under LARS") under SGD (lr 0.5) within 20 steps, also with
# batch norm in the projector, and under LARS at lr 0.3 (solo-learn's VICReg
# optimizer) at step ~165 of the warm-up (docs/results.md), so it alone runs
# with AdamW at lr 1e-3; everything else is shared.
extra() {
  case "$1" in
    vicreg) echo "--optimizer adamw --lr 1e-3 --warmup-start-lr 1e-5" ;;
  esac
}
for m in corinfomax barlowtwins vicreg simclr; do
  out="$runs/$m"
  if [ -f "$out/checkpoint.safetensors" ]; then
    "$bin" pretrain --out "$out" --resume --epochs "$epochs"
  else
    # shellcheck disable=SC2046
    "$bin" pretrain --method "$m" --recipe fashionmnist --shared-settings --epochs "$epochs" --out "$out" $(extra "$m")
  fi
done
for m in corinfomax barlowtwins vicreg simclr; do
  out="$runs/$m"
  [ -f "$out/eval.json" ] && grep -q linear_top1 "$out/eval.json" && continue
  "$bin" knn --checkpoint "$out" --json
  "$bin" linear --checkpoint "$out" --epochs 30 --json
done
"$bin" compare "$runs"/corinfomax "$runs"/barlowtwins "$runs"/vicreg "$runs"/simclr --out "$runs/spectra.png" | tee "$runs/compare.md"

#!/usr/bin/env bash
# Fine-tunes pretrained runs on 1% and 10% of the Fashion-MNIST labels, and
# the same architecture from random weights with the same labels and
# schedule: the few-label table of docs/results.md. Safe to interrupt and
# re-run: each run resumes from its checkpoint, finished ones are skipped.
#   scripts/finetune.sh OUT_DIR PRETRAINED_RUN [PRETRAINED_RUN...]
set -euo pipefail
out=${1:?usage: scripts/finetune.sh OUT_DIR PRETRAINED_RUN...}
shift
bin=${BIN:-bin/corinfomax}
mkdir -p "$out"
ft() { # name checkpoint budget [flags]
  local name=$1 ck=$2 budget=$3
  shift 3
  local dir="$out/$name-${budget%\%}pct"
  if [ -f "$dir/summary.json" ]; then return; fi
  if [ -f "$dir/checkpoint.safetensors" ]; then
    "$bin" finetune --out "$dir" --resume --json > "$dir/summary.json.tmp"
  else
    mkdir -p "$dir"
    "$bin" finetune --checkpoint "$ck" --data fashion-mnist --labels "$budget" --out "$dir" --json "$@" > "$dir/summary.json.tmp"
  fi
  mv "$dir/summary.json.tmp" "$dir/summary.json"
}
for budget in 1% 10%; do
  for run in "$@"; do
    ft "$(basename "$run")" "$run" "$budget"
  done
  ft random-init "$1" "$budget" --random-init
done
printf '| run | labels | top-1 | top-5 |\n|---|---|---|---|\n'
for s in "$out"/*/summary.json; do
  d=$(dirname "$s")
  /usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("| %s | %s | %.2f | %.2f |" % (sys.argv[2], sys.argv[3], s["top1"], s["top5"]))' \
    "$s" "$(basename "$d" | sed 's/-[0-9]*pct$//')" "$(basename "$d" | sed 's/.*-\([0-9]*\)pct$/\1%/')"
done

#!/usr/bin/env bash
# The GPU benchmark run in three steps, each meant to fit one 10-minute command on an H100/H200 (BENCHMARKS.md has
# the estimates and the commands). Results build up in /tmp/memreranker-results, which lives as long as
# the machine, and are copied to OUT_DIR after each step.
#
#   benchmarks/gpu_steps.sh 1 OUT_DIR   # 0.6b: W1-W5 side by side, then tests/gpu            (~5 min)
#   benchmarks/gpu_steps.sh 2 OUT_DIR   # 4b: W1-W4, then the per-pass cost fit of 0.6b and 4b (~7 min)
#   benchmarks/gpu_steps.sh 3 OUT_DIR   # 4b: W5 (10,000 documents), merged into step 2's report (~9 min)
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:?usage: benchmarks/gpu_steps.sh 1|2|3 [OUT_DIR]}
out=${2:-benchmarks/runs}
results=/tmp/memreranker-results
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$results" "$out"
trap 'cp "$results"/* "$out"/ 2>/dev/null || true' EXIT  # what a step measured comes back even if a later part fails
run() { python3 -m benchmarks.run --device cuda --max-seconds 20 --out-dir "$results" "$@"; }
case $step in
  1) run --shape 0.6b
     python3 -m pytest tests/gpu -q -p no:cacheprovider 2>&1 | tee "$results/gpu-tests.txt" ;;
  2) run --shape 4b --workloads W1,W2,W3,W4
     python3 -m benchmarks.pass_cost --device cuda --shapes 0.6b,4b 2>/dev/null | tee "$results/pass-cost.md" ;;
  3) run --shape 4b --workloads W5 --merge ;;
  *) echo "unknown step $step (1, 2 or 3)" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Every GPU figure the benchmarks README asks for, in one lease of a GPU machine (about
# 15 minutes): run from the repository root on a machine whose python3 has torch.
#   OUT=/some/folder benchmarks/gpu_figures.sh      # default: benchmarks/results/gpu
#   SMOKE=1 OUT=/tmp/smoke benchmarks/gpu_figures.sh  # the same steps, tiny, on the CPU
# Each step has its own time limit so that one slow step still leaves the others' figures.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
export PYTHONPATH=trainer-image:contracts${PYTHONPATH:+:$PYTHONPATH}
py=${PYTHON:-python3}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  nproc; } > "$out/device.txt" 2>&1
cat "$out/device.txt"

step() {  # step NAME SECONDS COMMAND...: output in $out/NAME.log, its end printed
  local name=$1 limit=$2; shift 2
  local began=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "== $name: exit $?, $((SECONDS - began)) s"; tail -n 25 "$out/$name.log"
}

if [[ -n "${SMOKE:-}" ]]; then
  throughput=(--quick --device cpu --packs 1,2)
  warm=(--device cpu --trials 2 --images 300 --test-images 100 --batch 64 --packs 2,auto)
else
  throughput=(--packs 1,2,4,8)
  warm=(--device cuda --trials 8 --images 45000 --test-images 10000 --epochs 1 --batch 512
        --packs 4,8,auto)
fi

# 1. The trainer against hand-written PyTorch, ResNet-20 against the published 4.4 s, packs.
step trainer_throughput 330 "$py" benchmarks/trainer_throughput.py "${throughput[@]}" \
    --json "$out/trainer_throughput.json"
# 2. A warm worker's fixed cost per trial against a fresh process, and packed aggregates
#    at the worker's own pack size (the GPU path of spec.trials.packing).
step warm_worker 240 "$py" benchmarks/warm_worker.py "${warm[@]}" --out "$out/warm_worker.md"

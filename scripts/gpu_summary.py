#!/usr/bin/env python3
"""The summary of `make gpu-smoke`: the `gpu` run's table, wall time per stage beside the plan's estimate, training
tokens/s, GRPO step time and the decoding benchmark, as OUT/summary.json and OUT/summary.md.

    python scripts/gpu_summary.py OUT      (OUT holds gpu/, plan.json, bench_decode.json, timings.txt)
"""
from __future__ import annotations
import json, sys
from pathlib import Path


def _read(p:Path) -> dict:
    try: return json.loads(p.read_text())
    except (OSError, ValueError): return {}


def summary(out:Path) -> dict:
    run = out/"gpu"
    man, plan, bench = _read(run/"manifest.json"), _read(out/"plan.json"), _read(out/"bench_decode.json")
    sft, grpo, pipe = _read(run/"models/sft/log.json"), _read(run/"models/grpo/log.json"), _read(run/"pipeline.json")
    planned = (plan.get("gpu_hours") or {}).get("seconds") or {}
    stages = {s: dict(stage_seconds=e.get("seconds"), notebook_seconds=(pipe.get("stages") or {}).get(s, {}).get("seconds"),
                      planned_seconds=planned.get(s)) for s, e in man.items()}
    res = _read(run/"eval/results.json")
    return dict(stages=stages, wall_seconds=pipe.get("seconds"), planned_total_seconds=planned.get("total"),
                sft=dict(tokens_per_second=sft.get("tokens_per_second"), steps=sft.get("global_step"),
                         step_seconds=sft.get("step_seconds_mean"), precision=sft.get("precision")),
                grpo=dict(steps=grpo.get("global_step"), step_seconds=grpo.get("step_seconds_mean"),
                          selection=grpo.get("selection"), zero_spread_fraction=grpo.get("zero_spread_fraction")),
                decode=bench.get("runs"), greedy_identical=[bench.get("greedy_identical"), bench.get("compared")],
                results=[{k: r.get(k) for k in ("model", "benchmark", "n", "accuracy", "ci_low", "ci_high", "pass1_mean",
                                                 "pass1_ci_low", "pass1_ci_high", "pass_at_k", "format_rate", "seconds",
                                                 "backend")} for r in res.get("results", [])],
                paired=res.get("paired"), machine=plan.get("machine"))


def markdown(s:dict, out:Path) -> str:
    lines = ["# gpu-smoke summary", "", "| stage | seconds (stage) | seconds (notebook) | plan |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v['stage_seconds']} | {v['notebook_seconds']} | {v['planned_seconds']} |" for k, v in s["stages"].items()]
    lines += ["", f"wall: {s['wall_seconds']} s; plan: {s['planned_total_seconds']} s", "",
              f"SFT: {s['sft']}", f"GRPO: {s['grpo']}", f"decode: {s['decode']}", ""]
    res = out/"gpu/eval/results.md"
    if res.exists(): lines += [res.read_text()]
    return "\n".join(lines)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    s = summary(out)
    (out/"summary.json").write_text(json.dumps(s, indent=1, default=str) + "\n")
    (out/"summary.md").write_text(markdown(s, out))
    print(json.dumps(s, indent=1, default=str))

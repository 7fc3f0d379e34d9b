"""Benchmark (not a test): batched vs one-at-a-time generation throughput of the eval stage's transformers backend.

    python tests/bench_eval.py                       # 32 synthetic test questions, 64 new tokens, batch 1 vs 8, 16, 32
    python tests/bench_eval.py --benchmark finqa --n 8 --max-new-tokens 32 --batch-sizes 1,8

Runs `finr1.eval.HFGenerator` (left padding, prompts sorted by length) on the embedded SmolLM2-135M-Instruct with
greedy decoding, once per batch size, on the same prompts, and prints generated tokens per second (tokens counted up
to each row's EOS, so padding a finished row does not count) and the speed-up over batch size 1.
The greedy completions of the batched runs are compared with the one-at-a-time ones (same text expected).
"""
import argparse, json, os, time
from finr1.run import find_data_dir
from finr1.settings import load_profile
from finr1.models import embedded_model_dir
from finr1.sources import load_finqa
from finr1.sources import sample_records
from finr1.synthetic import synthetic_records
from finr1.eval import decoding_settings, eval_prompt
from finr1.llm import HFGenerator

def bench_records(benchmark:str, n:int, seed:int=0) -> list[dict]:
    "`n` evaluation records: the synthetic held-out split, or FinQA test from ../shared/data."
    if benchmark == "synthetic": return synthetic_records(n, seed=seed, split="test")
    d = find_data_dir()
    if d is None: raise SystemExit("FinQA needs the real datasets (../shared/data or $FINR1_DATA_DIR)")
    return sample_records(load_finqa(d/"finqa", "test"), n, seed, "bench")

def run(gen:HFGenerator, prompts:list, batch_size:int) -> dict:
    "Generate every prompt at `batch_size`; tokens, seconds, tokens/s and the completions."
    gen.batch_size = batch_size
    t0 = time.perf_counter()
    out = gen(prompts)
    secs = time.perf_counter() - t0
    toks = sum(o["usage"]["completion_tokens"] for o in out)
    return dict(batch_size=batch_size, tokens=toks, seconds=round(secs, 2), tokens_per_s=round(toks / secs, 2),
                completions=[o["content"] for o in out])

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="synthetic", choices=["synthetic", "finqa"])
    ap.add_argument("--n", type=int, default=32, help="prompts")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-sizes", default="1,8,16,32", help="comma-separated; the first is the baseline")
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    a = ap.parse_args()
    settings = dict(decoding_settings(load_profile("tiny"), "synthetic"), max_new_tokens=a.max_new_tokens)
    prompts = [eval_prompt(r) for r in bench_records(a.benchmark, a.n)]
    gen = HFGenerator(embedded_model_dir(), temperature=settings["temperature"], top_p=settings["top_p"],
                      max_tokens=settings["max_new_tokens"], seed=settings["seed"])
    runs = [run(gen, prompts, int(b)) for b in a.batch_sizes.split(",")]
    base = runs[0]
    for r in runs:
        r["speedup"] = round(r["tokens_per_s"] / base["tokens_per_s"], 2)
        r["same_completions_as_baseline"] = sum(c == b for c, b in zip(r["completions"], base["completions"]))
    result = dict(benchmark=a.benchmark, n=a.n, max_new_tokens=a.max_new_tokens, torch_threads=__import__("torch").get_num_threads(),
                  load_average=os.getloadavg(), runs=[{k: v for k, v in r.items() if k != "completions"} for r in runs])
    print(json.dumps(result, indent=2))
    if a.out: open(a.out, "w").write(json.dumps(result, indent=2) + "\n")

if __name__ == "__main__": main()

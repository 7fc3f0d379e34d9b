#!/usr/bin/env python3
"""Decoding speed of a transformers model through finr1's two engines: padded `generate` and continuous batching.

Each engine decodes the same synthetic prompts greedily twice (the first call pays the warm-up: kernels, CUDA graphs);
the JSON gives seconds, generated tokens, tokens/s and, for the padded engine, milliseconds per decoding step (one step
decodes one token of every sequence in the batch), plus how many completions the two engines agree on.
`--random` keeps the model's config and tokenizer but draws fresh weights (never stopping early at an end of turn),
for a machine that has no weights yet. `make gpu-smoke` runs it; `finr1 plan` reads its numbers from the README.

    python scripts/bench_decode.py [--model embedded] [--random] [--n 256] [--max-tokens 128] [--json OUT.json]
"""
from __future__ import annotations
import argparse, json, tempfile, time
from pathlib import Path


def random_model(src:str, out:Path) -> Path:
    "A checkpoint at `out` with `src`'s config and tokenizer and freshly initialised weights."
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from finr1.llm import resolve_model
    path = resolve_model(src)   # a directory needs only its config and tokenizer files
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path), dtype=torch.float32).save_pretrained(out)
    AutoTokenizer.from_pretrained(path).save_pretrained(out)
    return out


def run(model:str, n:int, max_tokens:int) -> dict:
    import torch
    from finr1.answers import prompt_messages
    from finr1.device import cuda_available
    from finr1.llm import HFGenerator, load_model
    from finr1.synthetic import synthetic_records
    lm, tok = load_model(model, "hf", training=False)
    prompts = [prompt_messages(r) for r in synthetic_records(n, 0, "test", "easy")]
    sync = torch.cuda.synchronize if cuda_available() else (lambda: None)
    rows, texts = [], {}
    for engine in ("padded", "continuous"):
        for call in (1, 2):
            gen = HFGenerator((lm, tok), temperature=0.0, max_tokens=max_tokens, batch_size=n, engine=engine,
                              progress=False)
            sync(); t0 = time.perf_counter(); out = gen(prompts); sync(); dt = time.perf_counter() - t0
            tokens = [o["usage"]["completion_tokens"] for o in out]
            rows.append(dict(engine=engine, call=call, n=n, seconds=round(dt, 3), tokens=sum(tokens),
                             tokens_per_second=round(sum(tokens) / dt, 1),
                             ms_per_step=round(1000 * dt / max(tokens), 2) if engine == "padded" else None,
                             errors=sum(bool(o["error"]) for o in out)))
            texts[engine] = [o["content"] for o in out]
            print(json.dumps(rows[-1]), flush=True)
    same = sum(a == b for a, b in zip(texts["padded"], texts["continuous"]))
    device = torch.cuda.get_device_name(0) if cuda_available() else "cpu"
    return dict(model=str(model), device=device, dtype=str(lm.dtype), max_tokens=max_tokens, runs=rows,
                greedy_identical=same, compared=n)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="embedded", help="'embedded', a model directory or a hub id")
    p.add_argument("--random", action="store_true", help="the model's config and tokenizer with random weights")
    p.add_argument("--n", type=int, default=256, help="prompts decoded at once")
    p.add_argument("--max-tokens", type=int, default=128, help="new tokens per prompt")
    p.add_argument("--json", type=Path, help="write the result here too")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="finr1-bench-") as tmp:
        model = random_model(a.model, Path(tmp)/"model") if a.random else a.model
        res = dict(run(str(model), a.n, a.max_tokens), random_weights=a.random)
    print(json.dumps(res, indent=1))
    if a.json: a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__": raise SystemExit(main())

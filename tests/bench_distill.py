"""Benchmark (not a test): OpenAI-client throughput at concurrency 32 vs 1 against a local endpoint with ~200 ms latency.

    python tests/bench_distill.py [--latency 0.2] [--n 128] [--n-serial 16]

Prints requests/s for each concurrency and their ratio (goal ≥ 10×), as JSON.
"""
import argparse, json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from openai_stub_server import StubOpenAI
from finr1.synthetic import synthetic_records
from finr1.distill import distill_records
from finr1.llm import OpenAIGenerator, ResultCache

def throughput(url:str, records:list, concurrency:int) -> dict:
    "Distil `records` (fresh cache) through the endpoint; requests per second."
    with tempfile.TemporaryDirectory() as d:
        teacher = OpenAIGenerator("stub-model", url, concurrency=concurrency)
        t0 = time.perf_counter()
        rows, summary = distill_records(records, teacher, ResultCache(Path(d)/"cache.jsonl"), progress=False)
        dt = time.perf_counter() - t0
    assert summary["failed"] == 0, summary
    return dict(concurrency=concurrency, requests=len(rows), seconds=round(dt, 3), requests_per_s=round(len(rows) / dt, 2))

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--n", type=int, default=128, help="requests at concurrency 32")
    ap.add_argument("--n-serial", type=int, default=16, help="requests at concurrency 1")
    a = ap.parse_args()
    records = synthetic_records(a.n, seed=99)
    with StubOpenAI(latency=a.latency) as srv:
        serial = throughput(srv.url, records[:a.n_serial], 1)
        parallel = throughput(srv.url, records, 32)
        peak = srv.max_inflight
    print(json.dumps(dict(latency_s=a.latency, serial=serial, parallel=parallel, server_max_inflight=peak,
                          speedup=round(parallel["requests_per_s"] / serial["requests_per_s"], 1)), indent=2))

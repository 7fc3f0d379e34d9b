"""Tests of the eval stage (06_eval) that a notebook should not hold: the stage on a scratch run, its cache and resume,
the OpenAI-compatible endpoint backend and the LLM judge against real HTTP servers on 127.0.0.1, kill-and-resume."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from finr1.run import init_run, read_json, read_jsonl, read_manifest, write_json, write_jsonl
from finr1.settings import load_profile
from finr1.synthetic import synthetic_records
from finr1.llm import ResultCache
from finr1.answers import format_ok
from finr1.eval import evaluate_all, load_eval_sets, run_stage, stage_models, write_reports
from finr1.models import embedded_model_dir

sys.path.insert(0, str(Path(__file__).parent))
from openai_stub_server import StubOpenAI, last_user

def make_run(tmp_path, n_test=4, records=None, **overrides):
    "A scratch run directory with `data/eval/synthetic.jsonl` written as stage `data` would."
    cfg = load_profile("smoke", **overrides)
    run = init_run(tmp_path/"run", cfg, overrides)
    write_jsonl(run/"data"/"eval"/"synthetic.jsonl", records or synthetic_records(n_test, seed=7, split="test"))
    return run, cfg

def test_run_stage_base_model_then_cached(tmp_path):
    run, cfg = make_run(tmp_path, eval_benchmarks=["synthetic", "finqa"], eval_n=3, eval_max_new_tokens=8, eval_batch_size=2)
    counts = run_stage(run, cfg)
    assert counts == dict(models=1, benchmarks=1, samples=3, generated=3, cached=0, failed=0, skipped=3)
    res = read_json(run/"eval"/"results.json")
    assert set(res["skipped"]) == {"benchmark finqa", "model sft", "model grpo"}
    assert "not written by stage data" in res["skipped"]["benchmark finqa"]
    row, = res["results"]
    assert (row["model"], row["benchmark"], row["n"]) == ("base", "synthetic", 3)
    assert row["ci_low"] <= row["accuracy"] <= row["ci_high"] and 0 <= row["format_rate"] <= 1
    assert row["decoding"] == dict(temperature=0.0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=8, seed=42)
    assert row["seconds"] > 0 and row["backend"] == "hf"
    samples = read_jsonl(run/"eval"/"samples"/"base__synthetic.jsonl")
    file_ids = [r["id"] for r in read_jsonl(run/"data"/"eval"/"synthetic.jsonl")]
    assert len(samples) == 3 and [i for i in file_ids if i in {s["id"] for s in samples}] == [s["id"] for s in samples]  # seeded subset, in order
    for s in samples:
        assert {"id", "prompt", "completion", "pred", "answer", "rule", "judge", "format_ok", "tokens", "latency"} <= set(s)
        assert 0 < s["tokens"] <= 8 and s["judge"] is None and s["prompt"][0]["role"] == "system"
    md = (run/"eval"/"results.md").read_text()
    assert "| Base |" in md and "Synthetic" in md and "Fin-R1-SFT" in md and "finqa" in md
    assert (run/"eval"/"accuracy.png").stat().st_size > 1000
    assert "eval" in read_manifest(run)
    # a rerun generates nothing: every completion comes from the cache, identical
    again = run_stage(run, cfg)
    assert (again["generated"], again["cached"]) == (0, 3)
    assert [s["completion"] for s in read_jsonl(run/"eval"/"samples"/"base__synthetic.jsonl")] == [s["completion"] for s in samples]
    # other decoding settings miss the cache
    cfg2 = load_profile("smoke", eval_benchmarks=["synthetic"], eval_n=1, eval_max_new_tokens=4, eval_batch_size=2)
    assert run_stage(run, cfg2)["generated"] == 1

def test_pass_at_k_over_samples(tmp_path):
    "eval_samples=k: every row carries greedy, pass1_mean and pass_at_k with CIs, and the pair is compared on the k-mean."
    run, cfg = make_run(tmp_path, n_test=3, eval_n=3, eval_max_new_tokens=8, eval_batch_size=4, eval_samples=2)
    models, (sets, _) = dict(sft=embedded_model_dir(), grpo=embedded_model_dir()), load_eval_sets(run, cfg)
    rows = evaluate_all(run, cfg, models, sets)
    for r in rows:
        assert r["k"] == 2 and r["greedy"] == r["accuracy"] and r["pass1_ci_low"] <= r["pass1_mean"] <= r["pass1_ci_high"]
        assert r["pass_at_k"] >= r["pass1_mean"]
    assert [r["sampled"] for r in rows] == [6, 0]   # the same weights: the second model's samples come from the cache
    write_reports(run, cfg, rows, sets, models, {})
    paired = read_json(run/"eval"/"results.json")["paired"]
    assert [p["metric"] for p in paired] == ["accuracy", "pass1_mean"] and all(p["diff"] == 0 for p in paired)
    assert "pass@1, mean of k" in (run/"eval"/"results.md").read_text()

def test_bad_eval_records_name_file_and_row(tmp_path):
    recs = synthetic_records(3, seed=1, split="test")
    recs[2] = {**recs[2], "question": ""}
    run, cfg = make_run(tmp_path, records=recs)
    with pytest.raises(ValueError, match=r"synthetic\.jsonl:3: .*lacks question"): load_eval_sets(run, cfg)

def test_finished_training_stage_without_model_is_an_error(tmp_path):
    run, cfg = make_run(tmp_path)
    write_json(run/"manifest.json", {"sft": {"outputs": {"models/sft/merged": None}}})
    with pytest.raises(FileNotFoundError, match="stage 'sft' finished"): stage_models(run, cfg)

def _answering(records, right:set):
    "A responder that answers the records in `right` correctly (reasoning in `reasoning_content`) and the rest wrongly."
    gold = {r["question"]: r["answer"] for r in records}
    def respond(messages):
        q = last_user(messages)
        ans = gold[q] if q in right else "-1"
        return dict(content=f"<answer>\n{ans}\n</answer>", reasoning_content="Step 1: read the table.\nStep 2: compute.")
    return respond

def test_endpoint_backend_scores_an_api_model(tmp_path):
    recs = synthetic_records(4, seed=3, split="test")
    right = {recs[0]["question"], recs[2]["question"]}
    with StubOpenAI(responder=_answering(recs, right), schedule=["500", "429"]) as srv:
        run, cfg = make_run(tmp_path, records=recs, eval_api_models=["stub-model"], teacher_base_url=srv.url,
                            api_max_retries=3, eval_n=4)
        sets, _ = load_eval_sets(run, cfg)
        rows = evaluate_all(run, cfg, {"api:stub-model": "stub-model"}, sets)
        assert srv.count("500") == srv.count("429") == 1 and srv.count("ok") == 4     # retried, then answered
    row, = rows
    assert (row["accuracy"], row["n"], row["format_rate"], row["failed"], row["backend"]) == (0.5, 4, 1.0, 0, "openai")
    assert row["decoding"]["repetition_penalty"] is None
    samples = read_jsonl(run/"eval"/"samples"/"api_stub-model__synthetic.jsonl")
    assert samples[0]["completion"].startswith("<think>\nStep 1") and format_ok(samples[0]["completion"])
    assert [s["correct"] for s in samples] == [1, 0, 1, 0]
    assert len(ResultCache(run/"eval"/"generations.jsonl").entries) == 4

def test_endpoint_failures_are_counted_and_retried_on_rerun(tmp_path):
    recs = synthetic_records(3, seed=4, split="test")
    bad_q = recs[1]["question"]
    script = lambda req, n: "400" if last_user(req["messages"]) == bad_q and n == 0 else None   # a client error: not retried
    with StubOpenAI(responder=_answering(recs, {r["question"] for r in recs}), script=script) as srv:
        run, cfg = make_run(tmp_path, records=recs, eval_api_models=["stub-model"], teacher_base_url=srv.url)
        sets, _ = load_eval_sets(run, cfg)
        row, = evaluate_all(run, cfg, {"api:stub-model": "stub-model"}, sets)
        assert (row["failed"], row["errors"], row["accuracy"]) == (1, 1, 2 / 3)
        bad, = [s for s in read_jsonl(run/"eval"/"samples"/"api_stub-model__synthetic.jsonl") if s["error"]]
        assert bad["correct"] == 0 and "client" in bad["error"]
        kept = ResultCache(run/"eval"/"generations.jsonl").entries.values()
        assert sum(not e["error"] for e in kept) == 2 and sum(bool(e["error"]) for e in kept) == 1   # a failure is kept, marked
        row, = evaluate_all(run, cfg, {"api:stub-model": "stub-model"}, sets)        # the rerun asks only for the failed one
        assert (row["failed"], row["accuracy"], row["cached"], row["generated"]) == (0, 1.0, 2, 1)

def test_llm_judge_for_open_answers(tmp_path):
    recs = [dict(id=f"fi/{i}", source="finance_instruct", question=q, answer=a, answer_type="text", program=None, history=[], meta={})
            for i, (q, a) in enumerate([("What does EBITDA stand for?", "Earnings before interest, taxes, depreciation and amortization"),
                                        ("What is a bond's coupon?", "The periodic interest payment"),
                                        ("Define liquidity.", "How easily an asset turns into cash")])]
    model_answers = {recs[0]["question"]: "earnings before interest, taxes, depreciation, amortization",
                     recs[1]["question"]: "the face value", recs[2]["question"]: "the ease of converting an asset to cash"}
    def model(messages): return f"<think>\nRecall the definition.\n</think>\n<answer>\n{model_answers[last_user(messages)]}\n</answer>"
    def judge(messages):
        text = last_user(messages)
        if "could not be read" in text: return "still thinking"                      # the re-ask fails too
        if "earnings before interest" in text.lower() and "Candidate answer: earnings" in text: return "1"
        if "face value" in text: return "0"
        return "I am not sure"                                                      # unparsable
    with StubOpenAI(responder=model) as msrv, StubOpenAI(responder=judge) as jsrv:
        run, cfg = make_run(tmp_path, eval_api_models=["stub-model"], teacher_base_url=msrv.url, judge="openai",
                            judge_base_url=jsrv.url, eval_benchmarks=["finance_instruct"])
        write_jsonl(run/"data"/"eval"/"finance_instruct.jsonl", recs)
        sets, _ = load_eval_sets(run, cfg)
        row, = evaluate_all(run, cfg, {"api:stub-model": "stub-model"}, sets)
    s = {x["id"]: x for x in read_jsonl(run/"eval"/"samples"/"api_stub-model__finance_instruct.jsonl")}
    assert (s["fi/0"]["judge"], s["fi/0"]["rule"], s["fi/0"]["correct"]) == (1, 1, 1)    # `covers` and the judge agree
    assert (s["fi/1"]["judge"], s["fi/1"]["correct"]) == (0, 0)
    assert (s["fi/2"]["judge"], s["fi/2"]["judge_status"], s["fi/2"]["correct"]) == (None, "unparsed", 0)  # never a pass
    assert (row["judged"], row["accuracy"]) == (2, 1 / 3)

KILL_SCRIPT = """
import sys
from finr1.settings import load_profile
from finr1.eval import run_stage
cfg = load_profile("smoke", eval_n=8, eval_max_new_tokens=12, eval_batch_size=1)
run_stage(sys.argv[1], cfg)
"""

@pytest.mark.slow
def test_kill_and_resume(tmp_path):
    run, cfg = make_run(tmp_path, n_test=8, eval_n=8, eval_max_new_tokens=12, eval_batch_size=1)
    cache = run/"eval"/"generations.jsonl"
    p = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 600 and not (cache.exists() and len(cache.read_bytes().splitlines()) >= 2): time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    done_before = len(ResultCache(cache).entries)
    assert 2 <= done_before < 8, done_before
    counts = run_stage(run, cfg)
    assert (counts["cached"], counts["generated"], counts["samples"]) == (done_before, 8 - done_before, 8)
    keys = [json.loads(l)["key"] for l in cache.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 8                                          # every sample exactly once

def test_evaluate_models_cli_path(tmp_path):
    "`finr1 eval --model DIR`: builds the eval sets with stage data, evaluates the given directory, returns the table."
    from finr1.models import embedded_model_dir
    from finr1.pipeline import evaluate_models
    table = evaluate_models([str(embedded_model_dir())], profile="smoke", run_dir=tmp_path/"ev",
                            overrides=dict(eval_n=2, eval_max_new_tokens=4))
    assert table.startswith("| Model | Synthetic | Average |") and "SmolLM2-135M-Instruct" in table
    res = read_json(tmp_path/"ev"/"eval"/"results.json")
    assert [(r["model"], r["n"]) for r in res["results"]] == [("SmolLM2-135M-Instruct", 2)]

"""distill against real local servers: a fault-injecting OpenAI-compatible server (tests/openai_stub_server.py) and
`transformers serve` with the embedded SmolLM2; the resumable cache under SIGKILL."""
import os, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest
sys.path.insert(0, str(Path(__file__).parent))
from openai_stub_server import StubOpenAI, last_user
from finr1.run import init_run, read_jsonl, write_jsonl, read_manifest, read_json
from finr1.settings import load_profile
from finr1.models import embedded_model_dir
from finr1.synthetic import synthetic_records
from finr1.distill import distill_records, teacher_messages, run_stage, make_teacher
from finr1.llm import OpenAIGenerator, ResultCache
from finr1.pipeline import serve_command

def make_run(tmp_path, records, **overrides):
    "A run directory holding `records` as data/train.jsonl, under the smoke profile with `overrides`."
    cfg = load_profile("smoke", **overrides)
    run = init_run(tmp_path/"run", cfg, overrides)
    write_jsonl(run/"data"/"train.jsonl", records)
    return run, cfg

def free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

# ---------------------------------------------------------------- faults: retries, giving up, cache consistency
PLANS = [["429", "429"], ["500", "503"], ["malformed"], ["drop"], ["sleep:3"], ["500"] * 10, ["400"]]

def test_faults_are_retried_then_given_up_cleanly(tmp_path):
    records = synthetic_records(len(PLANS), seed=11)
    index = {last_user(teacher_messages(r)): i for i, r in enumerate(records)}
    def script(req, n):
        plan = PLANS[index[last_user(req["messages"])]]
        return plan[n] if n < len(plan) else "ok"
    cache = ResultCache(tmp_path/"cache.jsonl")
    with StubOpenAI(latency=0.02, script=script) as srv:
        teacher = OpenAIGenerator("stub-model", srv.url, max_retries=3, timeout=1.0, backoff_base=0.01, backoff_max=0.05,
                                concurrency=4)
        t0 = time.time()
        rows, summary = distill_records(records, teacher, cache, progress=False)
        seconds = time.time() - t0
        served = srv.count()
    got = [(r["attempts"], (r["error"] or {}).get("kind")) for r in rows]
    assert got == [(3, None), (3, None), (2, None), (2, None), (2, None), (4, "server"), (1, "client")]
    assert [r["teacher_answer"] for r in rows[:5]] == ["42"] * 5
    assert rows[5]["reasoning"] == "" and "500" in rows[5]["error"]["message"]
    assert summary["failures_by_kind"] == {"server": 1, "client": 1} and summary["ok"] == 5
    assert served == 3 + 3 + 2 + 2 + 2 + 4 + 1           # every attempt reached the server; nothing extra
    assert seconds < 10, seconds                          # the timeout cut the 3 s sleep; backoff stayed short
    # the cache holds every record, failures included; a rerun against a healthy server retries only the failures
    assert len(ResultCache(cache.path).entries) == len(records)
    with StubOpenAI() as healthy:
        teacher2 = OpenAIGenerator("stub-model", healthy.url, max_retries=3, backoff_base=0.01)
        rows2, summary2 = distill_records(records, teacher2, ResultCache(cache.path), progress=False)
        assert healthy.count() == 2
    assert summary2["requested"] == 2 and summary2["failed"] == 0
    assert [r["reasoning"] for r in rows2[:5]] == [r["reasoning"] for r in rows[:5]]
    reloaded = ResultCache(cache.path)
    assert reloaded.compact() == len(records)
    assert len(cache.path.read_text().splitlines()) == len(records)

def test_concurrency_is_bounded_and_urls_round_robin(tmp_path):
    records = synthetic_records(24, seed=12)
    with StubOpenAI(latency=0.15) as a, StubOpenAI(latency=0.15) as b:
        teacher = OpenAIGenerator("stub-model", f"{a.url},{b.url}", concurrency=4)
        t0 = time.time()
        out = teacher([teacher_messages(r) for r in records])
        seconds = time.time() - t0
        assert (a.count(), b.count()) == (12, 12)
        assert a.max_inflight + b.max_inflight <= 4 + 1 and max(a.max_inflight, b.max_inflight) >= 2
    assert all(o["error"] is None for o in out)
    assert seconds >= 24 / 4 * 0.15 * 0.9, seconds        # never more than 4 at once

def test_reasoning_content_field_is_used(tmp_path):
    "DeepSeek's API returns the chain of thought in `reasoning_content` and only the answer in `content`."
    reply = lambda messages: dict(reasoning_content="Revenue rose from 5735 to 5829.\n5829 - 5735 = 94.", content="The change is \\boxed{94}.")
    with StubOpenAI(responder=reply) as srv:
        out = OpenAIGenerator("deepseek-reasoner", srv.url)([teacher_messages(synthetic_records(1)[0])])
    assert out[0]["reasoning"].endswith("= 94.") and out[0]["answer"] == "94"

# ---------------------------------------------------------------- secrets and no silent fallback
def test_api_key_comes_from_the_named_variable_and_is_never_written(tmp_path, monkeypatch):
    secret = "sk-finr1-test-0123456789"
    monkeypatch.setenv("FINR1_TEST_TEACHER_KEY", secret)
    with StubOpenAI() as srv:
        run, cfg = make_run(tmp_path, synthetic_records(3, seed=13), teacher="openai", teacher_model="stub-model",
                            teacher_base_url=srv.url, teacher_api_key_env="FINR1_TEST_TEACHER_KEY")
        counts = run_stage(run, cfg, progress=False)
        assert srv.auth == {f"Bearer {secret}"}
    assert counts["ok"] == 3
    for f in run.rglob("*"):
        if f.is_file(): assert secret not in f.read_text(errors="ignore"), f
    monkeypatch.delenv("FINR1_TEST_TEACHER_KEY")
    with pytest.raises(RuntimeError, match="FINR1_TEST_TEACHER_KEY"):
        make_teacher(load_profile("smoke", teacher="openai", teacher_base_url="https://api.deepseek.com",
                                  teacher_api_key_env="FINR1_TEST_TEACHER_KEY"))

def test_unreachable_endpoint_fails_loudly_never_falls_back_to_program(tmp_path):
    run, cfg = make_run(tmp_path, synthetic_records(3, seed=14), teacher="openai", teacher_model="m",
                        teacher_base_url=f"http://127.0.0.1:{free_port()}/v1", api_max_retries=0)
    with pytest.raises(RuntimeError, match="every one of 3 records failed"):
        run_stage(run, cfg, progress=False)
    rows = read_jsonl(run/"data"/"distilled.jsonl")
    assert [(r["teacher"], r["error"]["kind"], r["reasoning"]) for r in rows] == [("openai:m", "connection", "")] * 3
    assert "distill" not in read_manifest(run)                      # not marked done: a rerun retries
    assert read_json(run/"data"/"distill_report.json")["failures_by_kind"] == {"connection": 3}

# ---------------------------------------------------------------- kill -9 mid-run, then resume
CHILD = ("import sys; from finr1.run import load_config; from finr1.distill import run_stage; "
         "run_stage(sys.argv[1], load_config(sys.argv[1]), progress=False)")

def _lines(p:Path) -> int: return p.read_bytes().count(b"\n") if p.exists() else 0

def test_sigkill_mid_run_then_resume_gives_every_record_exactly_once(tmp_path):
    records = synthetic_records(60, seed=15)
    with StubOpenAI(latency=0.1) as srv:
        run, cfg = make_run(tmp_path, records, teacher="openai", teacher_model="stub-model", teacher_base_url=srv.url,
                            api_concurrency=4)
        cache = run/"data"/"distill_cache.jsonl"
        for stop_at in (8, 30):                                    # two kills at different points
            child = subprocess.Popen([sys.executable, "-c", CHILD, str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.time() + 60
            while _lines(cache) < stop_at and child.poll() is None and time.time() < deadline: time.sleep(0.005)
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            child.send_signal(signal.SIGKILL); child.wait()
            assert stop_at <= _lines(cache) < len(records)
        done_before = _lines(cache)                                 # complete lines = results kept (no failures here)
        with open(cache, "ab") as f: f.write(b'{"key": "0123", "reasoning": "a line cut by the kil')   # as a kill mid-write leaves it
        counts = run_stage(run, cfg, progress=False)
        served = srv.count()
    rows = read_jsonl(run/"data"/"distilled.jsonl")
    assert [r["id"] for r in rows] == [r["id"] for r in records]             # every record exactly once, in order
    assert all(r["error"] is None and r["teacher_answer"] == "42" for r in rows)
    assert counts["requested"] == len(records) - done_before and counts["from_cache"] == done_before
    entries = read_jsonl(cache)
    assert len(entries) == len({e["key"] for e in entries}) == len(records)   # compacted: one line per key
    assert read_json(run/"data"/"distill_report.json")["cache_repaired_bytes"] > 0
    assert len(records) <= served <= len(records) + 2 * 4                     # at most the in-flight requests of each kill are redone

# ---------------------------------------------------------------- a real OpenAI-compatible server: transformers serve
def test_openai_teacher_against_transformers_serve(tmp_path, transformers_serve):
    model, url = transformers_serve
    records = synthetic_records(2, seed=16)
    run, cfg = make_run(tmp_path, records, teacher="openai", teacher_model=model, teacher_base_url=url,
                        teacher_max_tokens=24, api_concurrency=2, api_timeout=300.0)
    counts = run_stage(run, cfg, progress=False)
    rows = read_jsonl(run/"data"/"distilled.jsonl")
    assert counts["ok"] == 2 and counts["failed"] == 0
    for r in rows:
        assert r["teacher"] == f"openai:{model}" and r["teacher_raw"].strip()
        assert 0 < r["usage"]["completion_tokens"] <= 24 and r["usage"]["prompt_tokens"] > 100
        assert r["latency"] > 0 and r["attempts"] == 1
    assert run_stage(run, cfg, progress=False)["requested"] == 0           # the rerun is served from the cache

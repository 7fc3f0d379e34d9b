"""The `paper` profile's rehearsal: `finr1 run --profile paper` end to end on CPU, every LLM role over HTTP.

The reproduction runs on a GPU for hours, so a bug in its last cell costs hours. This runs the *same* profile
here, changing only what a CPU forces and what makes it small:

- the model: the embedded SmolLM2-135M instead of Qwen2.5-7B (`model`, and the judge's served model id);
- device-bound switches: `backend=hf`, `grpo_use_vllm=false`;
- sizes: records per source, steps, tokens, items per benchmark;
- URLs: the teacher and the judge on 127.0.0.1, and `data_dir`.

Everything else is the `paper` profile as shipped: the `openai` teacher and judge, the rules-then-LLM round 1, the
LLM rubric of round 2, GRPO's `format,verifier` rewards, eval's judge, DeepSeek-R1's sampling settings.
The teacher is a local server that answers the way DeepSeek's API does (`tests/deepseek_like.py`): right and wrong
answers, good and degenerate reasoning. The judge, the GRPO verifier and eval's judge are a real `transformers serve`.
`DEEPSEEK_API_KEY` is exported as a user would, and must reach the teacher and nothing else.

It takes about six minutes on 2 cores, so it is marked slow: `make test-slow` runs it, and `make rehearsal` (the
README's command) runs it alone and keeps the run directory in runs/paper-rehearsal.
"""
import json, os, secrets, subprocess, sys
from pathlib import Path
import pytest
sys.path.insert(0, str(Path(__file__).parent))
from openai_stub_server import StubOpenAI
from deepseek_like import DeepSeekLikeTeacher
from finr1.run import STAGES, read_json, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
FINR1 = str(Path(sys.executable).parent/"finr1")
pytestmark = pytest.mark.slow
KEY = "sk-rehearsal-" + secrets.token_hex(16)     # fresh each run: finding it anywhere is a leak, not a coincidence

SIZES = dict(max_per_source=2, max_seq_length=1024, sft_max_length=1024, sft_batch_size=2, sft_grad_accum=1, sft_max_steps=2,
             grpo_max_steps=1, grpo_num_generations=2, grpo_batch_size=2, grpo_grad_accum=1, grpo_max_completion_length=24,
             eval_n=1, eval_max_new_tokens=24, judge_max_tokens=8)

def sets(d:dict) -> list[str]: return [f"{k}={v}" for k, v in d.items()]

def finr1_run(run_dir:Path, overrides:dict, *extra:str, timeout:int=1500) -> subprocess.CompletedProcess:
    "`finr1 run --profile paper` with the key exported, as a user runs it."
    env = {**os.environ, "DEEPSEEK_API_KEY": KEY, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [FINR1, "run", "--profile", "paper", "--run-dir", str(run_dir), "--set", *sets(overrides), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)

@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, data_dir, transformers_serve):
    "The run: (run_dir, overrides, completed process, teacher server). FINR1_REHEARSAL_DIR keeps it somewhere to read."
    run_dir = Path(os.environ.get("FINR1_REHEARSAL_DIR") or tmp_path_factory.mktemp("rehearsal")/"paper").resolve()
    judge_model, judge_url = transformers_serve
    with StubOpenAI(responder=DeepSeekLikeTeacher(run_dir), model="deepseek-reasoner") as teacher:
        overrides = dict(model="embedded", backend="hf", grpo_use_vllm="false", data_dir=str(data_dir),
                         teacher_base_url=teacher.url, judge_base_url=judge_url, judge_model=judge_model, **SIZES)
        r = finr1_run(run_dir, overrides)
        yield run_dir, overrides, r, teacher

def test_all_six_stages_complete(rehearsal):
    run_dir, _, r, _ = rehearsal
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    stages = read_json(run_dir/"pipeline.json")["stages"]
    assert list(stages) == list(STAGES) and all(s["status"] == "ran" for s in stages.values())
    assert set(read_json(run_dir/"manifest.json")) >= set(STAGES)
    for nb in STAGES.values(): assert (run_dir/"notebooks"/f"{nb}.ipynb").exists()
    print("\nstage wall seconds:", {k: v["seconds"] for k, v in stages.items()})

def test_teacher_was_deepseek_like_and_the_filter_sorted_it(rehearsal):
    run_dir, _, r, teacher = rehearsal
    assert r.returncode == 0, r.stderr[-3000:]
    report = read_json(run_dir/"data/filter_report.json")
    counts = read_json(run_dir/"manifest.json")["filter"]["counts"]
    assert report["judge"] == "openai"
    assert report["reject_stages"].get("round1", 0) > 0 and report["reject_stages"].get("round2", 0) > 0, report["reject_stages"]
    assert counts["passed_round1"] > 0 and counts["passed_round2"] > 0
    assert len(read_jsonl(run_dir/"data/sft.jsonl")) > 0 and len(read_jsonl(run_dir/"data/rl.jsonl")) > 0
    assert (run_dir/"data/judge_cache.jsonl").exists()                           # the LLM judge was asked, over HTTP
    distilled = read_jsonl(run_dir/"data/distilled.jsonl")
    assert teacher.count() >= len(distilled) > 0 and all(d["teacher"] == "openai:deepseek-reasoner" for d in distilled)
    assert all(d["reasoning"] is not None for d in distilled)                    # reasoning_content became the trace
    print("\nfilter counts:", counts, "\nreject stages:", report["reject_stages"])

def test_grpo_used_the_verifier_and_eval_has_three_models(rehearsal):
    run_dir, _, r, _ = rehearsal
    assert r.returncode == 0, r.stderr[-3000:]
    steps = read_json(run_dir/"models/grpo/log.json")["steps"]
    assert steps and all("rewards/verifier_reward/mean" in s or "rewards/verifier_reward/std" in s for s in steps)
    rows = read_json(run_dir/"eval/results.json")["results"]
    assert {row["model"] for row in rows} >= {"base", "sft", "grpo"}
    table = (run_dir/"results.md").read_text()
    assert all(t in table for t in ("| Base", "| SFT", "| GRPO"))

def test_the_key_reached_the_teacher_and_nothing_else(rehearsal):
    run_dir, _, r, teacher = rehearsal
    assert teacher.auth == {f"Bearer {KEY}"}                                     # read from the environment, sent to the teacher
    leaks = [p for p in run_dir.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == [], leaks                                                    # no file of the run, executed notebooks included
    assert KEY not in r.stdout + r.stderr

def test_no_papermill_warnings_and_every_field_read_is_declared(rehearsal):
    run_dir, _, r, _ = rehearsal
    out = r.stdout + r.stderr
    assert "Unable to parse line" not in out and "Passed unknown parameter" not in out
    man = read_json(run_dir/"manifest.json")
    assert {s: e["undeclared_fields"] for s, e in man.items() if e.get("undeclared_fields")} == {}

def test_resume_reruns_only_what_a_change_touches(rehearsal):
    "eval_n re-runs eval only; sft_lr re-runs sft, grpo and eval, never data, distill (API money) or filter."
    run_dir, overrides, r, teacher = rehearsal
    assert r.returncode == 0, r.stderr[-3000:]
    def ran(extra:dict) -> list[str]:
        rr = finr1_run(run_dir, {**overrides, **extra}, "--resume")
        assert rr.returncode == 0, rr.stdout[-3000:] + rr.stderr[-3000:]
        return [s for s, t in read_json(run_dir/"pipeline.json")["stages"].items() if t["status"] == "ran"]
    served = teacher.count()
    assert ran(dict(eval_n=2)) == ["eval"]
    assert ran(dict(eval_n=2, sft_lr=1e-4)) == ["sft", "grpo", "eval"]
    assert teacher.count() == served                                             # no teacher request was repeated
    stages = read_json(run_dir/"pipeline.json")["stages"]
    assert stages["sft"]["reason"] == "settings changed: sft_lr" and stages["grpo"]["reason"].startswith("input changed")

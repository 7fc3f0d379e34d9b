"The papermill pipeline and the `finr1` command, end to end."
import json, os, re, subprocess, sys, time
from pathlib import Path
import nbformat, pytest
from finr1.run import STAGES, read_json
from finr1.settings import ConfigError
from finr1.pipeline import run_pipeline, StageFailed, main

ROOT = Path(__file__).resolve().parents[1]
FINR1 = str(Path(sys.executable).parent/"finr1")

def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "smoke"\nrun_dir = None\noverrides = {}', metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    # no kernelspec, as jupytext writes them: the pipeline must cope
    return nb

def test_failing_cell_is_named_and_notebook_kept(tmp_path):
    "A failing stage stops the pipeline with notebook + cell in the message, non-zero exit, executed copy kept."
    nbs = tmp_path/"nbs"; nbs.mkdir()
    for stage, name in STAGES.items():
        cells = ["x = 1", "raise ValueError('bad table row 7')"] if stage == "distill" else ["print(profile, run_dir)"]
        nbformat.write(_nb(*cells), nbs/f"{name}.ipynb")
    run = tmp_path/"run"
    with pytest.raises(StageFailed) as e: run_pipeline("smoke", run, nbs=nbs, log=lambda *a: None)
    msg = str(e.value)
    assert "02_distill.ipynb" in msg and "cell 3 of the executed notebook" in msg and "bad table row 7" in msg
    assert (run/"notebooks/02_distill.ipynb").exists() and (run/"notebooks/01_data.ipynb").exists()
    assert not (run/"notebooks/03_filter.ipynb").exists()
    r = subprocess.run([FINR1, "run", "--profile", "smoke", "--run-dir", str(run), "--nbs", str(nbs)], capture_output=True, text=True)
    assert r.returncode == 1 and "02_distill.ipynb" in r.stderr

def test_parameters_are_injected_and_secrets_refused(tmp_path):
    nbs = tmp_path/"nbs"; nbs.mkdir()
    for stage, name in STAGES.items():
        src = f"import json, pathlib\npathlib.Path(run_dir, 'seen_{stage}.json').write_text(json.dumps([profile, overrides]))"
        nbformat.write(_nb(src), nbs/f"{name}.ipynb")
    run_pipeline("smoke", tmp_path/"run", {"seed": "5"}, nbs=nbs, log=lambda *a: None)
    assert json.loads((tmp_path/"run/seen_sft.json").read_text()) == ["smoke", {"seed": "5"}]
    assert read_json(tmp_path/"run/config.json")["profile"]["seed"] == 5
    with pytest.raises(ConfigError): run_pipeline("smoke", tmp_path/"run2", {"teacher_api_key": "sk-secret"}, nbs=nbs)

USER_ERRORS = [
    (["run", "--set", "sft_lrr=1"], "finr1: error: unknown profile field 'sft_lrr'; did you mean 'sft_lr'?"),
    (["run", "--set", "sft_lr=abc"], "finr1: error: sft_lr expects a number, got 'abc'"),
    (["run", "--profile", "huge"], "finr1: error: unknown profile 'huge'; choose one of smoke, tiny, cpu, gpu, paper"),
    (["run", "--stages", "sft,rl"], "finr1: error: unknown stage(s) ['rl']"),
    (["run", "--set", "data_dir=/nonexistent/data"], "finr1: error: data_dir /nonexistent/data does not exist"),
    (["run", "--set", "model=/nonexistent"], "finr1: error: no such model directory: /nonexistent"),
    (["eval", "--model", "/nonexistent"], "finr1: error: no such model directory: /nonexistent"),
    (["eval", "--benchmarks", "finqa,mmlu"], "finr1: error: unknown benchmark(s) ['mmlu']"),
    (["ask", "What is 2+2?", "--model", "/nonexistent"], "finr1: error: no such model directory: /nonexistent"),
]

@pytest.mark.parametrize("args, message", USER_ERRORS, ids=[" ".join(a) for a, _ in USER_ERRORS])
def test_user_errors_are_one_line(tmp_path, args, message):
    "A user's mistake: one `finr1: error:` line naming the field or path, exit status 2, no traceback, nothing created."
    extra = ["--run-dir", str(tmp_path/"run")] if args[0] in ("run", "eval") else []
    r = subprocess.run([FINR1, *args, *extra], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith(message), r.stderr[-2000:]
    assert not (tmp_path/"run").exists()

def test_cli_usage():
    assert main([]) == 2
    r = subprocess.run([FINR1, "run", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--resume" in r.stdout

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    "`finr1 run --profile smoke` in a temp dir: the real notebooks, end to end."
    run = tmp_path_factory.mktemp("e2e")/"smoke"
    r = subprocess.run([FINR1, "run", "--profile", "smoke", "--run-dir", str(run), "--set", "report_to=tensorboard"],
                       capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return run, r

def test_smoke_pipeline_end_to_end(smoke_run):
    run, r = smoke_run
    for nb in STAGES.values(): assert (run/"notebooks"/f"{nb}.ipynb").exists()
    for f in ["config.json", "manifest.json", "pipeline.json", "results.md", "data/train.jsonl", "data/sft.jsonl",
              "eval/results.json"]: assert (run/f).exists(), f
    table = (run/"results.md").read_text()
    assert "|" in table and "synthetic" in table.lower()
    assert set(read_json(run/"manifest.json")) >= set(STAGES)

def test_resume_skips_fresh_stages(smoke_run):
    run, _ = smoke_run
    r = subprocess.run([FINR1, "run", "--profile", "smoke", "--run-dir", str(run), "--resume"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert all(s["status"] == "skipped" for s in read_json(run/"pipeline.json")["stages"].values())

def test_resume_decides_per_stage_from_the_fields_it_reads(smoke_run):
    """Each stage is fresh while its inputs, outputs and the profile fields it reads are unchanged (STAGE_FIELDS):
    eval_n touches eval only; sft_lr touches sft only (grpo and eval follow through the new SFT model, which the
    slow paper rehearsal runs for real). The manifest also records that no stage read an undeclared field."""
    from finr1.settings import load_profile
    from finr1.run import stale_reason
    run, _ = smoke_run
    man = read_json(run/"manifest.json")
    assert {s: e["undeclared_fields"] for s, e in man.items() if e.get("undeclared_fields")} == {}
    def stale(**over): return {s: stale_reason(run, s, load_profile("smoke", **over)) for s in STAGES}
    assert stale() == dict.fromkeys(STAGES)
    assert stale(eval_n=2) == {**dict.fromkeys(STAGES), "eval": "settings changed: eval_n"}
    assert stale(sft_lr=1e-4) == {**dict.fromkeys(STAGES), "sft": "settings changed: sft_lr"}
    assert stale(teacher_temperature=0.7)["distill"] == "settings changed: teacher_temperature"


def test_tracking_logs_are_readable(smoke_run):
    "`report_to=tensorboard`: event files under run_dir/tracking/, SFT loss and GRPO reward readable from them; not a reason to rerun."
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run, _ = smoke_run
    scalars = {}
    for stage in ("sft", "grpo"):
        acc = EventAccumulator(str(run/"tracking/tensorboard"/stage)); acc.Reload()
        scalars[stage] = {t: [e.value for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    sft_log, grpo_log = read_json(run/"models/sft/log.json"), read_json(run/"models/grpo/log.json")
    assert scalars["sft"]["train/loss"] == pytest.approx([s["loss"] for s in sft_log["steps"]], rel=1e-5)
    assert scalars["grpo"]["train/reward"] == pytest.approx([s["reward"] for s in grpo_log["steps"]], rel=1e-5)

def test_cards_parse_with_the_measured_results(smoke_run):
    "Model cards in every saved model folder and the dataset card parse back with huggingface_hub, holding the run's numbers."
    from datasets import load_from_disk
    from huggingface_hub import DatasetCard, ModelCard
    run, _ = smoke_run
    res = read_json(run/"eval/results.json")["results"]
    for name in ("sft", "grpo"):
        for kind in ("merged", "adapter"):
            meta = ModelCard.load(run/"models"/name/kind/"README.md").data.to_dict()
            assert meta["library_name"] == ("peft" if kind == "adapter" else "transformers")
            assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["license"] and "finr1" in meta["tags"]
            got = {e["dataset"]["type"]: e["metrics"][0]["value"] for e in meta["model-index"][0]["results"]}
            assert got == {f"finr1/{r['benchmark']}": round(100 * r["accuracy"], 1) for r in res if r["model"] == name}
    ds, card = load_from_disk(str(run/"data/fin_r1_data")), DatasetCard.load(run/"data/fin_r1_data/README.md")
    filt = read_json(run/"data/filter_report.json")["total"]
    assert (ds["sft"].num_rows, ds["sft"].column_names[:4]) == (filt["sft"], ["id", "source", "question", "reasoning"])
    assert card.data.license == "apache-2.0" and f"| SFT set | {filt['sft']} |" in card.text and "offline stand-in" in card.text

def test_push_dry_run_and_offline_push(smoke_run, tmp_path):
    "`finr1 push --dry-run` lists the files and checks the card, offline; a real push that cannot reach the Hub is one line."
    run, _ = smoke_run
    folder = run/"models/grpo/adapter"
    r = subprocess.run([FINR1, "push", str(folder), "--repo-id", "me/finr1-grpo", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "README.md" in r.stdout and "adapter_model.safetensors" in r.stdout and "card: README.md parses" in r.stdout, r.stderr
    r = subprocess.run([FINR1, "push", str(run/"data/fin_r1_data"), "--repo-id", "me/finr1-data", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "dataset" in r.stdout and "dataset_dict.json" in r.stdout, r.stderr
    import socket
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]       # nothing listens there: the Hub is unreachable
    env = {**os.environ, "HF_TOKEN": "hf_test_secret_token", "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_DISABLE_TELEMETRY": "1"}
    r = subprocess.run([FINR1, "push", str(folder), "--repo-id", "me/finr1-grpo"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("finr1: error: push to me/finr1-grpo failed:")
    assert "hf_test_secret_token" not in r.stdout + r.stderr
    r = subprocess.run([FINR1, "push", str(folder), "--repo-id", "me/x"], capture_output=True, text=True, timeout=120,
                       env={k: v for k, v in os.environ.items() if k != "HF_TOKEN"})
    assert r.returncode == 2 and "HF_TOKEN is not set" in r.stderr

def test_eval_notebook_through_an_openai_endpoint(smoke_run, tmp_path, transformers_serve_any):
    """The `06_eval` notebook with every model served at an OpenAI-compatible endpoint (`eval_backend=endpoint`, a real
    `transformers serve` on 127.0.0.1): the path a vLLM or API generator takes, not the in-process transformers one.
    The run's models are hard-linked into a copy (eval only reads them); everything eval writes is the copy's own."""
    import shutil
    run, _ = smoke_run
    copy = tmp_path/"endpoint"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("models"))
    shutil.copytree(run/"models", copy/"models", copy_function=os.link, ignore=shutil.ignore_patterns("README.md", "checkpoints"))
    url = transformers_serve_any
    r = subprocess.run([FINR1, "run", "--profile", "smoke", "--run-dir", str(copy), "--stages", "eval",
                        "--set", "eval_backend=endpoint", f"eval_base_url={url}"], capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = read_json(copy/"eval"/"results.json")
    rows = res["results"]
    assert {x["model"] for x in rows} == {"base", "sft", "grpo"} and {x["backend"] for x in rows} == {"openai"}
    assert all(x["failed"] == 0 and x["generated"] + x["cached"] == x["n"] > 0 for x in rows) and rows[0]["generated"] == rows[0]["n"]
    assert all(x["model_id"].startswith("openai:sha256:") for x in rows)      # cached under the weights' digest, not the path
    # (smoke's one GRPO step can leave the weights as SFT made them: the same digest, answered from the cache)
    executed = nbformat.read(copy/"notebooks"/"06_eval.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") + json.dumps(o.get("data", {})) for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "'openai'" in outputs                                              # the demo cells took the endpoint too
    assert read_json(run/"eval"/"results.json")["results"][0]["backend"] == "hf"   # the original run is untouched

def test_plan_json_for_the_paper_profile(data_dir):
    "`finr1 plan --profile paper --json`: one JSON object with the plan's keys, teacher requests on the paper's scale (≤ 60k)."
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}   # as a user runs it
    t0 = time.time()
    r = subprocess.run([FINR1, "plan", "--profile", "paper", "--set", f"data_dir={data_dir}", "--json"], capture_output=True, text=True,
                       cwd=ROOT, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert time.time() - t0 < 60 and not re.search(r"\d+%\||it/s", r.stderr), r.stderr[-500:]   # no hub waits, no bars
    plan = json.loads(r.stdout)                                                 # stdout is the JSON and nothing else
    assert {"records", "teacher_requests", "judge_calls", "sft_tokens", "grpo_rollouts", "eval_generations", "gpu_hours"} <= set(plan)
    assert 1_000 < plan["teacher_requests"] == sum(plan["records"].values()) <= 60_000
    assert plan["grpo_rollouts"] == 500 * 8 * 4 and plan["gpu_hours"]["total"] > 0
    why = plan["skipped"]["train/finance_instruct"]                          # no hub here: skipped at once, saying so
    assert "cannot be reached" in why or "switched off" in why, why
    assert plan["machine"]["training_backend"] in ("hf", "unsloth")

@pytest.mark.parametrize("profile", ["paper", "gpu"])
def test_gpu_profiles_without_a_gpu_are_one_line(profile, tmp_path):
    "`paper` and `gpu` on a machine whose torch cannot use a GPU stop before anything runs (nothing is written)."
    from finr1.device import gpu_problem
    if gpu_problem() is None: pytest.skip("this machine has a usable GPU")
    r = subprocess.run([FINR1, "run", "--profile", profile, "--run-dir", str(tmp_path/"run")], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith(f"finr1: error: profile '{profile}' requires a CUDA GPU")
    assert len(r.stderr.strip().splitlines()) == 1 and "backend=hf" in r.stderr and not (tmp_path/"run").exists()

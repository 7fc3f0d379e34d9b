"Training beyond one notebook run: accelerate configs, data-parallel SFT on two CPU processes, GRPO resume, Unsloth's code path."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, yaml
from finr1.run import load_config, open_run, read_json, read_manifest
from finr1.run import ensure_upstream

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

def test_accelerate_configs():
    ddp = yaml.safe_load((ROOT/"configs/accelerate/ddp.yaml").read_text())
    zero3 = yaml.safe_load((ROOT/"configs/accelerate/zero3.yaml").read_text())
    assert (ddp["distributed_type"], ddp["num_processes"], ddp["use_cpu"]) == ("MULTI_GPU", 8, False)
    assert zero3["distributed_type"] == "DEEPSPEED" and zero3["deepspeed_config"]["zero_stage"] == 3
    assert zero3["deepspeed_config"]["zero3_save_16bit_model"] is True   # so trainer.save_model gathers full weights

def smoke_run(tmp_path, stage_name, **overrides):
    "A smoke run directory with every stage before `stage_name` done."
    run_dir, cfg = open_run(tmp_path/"run", "smoke", overrides, stage_name)
    ensure_upstream(run_dir, stage_name, cfg)
    return run_dir, cfg

def test_sft_keeps_the_checkpoint_with_the_best_pass_at_k_and_grpo_reuses_its_samples(tmp_path):
    from finr1.run import file_digest
    from finr1.grpo import run_stage as grpo_stage
    from finr1.sft import run_stage as sft_stage
    over = dict(sft_select_k=2, sft_epochs=2, sft_max_steps=-1, sft_select_max_tokens=32, synthetic_rl_n=4,
                grpo_pass_rate_k=2, grpo_max_completion_length=32, grpo_max_steps=1, grpo_include_sft_prompts=False)
    run_dir, cfg = smoke_run(tmp_path, "sft", **over)
    counts = sft_stage(run_dir, cfg)
    sel = read_json(run_dir/"models/sft/checkpoint_selection.json")
    assert [c["epoch"] for c in sel["candidates"]] == [1.0, 2.0]            # one checkpoint per epoch
    assert all((c["k"], c["n"]) == (2, 4) for c in sel["candidates"]) and counts["checkpoint"] == sel["chosen"]
    chosen = run_dir/"models/sft/checkpoints"/sel["chosen"]
    assert file_digest(run_dir/"models/sft/merged") == file_digest(chosen/"merged")   # the kept model is the chosen one
    samples = run_dir/"models/sft/selection_samples.jsonl"
    assert len(samples.read_text().splitlines()) == 2 * 4 * 2               # checkpoints × prompts × samples
    grpo_stage(*open_run(run_dir, "smoke", over, "grpo"))                  # the grpo stage's own view of the profile
    cache = run_dir/"models/grpo/pass_rate_samples.jsonl"
    assert len(cache.read_text().splitlines()) == 16                         # GRPO's filter drew no sample of its own
    rates = [json.loads(l) for l in open(run_dir/"models/grpo/pass_rates.jsonl")]
    best = next(c for c in sel["candidates"] if c["checkpoint"] == sel["chosen"])
    assert sum(r["pass_rate"] for r in rates) / len(rates) == pytest.approx(best["pass1"])

@pytest.mark.slow
def test_sft_data_parallel_on_two_cpu_processes(tmp_path):
    run_dir, cfg = smoke_run(tmp_path, "sft")
    # accelerate 1.15 runs `--cpu --num_processes 2` as ONE process without MPI; `--multi_gpu` spawns two via torchrun,
    # and without CUDA finr1's TrainingArguments(use_cpu=True) put them on CPU with the gloo backend.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "finr1.pipeline", "stage", "sft", "--run_dir", str(run_dir), "--profile", "smoke"]
    res = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    log = read_json(run_dir/"models/sft/log.json")
    assert log["world_size"] == 2 and log["global_step"] == cfg["sft_max_steps"]
    assert (run_dir/"models/sft/merged/config.json").exists() and (run_dir/"models/sft/adapter/adapter_config.json").exists()
    assert read_manifest(run_dir)["sft"]["counts"]["steps"] == cfg["sft_max_steps"]
    # each step consumed 2 processes × sft_batch_size samples: 2 steps cover 16 samples, a full epoch (one process: half)
    samples = len(open(run_dir/"data/sft.jsonl").readlines())
    assert log["steps"][-1]["epoch"] == pytest.approx(cfg["sft_max_steps"] * 2 * cfg["sft_batch_size"] / samples)

@pytest.mark.slow
def test_grpo_resumes_from_last_checkpoint(tmp_path):
    run_dir, cfg = smoke_run(tmp_path, "grpo", grpo_max_steps=2)
    from finr1.grpo import run_stage
    first = run_stage(run_dir, cfg)
    assert first["steps"] == 2 and first["resumed_from"] is None
    ckpts = run_dir/"models/grpo/checkpoints"
    assert sorted(p.name for p in ckpts.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    shutil.rmtree(ckpts/"checkpoint-2"); shutil.rmtree(run_dir/"models/grpo/merged")   # as if killed during step 2
    again = run_stage(run_dir, cfg)
    assert again["resumed_from"] == "checkpoint-1" and again["steps"] == 2
    log = read_json(run_dir/"models/grpo/log.json")
    assert len(log["step_seconds"]) == 1                     # only step 2 was trained again
    assert [s["step"] for s in log["steps"]] == [1, 2]       # step 1's rewards come back from the checkpoint
    assert (run_dir/"models/grpo/merged/config.json").exists()

@pytest.mark.slow
def test_unsloth_code_path_trains_on_cpu(tmp_path):
    "Unsloth's documented API (FastLanguageModel.from_pretrained / get_peft_model) through the sft stage; its CPU fallback trains."
    probe = subprocess.run([sys.executable, "-c", "import unsloth"], env=ENV, capture_output=True, text=True)
    if probe.returncode: pytest.skip("unsloth not installed (GPU extra: pip install --no-deps unsloth unsloth_zoo)")
    run_dir, cfg = smoke_run(tmp_path, "sft", backend="unsloth")
    code = ("import unsloth, sys\nfrom finr1.run import load_config\nfrom finr1.sft import run_stage\n"
            "print(run_stage(sys.argv[1], load_config(sys.argv[1])))")
    res = subprocess.run([sys.executable, "-c", code, str(run_dir)], env=ENV, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    log = read_json(run_dir/"models/sft/log.json")
    assert log["backend"] == "unsloth" and log["global_step"] == cfg["sft_max_steps"]
    assert (run_dir/"models/sft/merged/config.json").exists()

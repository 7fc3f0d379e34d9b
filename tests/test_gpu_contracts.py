"""GPU contracts, checked on a CPU machine against the real packages of the pinned `[gpu]` set (`make gpu-check`).

finr1's GPU path calls into Unsloth, vLLM, TRL's vLLM settings and DeepSpeed. None of them can run a model here, but
every keyword finr1 passes and every field it reads can be checked against the installed code, and Unsloth's CPU
fallback really loads the embedded model and adds LoRA. `make gpu-check` builds `.venv-gpu` (the pinned set over
torch 2.13.0's CPU build) and runs this file there; `make test` skips it.

Each check runs in a fresh interpreter: on a machine without CUDA, importing Unsloth installs an import hook that
hides vLLM ("broken vLLM binary extension"), so the two cannot be checked in one process.
PyPI's torchvision / torchaudio are CUDA builds whose operators do not load beside torch's CPU build; the Makefile
removes them from `.venv-gpu` (a CPU-only artefact: on a GPU machine torch and torchvision match).
"""
import configparser, json, os, re, subprocess, sys, textwrap
from pathlib import Path
import pytest

pytestmark = pytest.mark.gpu_contract
ROOT = Path(__file__).resolve().parents[1]

def pins() -> dict:
    "name → version of the `[gpu]` extra in settings.ini."
    cfg = configparser.ConfigParser(delimiters=["="]); cfg.read(ROOT/"settings.ini")
    return dict(p.split("==") for p in cfg["DEFAULT"]["gpu_requirements"].split())

def run_py(code:str, timeout:int=600) -> dict:
    "Run `code` in a fresh interpreter of this environment; it prints one JSON object as its last line."
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "UNSLOTH_DISABLE_STATISTICS": "1"}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    return json.loads(r.stdout.strip().splitlines()[-1])

def test_the_pinned_set_is_installed_and_inside_declared_ranges():
    from importlib.metadata import version, requires
    from packaging.requirements import Requirement
    got = {name: version(name) for name in pins()}
    assert got == pins()
    trl_vllm = next(Requirement(r) for r in requires("trl") if r.startswith("vllm"))        # TRL's `vllm` extra
    assert trl_vllm.specifier.contains(version("vllm")), (trl_vllm, version("vllm"))
    for req in map(Requirement, requires("unsloth") or []):                                # Unsloth's caps (trl, transformers, …)
        if req.marker is None and req.name in ("trl", "transformers", "torch", "datasets", "peft", "accelerate"):
            assert req.specifier.contains(version(req.name), prereleases=True), (str(req), version(req.name))

def test_vllm_engine_sampling_outputs_and_close():
    "Every keyword finr1 gives `vllm.LLM`, `LLM.chat` and `SamplingParams`; the output fields it reads; what `close` calls."
    out = run_py("""
        import inspect, json, dataclasses
        import vllm
        from vllm import LLM, SamplingParams
        from vllm.engine.arg_utils import EngineArgs
        from vllm.outputs import RequestOutput, CompletionOutput
        from vllm.v1.engine.core_client import EngineCoreClient
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel
        from finr1.settings import load_profile
        from finr1.eval import vllm_engine_kwargs, eval_sampling, decoding_settings
        from finr1.llm import VLLMGenerator
        cfg = load_profile("paper")
        gen = VLLMGenerator("Qwen/Qwen2.5-7B-Instruct", seed=cfg["seed"], **vllm_engine_kwargs(cfg))
        engine_kw = {"model", "seed", *gen.engine_kw}
        llm_params = set(inspect.signature(LLM.__init__).parameters)
        engine_fields = {f.name for f in dataclasses.fields(EngineArgs)}
        gen = gen.with_sampling(**eval_sampling(gen, decoding_settings(cfg, "finqa")))
        sp = SamplingParams(**gen.sampling)
        chat = set(inspect.signature(LLM.chat).parameters)
        print(json.dumps(dict(version=vllm.__version__, unknown_engine_kw=sorted(k for k in engine_kw if k not in llm_params | engine_fields),
              sampling=dict(temperature=sp.temperature, top_p=sp.top_p, max_tokens=sp.max_tokens, seed=sp.seed,
                            repetition_penalty=sp.repetition_penalty),
              chat_ok=sorted({"messages", "sampling_params", "use_tqdm"} - chat),
              request_fields=sorted({"prompt_token_ids", "outputs"} - set(inspect.signature(RequestOutput.__init__).parameters)),
              completion_fields=sorted({"text", "token_ids", "finish_reason"} - set(CompletionOutput.__dataclass_fields__)),
              shutdown=hasattr(EngineCoreClient, "shutdown"))))
    """)
    assert out["unknown_engine_kw"] == [] and out["chat_ok"] == [] and out["request_fields"] == [] and out["completion_fields"] == []
    assert out["sampling"] == dict(temperature=0.7, top_p=0.8, max_tokens=8192, seed=42, repetition_penalty=1.05)   # the paper's eval settings
    assert out["shutdown"]

def test_paper_grpo_config_with_vllm():
    "The `paper` profile's `GRPOConfig`, vLLM settings included, built by the installed TRL; server mode on the port finr1 sets."
    out = run_py("""
        import json, tempfile
        from finr1.settings import load_profile
        from finr1.grpo import grpo_config
        from trl.import_utils import is_vllm_available
        with tempfile.TemporaryDirectory() as d:
            a = grpo_config(load_profile("paper"), d, use_vllm=True)
            s = grpo_config(load_profile("paper", grpo_vllm_mode="server"), d, use_vllm=True)
        print(json.dumps(dict(trl_sees_vllm=is_vllm_available(), use_vllm=a.use_vllm, mode=a.vllm_mode, util=a.vllm_gpu_memory_utilization,
              max_len=a.vllm_max_model_length, generation_batch=a.generation_batch_size, G=a.num_generations, beta=a.beta,
              server=[s.vllm_mode, s.vllm_server_host, s.vllm_server_port])))
    """)
    assert out == dict(trl_sees_vllm=True, use_vllm=True, mode="colocate", util=0.45, max_len=8192, generation_batch=32, G=8, beta=0.04,
                       server=["server", "127.0.0.1", 8010])

def test_unsloth_keywords_and_cpu_fallback_with_lora():
    "The keywords finr1 passes to `FastLanguageModel.from_pretrained` / `get_peft_model`, then the real thing on the embedded model."
    out = run_py("""
        import unsloth, inspect, json
        from unsloth import FastLanguageModel
        from finr1.settings import load_profile
        from finr1.models import embedded_model_dir, load_model, unsloth_load_kwargs
        from finr1.train import add_lora, lora_kwargs
        cfg = load_profile("smoke")
        load_kw, lora_kw = unsloth_load_kwargs("x", 1024, False), lora_kwargs(load_profile("paper"), "unsloth")
        missing = lambda f, kw: sorted(set(kw) - set(inspect.signature(f).parameters))
        model, tok = load_model("embedded", "unsloth", 1024)
        lora = add_lora(model, cfg, "unsloth")
        trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
        print(json.dumps(dict(version=unsloth.__version__, load_missing=missing(FastLanguageModel.from_pretrained, load_kw),
              lora_missing=missing(FastLanguageModel.get_peft_model, lora_kw), trainable=trainable,
              peft=type(lora).__name__, eos=tok.convert_tokens_to_ids("<|im_end|>") in lora.generation_config.eos_token_id)))
    """)
    assert out["load_missing"] == [] and out["lora_missing"] == []
    assert out["trainable"] > 0 and "Peft" in out["peft"] and out["eos"]

def test_deepspeed_zero3_config_loads():
    "configs/accelerate/zero3.yaml names a DeepSpeed ZeRO-3 plugin that the installed accelerate + deepspeed accept."
    out = run_py("""
        import json, yaml, deepspeed
        from accelerate.utils import DeepSpeedPlugin
        cfg = yaml.safe_load(open("configs/accelerate/zero3.yaml"))
        ds = cfg["deepspeed_config"]
        plugin = DeepSpeedPlugin(zero_stage=ds["zero_stage"], offload_optimizer_device=ds.get("offload_optimizer_device", "none"),
                                 offload_param_device=ds.get("offload_param_device", "none"), zero3_init_flag=ds.get("zero3_init_flag", False))
        print(json.dumps(dict(version=deepspeed.__version__, distributed_type=cfg["distributed_type"], stage=plugin.zero_stage)))
    """)
    assert out["distributed_type"] == "DEEPSPEED" and out["stage"] == 3

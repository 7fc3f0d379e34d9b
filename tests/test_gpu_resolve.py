"""pip's resolver on the `[gpu]` extra, for every Python the project claims (`make gpu-resolve`; slow, needs PyPI).

`pip install --dry-run --report` resolves from metadata only (nothing is installed, nothing big is downloaded). The set
must resolve on each Python from settings.ini's `min_python` up, and land inside the ranges its own packages declare:
vLLM inside TRL's `vllm` extra, TRL / transformers / torch / datasets / peft / accelerate inside Unsloth's caps. pip's
configuration on this machine (a local wheel folder, a torch cap) is switched off, so the resolution is a user's.
"""
import configparser, json, os, shutil, subprocess, sys, time
from pathlib import Path
import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
ini = configparser.ConfigParser(delimiters=["="]); ini.read(ROOT/"settings.ini")
MIN = ini["DEFAULT"]["min_python"]
PYTHONS = [v for v in ("3.10", "3.11", "3.12", "3.13") if tuple(map(int, v.split("."))) >= tuple(map(int, MIN.split(".")))][:3]
PINS = dict(p.split("==") for p in ini["DEFAULT"]["gpu_requirements"].split())

def interpreter(v:str) -> str|None:
    "A working `pythonX.Y`: pyenv's, else on PATH (a pyenv shim for a version not selected does not run)."
    for py in [*map(str, sorted(Path.home().glob(f".pyenv/versions/{v}.*/bin/python"))), shutil.which(f"python{v}")]:
        if py and subprocess.run([py, "-c", "pass"], capture_output=True).returncode == 0: return py
    return None

def resolve(py:str, tmp:Path) -> dict:
    "The installed set pip's resolver picks for `.[gpu]` under interpreter `py`: name → (version, requires_dist)."
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"} | {"PIP_CONFIG_FILE": os.devnull}
    subprocess.run([py, "-m", "venv", str(tmp/"venv")], check=True)
    pip = [str(tmp/"venv"/"bin"/"python"), "-m", "pip"]
    subprocess.run(pip + ["install", "-q", "--upgrade", "pip"], check=True, env=env, timeout=600)
    r = subprocess.run(pip + ["install", "--dry-run", "--ignore-installed", "-q", "--report", str(tmp/"report.json"), f"{ROOT}[gpu]"],
                       capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, f"[gpu] does not resolve on {py}:\n{r.stderr[-3000:]}"
    report = json.loads((tmp/"report.json").read_text())
    return {i["metadata"]["name"].lower().replace("_", "-"): (i["metadata"]["version"], i["metadata"].get("requires_dist") or [])
            for i in report["install"]}

def within(pkgs:dict, owner:str, names:tuple) -> list[str]:
    "The requirements of `owner` (unconditional, or its `vllm` extra) on `names` that the resolved versions break."
    bad = []
    for req in map(Requirement, pkgs[owner][1]):
        if req.name.lower() in names and (req.marker is None or req.marker.evaluate({"extra": "vllm"})):
            have = pkgs[req.name.lower()][0]
            if not req.specifier.contains(have, prereleases=True): bad.append(f"{owner} wants {req}, resolved {have}")
    return bad

@pytest.mark.parametrize("version", PYTHONS)
def test_gpu_extra_resolves_inside_declared_ranges(version, tmp_path):
    py = interpreter(version)
    if py is None: pytest.skip(f"no python{version} on this machine")
    t0 = time.time()
    pkgs = resolve(py, tmp_path)
    print(f"\n[gpu] on Python {version}: {len(pkgs)} packages in {time.time() - t0:.0f} s; "
          + ", ".join(f"{n} {pkgs[n][0]}" for n in ("torch", "vllm", "unsloth", "trl", "transformers", "deepspeed")))
    assert {n: pkgs[n.lower().replace("_", "-")][0] for n in PINS} == PINS
    assert within(pkgs, "trl", ("vllm",)) == []
    assert within(pkgs, "unsloth", ("trl", "transformers", "torch", "datasets", "peft", "accelerate")) == []
    assert within(pkgs, "vllm", ("torch", "transformers")) == []

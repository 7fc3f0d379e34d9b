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
    from finr1.core import STAGES
    for nb in STAGES.values():
        cells = [c for c in json.loads((ROOT/"nbs"/f"{nb}.ipynb").read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(cells) == 1, nb
        with caplog.at_level(logging.WARNING, logger="papermill"):
            names = [p.name for p in PythonTranslator.inspect(nbformat.v4.new_code_cell("".join(cells[0]["source"])))]
        assert names == ["profile", "run_dir", "overrides"], (nb, names)
    assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()]

def test_lessons_never_depend_on_the_generator_a_machine_picks():
    """Outside `00a_llm` (which defines the generators and teaches each one), no lesson or demo cell names a generator
    class, and no cell anywhere reads a generator's private state: on a CUDA machine with vLLM, `make_generator` and
    `local_generator` return a vLLM engine, and a cell that assumed transformers would stop papermill there."""
    import json, re
    bad = []
    for nb in sorted((ROOT/"nbs").glob("*.ipynb")):
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            src = "".join(c["source"])
            if c["cell_type"] != "code" or src.lstrip().startswith("#| export"): continue
            if re.search(r"\._(lm|tok|llm)\b|type\([^)]*\)\.__name__\s*[,=)]", src) and "Generator" in src: bad.append(f"{nb.name} cell {i}: private state")
            if nb.name != "00a_llm.ipynb" and re.search(r"\b(HFGenerator|VLLMGenerator|OpenAIGenerator)\b", src): bad.append(f"{nb.name} cell {i}: a generator class")
    assert bad == []

def test_gpu_smoke_script_parses():
    "`make gpu-smoke` runs scripts/gpu_smoke.sh on a GPU machine; here it must at least be valid bash."
    import subprocess
    r = subprocess.run(["bash", "-n", str(ROOT/"scripts"/"gpu_smoke.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

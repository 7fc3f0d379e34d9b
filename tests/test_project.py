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

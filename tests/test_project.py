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

"""The notebook harness: conventions every committed notebook keeps, and a second seed.

nbval (run by `make test` on notebooks/) re-executes each notebook with its
committed parameters and compares the outputs of cells tagged
``nbval-check-output``. Here each notebook is executed once more with papermill
and SEED=1: every assertion a notebook makes must hold for another seed too.
"""

import json
import re
from pathlib import Path

import nbformat
import pytest

from tools.course import CELL_TIMEOUT_SECONDS, ROOT, list_notebooks, run_papermill

NOTEBOOKS = list_notebooks(ROOT / "notebooks")
IDS = [p.name for p in NOTEBOOKS]
SIZE_BUDGET_BYTES = 1_500_000


def test_there_is_a_course():
    assert NOTEBOOKS, "notebooks/ holds no NN_name.ipynb notebooks"
    assert NOTEBOOKS[0].name == "00_start_here.ipynb"


def test_no_stray_notebooks():
    names = [p.name for p in (ROOT / "notebooks").glob("*.ipynb")]
    bad = [n for n in names if not re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n)]
    assert not bad, f"notebooks must be named NN_short_name.ipynb: {bad}"
    numbers = [n[:2] for n in names]
    assert len(numbers) == len(set(numbers)), f"two notebooks share a number: {sorted(names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_conventions(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), (
        "first cell must be a markdown title"
    )
    text = first.source.lower()
    for needed in ("what you will learn", "prerequisites", "expected run time"):
        assert needed in text, f"first cell must state '{needed}'"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell must be tagged 'parameters'"
    assert re.search(r"^SEED\s*=", params[0].source, re.M) and re.search(r"^SCALE\s*=", params[0].source, re.M)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), "outputs must come from one clean in-order run (make execute)"
    errors = [i for i, c in enumerate(code) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"code cells {errors} store error outputs"
    checked = [
        c for c in code if "nbval-check-output" in c.metadata.get("tags", []) or "# NBVAL_CHECK_OUTPUT" in c.source
    ]
    assert checked, "tag at least one deterministic cell 'nbval-check-output' so nbval compares something"
    asserts = [c for c in code if re.search(r"^\s*assert\b", c.source, re.M)]
    assert asserts, "a notebook checks its claims with assert statements"
    assert "setup(SEED" in "".join(c.source for c in code), "seed the notebook through isodl.setup(SEED, SCALE)"
    size = path.stat().st_size
    assert size <= SIZE_BUDGET_BYTES, f"{path.name} is {size / 1e6:.2f} MB; keep figures light"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_papermill_sees_every_parameter(path: Path):
    """`papermill --help-notebook` must list every name the parameters cell assigns.

    papermill skips a line holding more than one '=' (for instance a comment
    such as ``# arccos(0.8) = 37 degrees``), which hides that parameter from
    teachers who inspect a notebook before running it with -p.
    """
    from papermill.inspection import _infer_parameters
    from papermill.iorw import load_notebook_node

    nb = load_notebook_node(str(path))
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = re.findall(r"^([A-Za-z_]\w*)\s*=", cell.source, re.M)
    inferred = [p.name for p in _infer_parameters(nb)]
    hidden = sorted(set(assigned) - set(inferred))
    assert not hidden, f"papermill cannot parse the parameters {hidden} (keep one '=' per line)"


def test_readme_lists_every_notebook_with_a_run_time():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        row = next((line for line in readme.splitlines() if path.name in line and line.startswith("|")), None)
        assert row, f"README's notebook table has no row for {path.name}"
        assert re.search(r"\d+\s*s\b", row), f"README row for {path.name} has no measured run time"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_claims_hold_for_another_seed(path: Path, tmp_path: Path):
    run_papermill(path, tmp_path / path.name, {"SEED": 1}, timeout=CELL_TIMEOUT_SECONDS)
    out = json.loads((tmp_path / path.name).read_text())
    injected = [c for c in out["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "SEED = 1" in "".join(injected[0]["source"])

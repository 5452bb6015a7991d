"""The execute and benchmark commands, on a tiny notebook written here."""

import nbformat
import pytest

from isodl.core import coursemap
from tools import course


def tiny_notebook(path, body="x = SEED * 2\nprint(x)"):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SEED = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.notebooks
def test_execute_in_place_stores_one_clean_run(tmp_path):
    path = tiny_notebook(tmp_path / "00_tiny.ipynb")
    seconds = course.execute_in_place(path)
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2]
    assert code[1].outputs[0]["text"] == "0\n"
    assert seconds > 0
    assert all("execution" not in c.metadata for c in code)  # no timing noise in committed files


@pytest.mark.notebooks
def test_run_course_writes_the_runtime_report(tmp_path):
    good = tiny_notebook(tmp_path / "00_good.ipynb")
    bad = tiny_notebook(tmp_path / "01_bad.ipynb", body="assert SEED == 0, 'claim fails for this seed'")
    report = tmp_path / "runtimes.md"
    rows = course.run_course([good, bad], out=tmp_path / "out", report=report, parameters={"SEED": 1})
    assert [r["status"] == "ok" for r in rows] == [True, False]
    assert "claim fails" in rows[1]["status"] or "AssertionError" in rows[1]["status"]
    assert rows[0]["seconds"] > 0 and rows[0]["peak_mb"] > 10  # a kernel uses tens of MB
    text = report.read_text()
    assert "| 00_good.ipynb |" in text and "| 01_bad.ipynb |" in text and "peak memory" in text
    assert (tmp_path / "out" / "00_good.ipynb").exists()


def test_list_notebooks_and_missing_folder(tmp_path):
    tiny_notebook(tmp_path / "01_b.ipynb")
    tiny_notebook(tmp_path / "00_a.ipynb")
    (tmp_path / "scratch.ipynb").write_text("{}")
    assert [p.name for p in course.list_notebooks(tmp_path)] == ["00_a.ipynb", "01_b.ipynb"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        course.list_notebooks(tmp_path / "nope")


def test_parameter_parsing():
    assert course._parse_params(["SEED=1", "SCALE=paper", "LR=0.1"]) == {"SEED": 1, "SCALE": "paper", "LR": 0.1}
    with pytest.raises(SystemExit):
        course._parse_params(["SEED"])


def test_course_map_names_the_code_behind_every_notebook():
    text = coursemap.course_map()
    lines = text.splitlines()
    assert lines[0] == "| notebook | title | what it teaches | code |"
    assert len(lines) == 2 + len(coursemap.COURSE_MAP)
    for stem, _title, _teaches, code in coursemap.COURSE_MAP:
        row = next(line for line in lines if line.startswith(f"| {stem}.ipynb"))
        assert f"`{code}`" in row and "(planned)" not in row  # every listed notebook exists
        package = code.split()[0].rstrip(",")
        __import__(package)  # the named subpackage is importable
    assert coursemap.code_for("07") == "isodl.topology (network, schedules)"
    assert coursemap.code_for("11_forward_sensitivity.ipynb") == "isodl.recurrent"
    with pytest.raises(ValueError, match="not in the course map"):
        coursemap.code_for("99")
    with pytest.raises(TypeError, match="notebook"):
        coursemap.code_for(7)


def test_every_module_docstring_opens_with_the_notebooks_it_serves():
    import pathlib
    import re

    import isodl

    root = pathlib.Path(isodl.__file__).parent
    bad = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == root:
            continue
        doc = path.read_text().lstrip()
        first = doc.split("\n", 1)[0]
        if not re.match(r'"""(Notebooks? \d\d(-\d\d)?|Every notebook)', first):
            bad.append(f"{path.relative_to(root)}: {first[:60]}")
    assert not bad, "module docstrings must open with the notebooks they serve:\n" + "\n".join(bad)

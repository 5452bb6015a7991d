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
    # the longest cell, from papermill's per-cell timing; the failed cell still has its time
    assert rows[0]["longest_cell"] in (0, 1) and 0 <= rows[0]["longest_cell_seconds"] < course.CELL_BUDGET_SECONDS
    assert rows[1]["longest_cell"] in (0, 1)
    assert "longest cell" in text and "cell budget" in text and "Longest cell:" in text


@pytest.mark.notebooks
def test_cell_times_reads_papermills_per_cell_timing(tmp_path):
    src = tiny_notebook(tmp_path / "00_slow.ipynb", body="import time\ntime.sleep(0.5)")
    nb = nbformat.read(src, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_markdown_cell("A quick cell, then a slow one."))
    nb.cells.insert(3, nbformat.v4.new_code_cell("y = 1"))
    nbformat.write(nb, src)
    dst = tmp_path / "out.ipynb"
    course.run_papermill(src, dst, {"SEED": 1})  # papermill injects a parameters cell: not counted
    times = course.cell_times(dst)
    assert [i for i, _ in times] == [0, 1, 2]  # nbval's numbering: code cells of the source, from 0
    assert times[2][1] >= 0.5 and all(s < 0.5 for _, s in times[:2])
    assert course.longest_cell(dst) == times[2]


def _timed_cell(source, **papermill):
    cell = nbformat.v4.new_code_cell(source)
    if papermill:
        cell.metadata["papermill"] = papermill
    return cell


def test_cell_times_without_a_kernel(tmp_path):
    nb = nbformat.v4.new_notebook()
    injected = _timed_cell("SEED = 1", duration=0.01)
    injected.metadata["tags"] = ["injected-parameters"]
    nbclient_only = nbformat.v4.new_code_cell("b = 2")
    nbclient_only.metadata["execution"] = {
        "iopub.execute_input": "2025-01-01T00:00:00.000000Z",
        "shell.execute_reply": "2025-01-01T00:00:02.500000Z",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        _timed_cell("SEED = 0", duration=0.1),
        injected,
        _timed_cell("a = 1", start_time="2025-01-01T00:00:00.000000", end_time="2025-01-01T00:00:31.000000"),
        nbformat.v4.new_markdown_cell("text"),
        nbclient_only,
        _timed_cell("never ran", duration=None, start_time=None, end_time=None),
    ]
    path = tmp_path / "timed.ipynb"
    nbformat.write(nb, path)
    assert course.cell_times(path) == [(0, 0.1), (1, 31.0), (2, 2.5)]
    assert course.longest_cell(path) == (1, 31.0)
    untimed = tmp_path / "untimed.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")]), untimed)
    assert course.cell_times(untimed) == [] and course.longest_cell(untimed) is None


def test_report_states_the_cell_budget_without_failing(tmp_path):
    rows = [
        {
            "notebook": "00_a.ipynb",
            "seconds": 20.0,
            "peak_mb": 300,
            "status": "ok",
            "longest_cell": 3,
            "longest_cell_seconds": 12.0,
        },
        {
            "notebook": "01_b.ipynb",
            "seconds": 70.0,
            "peak_mb": 300,
            "status": "ok",
            "longest_cell": 10,
            "longest_cell_seconds": 47.0,
        },
        {
            "notebook": "02_c.ipynb",
            "seconds": float("nan"),
            "peak_mb": float("nan"),
            "status": "FAILED: x",
            "longest_cell": None,
            "longest_cell_seconds": float("nan"),
        },
        {
            "notebook": "03_d.ipynb",
            "seconds": 5.0,
            "peak_mb": 300,
            "status": "FAILED: AssertionError",
            "longest_cell": 1,
            "longest_cell_seconds": 2.0,
        },
    ]
    report = tmp_path / "runtimes.md"
    course._write_report(rows, report, None)
    text = report.read_text()
    assert "| 00_a.ipynb | 20.0 | ok | cell 3 | 12.0 | ok |" in text
    assert "| 01_b.ipynb | 70.0 | over 60 s | cell 10 | 47.0 | OVER 30 s |" in text
    assert "| 02_c.ipynb | nan | n/a | n/a | nan | n/a |" in text
    assert "| 03_d.ipynb | 5.0 | ok | cell 1 | 2.0 | ok so far (run failed) |" in text
    assert "Longest cell: 01_b.ipynb cell 10, 47.0 s; over the 30 s cell budget: 01_b.ipynb." in text
    assert "Not timed past their failure: 02_c.ipynb, 03_d.ipynb." in text


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

"""The execute and benchmark commands, on a tiny notebook written here."""

from pathlib import Path

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
    assert coursemap.code_for("13_forward_sensitivity.ipynb") == "isodl.recurrent"
    with pytest.raises(ValueError, match="not in the course map"):
        coursemap.code_for("99")
    with pytest.raises(TypeError, match="notebook"):
        coursemap.code_for(7)


# --- run --scale paper (make paper) -------------------------------------------------------------------

SCALE_PROBE = (
    "import os\n"
    "from isodl.core.config import resolve_scale\n"
    "print(SCALE, os.environ.get('ISODL_SCALE'), resolve_scale(SCALE))\n"
    "assert resolve_scale(SCALE) == 'paper', 'the kernel runs at course scale'"
)


def scale_notebook(path, body=SCALE_PROBE):
    """A tiny notebook whose parameters cell says SCALE = "course", as every course notebook's does."""
    tiny_notebook(path, body)
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = 'SEED = 0\nSCALE = "course"'
    nbformat.write(nb, path)
    return path


@pytest.mark.notebooks
def test_run_course_at_paper_scale(tmp_path, monkeypatch):
    monkeypatch.delenv("ISODL_SCALE", raising=False)
    src = scale_notebook(tmp_path / "00_scale.ipynb")
    report = tmp_path / "runtimes_paper.md"
    rows = course.run_course([src], out=tmp_path / "paper", report=report, scale="paper")
    assert rows[0]["status"] == "ok", rows[0]["status"]
    out = nbformat.read(tmp_path / "paper" / "00_scale.ipynb", as_version=4)
    injected = [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'SCALE = "paper"' in injected[0].source
    printed = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.outputs)
    assert "paper paper paper" in printed  # the parameter, ISODL_SCALE and what isodl.setup resolves
    text = report.read_text()
    assert text.startswith('# Notebook run times at SCALE="paper"')
    assert "`make paper`" in text and "SCALE=paper," in text
    row = next(line for line in text.splitlines() if line.startswith("| 00_scale.ipynb |")).split(" | ")
    assert row[2] == row[5] == "n/a (paper scale)" and row[-1] == "ok |"  # budget columns, status
    assert "over 60" not in text and "OVER" not in text
    assert "Run in progress" not in text  # finished: nothing left to run
    # ISODL_SCALE alone (no --scale) also runs at paper scale, and the report says so
    monkeypatch.setenv("ISODL_SCALE", "paper")
    rows = course.run_course([src], out=tmp_path / "env", report=report)
    assert rows[0]["status"] == "ok", rows[0]["status"]
    assert report.read_text().startswith('# Notebook run times at SCALE="paper"')


def test_run_course_passes_the_scale_to_the_kernel(tmp_path, monkeypatch):
    """Without a kernel: what run_course hands each child process for --scale paper, and the report."""
    import json

    monkeypatch.delenv("ISODL_SCALE", raising=False)
    calls = []

    class Done:
        stdout = '{"seconds": 125.0, "peak_mb": 900, "status": "ok"}\n'
        stderr = ""

    def fake_run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        return Done()

    monkeypatch.setattr(course.subprocess, "run", fake_run)
    first, second = tiny_notebook(tmp_path / "00_a.ipynb"), tiny_notebook(tmp_path / "01_b.ipynb")
    report = tmp_path / "runtimes_paper.md"
    rows = course.run_course([first, second], out=tmp_path / "out", report=report, scale="paper")
    assert [r["notebook"] for r in rows] == ["00_a.ipynb", "01_b.ipynb"]
    for cmd, kwargs in calls:
        assert json.loads(cmd[cmd.index("_one") + 3]) == {"SCALE": "paper"}  # papermill parameter
        assert cmd[cmd.index("--timeout") + 1] == str(course.PAPER_CELL_TIMEOUT_SECONDS)
        assert kwargs["env"]["ISODL_SCALE"] == "paper"  # the kernel inherits it: wins over the parameters cell
    text = report.read_text()
    assert "| 00_a.ipynb | 125.0 | n/a (paper scale) |" in text and "OVER" not in text and "over 60" not in text
    assert "Total: 250.0 s for 2 notebook(s)." in text
    calls.clear()
    course.run_course([first], out=tmp_path / "out", report=tmp_path / "r.md", parameters={"SEED": 1})
    cmd, kwargs = calls[0]
    assert json.loads(cmd[cmd.index("_one") + 3]) == {"SEED": 1} and "ISODL_SCALE" not in kwargs["env"]
    assert cmd[cmd.index("--timeout") + 1] == str(course.CELL_TIMEOUT_SECONDS)
    assert "| 00_a.ipynb | 125.0 | OVER 90 s |" in (tmp_path / "r.md").read_text()  # course budgets apply
    with pytest.raises(ValueError, match="scale must be one of"):
        course.run_course([first], out=tmp_path / "out", report=report, scale="huge")


def test_report_at_paper_scale_has_no_budget_verdicts(tmp_path):
    rows = [
        {"notebook": "00_a.ipynb", "seconds": 20.0, "peak_mb": 300, "status": "ok", "longest_cell": 3,
         "longest_cell_seconds": 12.0},
        {"notebook": "01_b.ipynb", "seconds": 700.0, "peak_mb": 300, "status": "ok", "longest_cell": 10,
         "longest_cell_seconds": 470.0},
        {"notebook": "02_c.ipynb", "seconds": 5.0, "peak_mb": 300, "status": "FAILED: AssertionError",
         "longest_cell": 1, "longest_cell_seconds": 2.0},
    ]  # fmt: skip
    report = tmp_path / "runtimes_paper.md"
    course._write_report(rows, report, {"SCALE": "paper"}, scale="paper", pending=["03_d.ipynb"])
    text = report.read_text()
    assert text.startswith('# Notebook run times at SCALE="paper"')
    assert "| 01_b.ipynb | 700.0 | n/a (paper scale) | cell 10 | 470.0 | n/a (paper scale) |" in text
    assert "| 02_c.ipynb | 5.0 | n/a (paper scale) | cell 1 | 2.0 | n/a (paper scale), so far (run failed) |" in text
    assert "over 60" not in text and "OVER" not in text and "within the 30 s" not in text
    assert "course-scale budgets" in text
    assert "Longest cell: 01_b.ipynb cell 10, 470.0 s; no cell budget at paper scale." in text
    assert "Run in progress; still to run: 03_d.ipynb." in text
    course._write_report(rows[:1], report, None)  # no scale given, no ISODL_SCALE: course scale, budgets apply
    assert report.read_text().startswith('# Notebook run times at SCALE="course"')


def test_effective_scale_and_the_scale_option():
    from isodl.core.config import SCALES

    assert course.effective_scale({}, {}) == "course"
    assert course.effective_scale({"SCALE": "paper"}, {}) == "paper"
    assert course.effective_scale({"SCALE": "course"}, {"ISODL_SCALE": "paper"}) == "paper"  # as resolve_scale
    assert course.SCALES == SCALES
    with pytest.raises(SystemExit):
        course.main(["run", "--scale", "huge"])


def test_make_paper_runs_every_notebook_at_paper_scale_outside_make_test():
    makefile = (course.ROOT / "Makefile").read_text()
    recipe = makefile.split("\npaper:", 1)[1].split("\n\n", 1)[0]
    assert "tools.course run --scale paper" in recipe
    assert "--out build/paper" in recipe and "--report build/runtimes_paper.md" in recipe
    assert "make paper" in makefile.split("\nhelp:", 1)[1].split("\n\n", 1)[0]  # a help line
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "paper" not in test_recipe


# --------------------------------------------------------------------------- one source of truth for run times


def _timed_notebook(path: Path, first: str, seconds: int | None) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(first), nbformat.v4.new_code_cell("1")])
    if seconds is not None:
        nb.metadata[course.RUN_TIME_KEY] = {"run_seconds": seconds}
    nbformat.write(nb, path)
    return path


def test_write_run_times_and_problems(tmp_path):
    a = _timed_notebook(tmp_path / "00_a.ipynb", "# A\n\n**Expected run time:** about 3 s (old).\n\nMore.", 12)
    b = _timed_notebook(tmp_path / "01_b.ipynb", "# B\n\nNo sentence yet.", 40)
    c = _timed_notebook(tmp_path / "02_c.ipynb", "# C", None)
    readme = tmp_path / "README.md"
    readme.write_text(
        "Intro\n\n| notebook | what | run time |\n|---|---|---|\n"
        "| [00_a.ipynb](notebooks/00_a.ipynb) | x | 3 s |\n| [01_b.ipynb](notebooks/01_b.ipynb) | y | 9 s |\n\nEnd\n"
    )
    problems = course.run_time_problems([a, b, c], readme)
    assert any("00_a.ipynb: the first cell does not say the recorded 12 s" in p for p in problems)
    assert any("01_b.ipynb: README says '9 s', recorded 40 s" in p for p in problems)
    assert any("02_c.ipynb: no recorded run time" in p for p in problems)
    changed = course.write_run_times([a, b, c], readme)
    assert set(changed) == {
        "00_a.ipynb: first cell",
        "00_a.ipynb: README",
        "01_b.ipynb: first cell",
        "01_b.ipynb: README",
    }
    assert course.run_time_problems([a, b], readme) == []
    first = nbformat.read(a, as_version=4).cells[0].source
    assert course.RUN_TIME_SENTENCE.format(seconds=12) in first and "(old)" not in first and first.endswith("More.")
    assert "| [01_b.ipynb](notebooks/01_b.ipynb) | y | 40 s |" in readme.read_text()
    assert readme.read_text().endswith("End\n")
    assert course.write_run_times([a, b], readme) == []  # idempotent


def test_run_times_agree_everywhere():
    """The run time recorded by `make execute` is what each first cell and the README say."""
    problems = course.run_time_problems()
    assert not problems, "run `python -m tools.course runtimes` after executing:\n" + "\n".join(problems)


def test_run_times_respect_escaped_pipes_and_reject_broken_rows(tmp_path):
    nb = _timed_notebook(tmp_path / "00_a.ipynb", "# A", 7)
    readme = tmp_path / "README.md"
    readme.write_text(
        "| notebook | what | run time |\n|---|---|---|\n| [00_a.ipynb](notebooks/00_a.ipynb) | E\\|c4\\| | 3 s |\n"
    )
    course.write_run_times([nb], readme)
    assert "| [00_a.ipynb](notebooks/00_a.ipynb) | E\\|c4\\| | 7 s |" in readme.read_text()
    readme.write_text(
        "| notebook | what | run time |\n|---|---|---|\n| [00_a.ipynb](notebooks/00_a.ipynb) | E|c4| | 3 s |\n"
    )
    with pytest.raises(ValueError, match="README line 3 has 5 cells, its table 3"):
        course.run_time_problems([nb], readme)

"""Tests of tools.student: student copies of notebooks and running their exercises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools import student
from tools.student import (
    EXPECTED_OUTPUT_TEXT,
    INSTRUCTOR_HEADING,
    Exercise,
    fallback_check_source,
    find_exercises,
    make_instructor_copies,
    make_instructor_copy,
    make_student_copies,
    make_student_copy,
    run_exercise,
    solution_regions,
    strip_solutions,
)

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"

EXERCISE = '''\
def unit_rows(x):
    """Scale every row of x to length 1 (zero rows stay zero)."""
    ### BEGIN SOLUTION
    norm = torch.sqrt((x ** 2).sum(dim=-1, keepdim=True))
    safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    return x / safe  # SECRET-LINE
    ### END SOLUTION'''

CHECK = "checks.check_unit_rows(unit_rows)"


def synthetic_notebook():
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# Start here\nWrite `unit_rows` below."),
        new_code_cell(
            "x = torch.ones(2, 3)\nprint(x.shape)",
            execution_count=1,
            outputs=[new_output("stream", name="stdout", text="torch.Size([2, 3])\n")],
        ),
        new_code_cell(EXERCISE, execution_count=2, metadata={"tags": ["exercise"]}),
        new_code_cell(
            CHECK,
            execution_count=3,
            outputs=[new_output("execute_result", data={"text/plain": "PASS"}, execution_count=3)],
            metadata={"tags": ["check"]},
        ),
    ]
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2, "version_minor": 0}
    }
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.validate(nb)
    return nb


@pytest.fixture
def teacher_path(tmp_path):
    path = tmp_path / "teacher" / "00_demo.ipynb"
    path.parent.mkdir()
    nbformat.write(synthetic_notebook(), path)
    return path


# --------------------------------------------------------------------------- regions


def test_solution_regions_and_strip():
    src = "a = 1\n  ### BEGIN SOLUTION\n  b = 2\n  ### END SOLUTION\nc = 3\n### BEGIN SOLUTION\nd = 4\n### END SOLUTION"
    assert solution_regions(src) == [(1, 3), (5, 7)]
    out = strip_solutions(src)
    assert out.split("\n") == [
        "a = 1",
        "  # YOUR CODE HERE",
        '  raise NotImplementedError("Exercise: write your solution here, then run the check cell below.")',
        "c = 3",
        "# YOUR CODE HERE",
        'raise NotImplementedError("Exercise: write your solution here, then run the check cell below.")',
    ]
    assert strip_solutions("x = 1\n") == "x = 1\n"
    assert solution_regions("") == []


@pytest.mark.parametrize(
    "src",
    [
        "### END SOLUTION",
        "### BEGIN SOLUTION\nx = 1",
        "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION",
        "x = 1  ### BEGIN SOLUTION\n### END SOLUTION",
        "### begin solution\nx = 1\n### END SOLUTION",
    ],
)
def test_bad_markers_raise_naming_the_cell(src):
    with pytest.raises(ValueError, match="demo.ipynb, cell 4"):
        solution_regions(src, cell="demo.ipynb, cell 4")
    with pytest.raises(ValueError):
        strip_solutions(src)


# --------------------------------------------------------------------------- student copy


def test_make_student_copy(teacher_path, tmp_path):
    dst = tmp_path / "student" / "00_demo.ipynb"
    assert make_student_copy(teacher_path, dst) == 1
    nb = nbformat.read(dst, as_version=4)
    nbformat.validate(nb)
    text = dst.read_text()
    assert "SECRET-LINE" not in text and "torch.sqrt" not in text
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "widgets" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.cells[2].metadata["tags"] == ["exercise"] and nb.cells[3].metadata["tags"] == ["check"]
    assert nb.cells[0].source == "# Start here\nWrite `unit_rows` below."
    assert nb.cells[3].source == student.fallback_check_source(CHECK)
    # The stub keeps the docstring and raises when called.
    ns = {"torch": __import__("torch")}
    exec(nb.cells[2].source, ns)
    assert ns["unit_rows"].__doc__.startswith("Scale every row")
    with pytest.raises(NotImplementedError, match="Exercise"):
        ns["unit_rows"](ns["torch"].ones(2, 2))
    # The teacher notebook is untouched and cannot be overwritten.
    assert "SECRET-LINE" in teacher_path.read_text()
    with pytest.raises(ValueError, match="dst"):
        make_student_copy(teacher_path, teacher_path)


def test_run_exercise_teacher_passes_student_fails(teacher_path, capsys):
    (exercise,) = find_exercises(nbformat.read(teacher_path, as_version=4), name="00_demo.ipynb")
    assert isinstance(exercise, Exercise)
    assert (exercise.cell_index, exercise.check_index) == (2, 3)
    assert exercise.solution_source == EXERCISE and exercise.check_source == CHECK
    assert "SECRET-LINE" not in exercise.student_source
    teacher = run_exercise(exercise, student=False)
    assert teacher.passed, teacher.message
    stub = run_exercise(exercise, student=True)
    assert not stub.passed and "not done yet" in stub.message
    assert capsys.readouterr().out == ""  # silenced
    run_exercise(exercise, student=False, verbose=True)
    assert capsys.readouterr().out.startswith("PASS: unit_rows")


def test_run_exercise_with_setup_lines_in_check_cell():
    nb = new_notebook(
        cells=[
            new_code_cell(
                "def unit_rows(x):\n"
                "    ### BEGIN SOLUTION\n"
                "    n = x.norm(dim=-1, keepdim=True)\n"
                "    ### END SOLUTION\n"
                "    ### BEGIN SOLUTION\n"
                "    return torch.where(n > 0, x / n, torch.zeros_like(x))\n"
                "    ### END SOLUTION"
            ),
            new_code_cell("fn = unit_rows\nresult = checks.check_unit_rows(fn, seed=3)\nresult"),
        ]
    )
    (exercise,) = find_exercises(nb)
    assert exercise.student_source.count("raise NotImplementedError") == 2
    assert run_exercise(exercise, student=False).passed
    assert not run_exercise(exercise, student=True).passed
    nb.cells[1].source = "checks.check_unit_rows(unit_rows);"  # ';' hides the repr in Jupyter
    (exercise,) = find_exercises(nb)
    assert run_exercise(exercise, student=False).passed
    nb.cells[1].source = "result = checks.check_unit_rows(unit_rows)"  # no final expression
    (exercise,) = find_exercises(nb)
    with pytest.raises(ValueError, match="must end with"):
        run_exercise(exercise, student=False)


def test_exercise_without_check_cell_raises():
    nb = new_notebook(
        cells=[
            new_code_cell(EXERCISE),
            new_markdown_cell("no check here"),
            new_code_cell("print('not a check')"),
        ]
    )
    with pytest.raises(ValueError, match=r"lonely\.ipynb, cell 0"):
        find_exercises(nb, name="lonely.ipynb")
    nb.cells = nb.cells[:1]
    with pytest.raises(ValueError, match="cell 0"):
        find_exercises(nb)


def test_unmatched_marker_in_notebook_raises(tmp_path):
    nb = new_notebook(cells=[new_markdown_cell("hi"), new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1")])
    src = tmp_path / "broken.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(ValueError, match=r"broken\.ipynb, cell 1"):
        make_student_copy(src, tmp_path / "out" / "broken.ipynb")
    assert not (tmp_path / "out" / "broken.ipynb").exists()


def test_make_student_copies_and_cli(teacher_path, tmp_path):
    src_dir = teacher_path.parent
    checkpoints = src_dir / ".ipynb_checkpoints"
    checkpoints.mkdir()
    nbformat.write(synthetic_notebook(), checkpoints / "00_demo-checkpoint.ipynb")
    nbformat.write(new_notebook(cells=[new_markdown_cell("just text")]), src_dir / "01_text.ipynb")

    counts = make_student_copies(src_dir, tmp_path / "copies")
    assert counts == {"00_demo.ipynb": 1, "01_text.ipynb": 0}
    assert not (tmp_path / "copies" / ".ipynb_checkpoints").exists()

    out_dir = tmp_path / "cli_out"
    assert student.main([str(src_dir), str(out_dir)]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["00_demo.ipynb", "01_text.ipynb"]

    out_dir2 = tmp_path / "cli_out2"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.student", str(src_dir), str(out_dir2)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("00_demo.ipynb: 1 exercise stripped")
    assert lines[1].startswith("01_text.ipynb: 0 exercises stripped")
    assert "SECRET-LINE" not in (out_dir2 / "00_demo.ipynb").read_text()

    assert student.main([str(tmp_path / "missing"), str(out_dir)]) == 1


# --------------------------------------------------------------------------- run all: fallbacks, expected output, instructor copy

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def test_fallback_check_source_forms():
    assert fallback_check_source("checks.check_unit_rows(unit_rows)").split("\n") == [
        student.FALLBACK_COMMENT,
        "unit_rows = checks.check_unit_rows(unit_rows).fallback(unit_rows)",
    ]
    got = fallback_check_source("x = 1\nchecks.check_unit_rows(fn, seed=3);")
    assert got.split("\n") == [
        "x = 1",
        student.FALLBACK_COMMENT,
        "fn = checks.check_unit_rows(fn, seed=3).fallback(fn)",
    ]
    for bad in ("print(1)", "result = checks.check_unit_rows(unit_rows)", "checks.check_unit_rows(lambda x: x)", ""):
        with pytest.raises(ValueError, match=r"demo, cell 4: a check cell must end with"):
            fallback_check_source(bad, cell="demo, cell 4")


def test_check_result_fallback(capsys):
    from isodl.core import checks, ops

    def wrong(x):
        return x

    assert checks.check_unit_rows(ops.unit_rows, verbose=False).fallback(ops.unit_rows) is ops.unit_rows
    capsys.readouterr()
    result = checks.check_unit_rows(wrong, verbose=False)
    assert result.fallback(wrong) is ops.unit_rows
    assert "NOTE: unit_rows did not pass yet" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no reference"):
        student.CheckResult(name="x", passed=False, message="FAIL", trials=1).fallback(wrong)


def test_student_copy_runs_all_with_the_reference_and_keeps_expected_figures(tmp_path):
    nb = synthetic_notebook()
    nb.cells.append(new_code_cell("y = unit_rows(torch.ones(2, 2))\nprint(round(float(y.norm(dim=1).sum()), 4))"))
    figure = new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})
    nb.cells.append(new_code_cell("show()", execution_count=5, outputs=[figure]))
    src = tmp_path / "00_demo.ipynb"
    nbformat.write(nb, src)
    dst = tmp_path / "student" / "00_demo.ipynb"
    make_student_copy(src, dst)
    out = nbformat.read(dst, as_version=4)
    nbformat.validate(out)
    expected = [c for c in out.cells if "expected-output" in c.metadata.get("tags", [])]
    assert len(expected) == 1 and out.cells.index(expected[0]) == len(out.cells) - 1
    assert expected[0].source.startswith(EXPECTED_OUTPUT_TEXT) and "attachment:expected-5-0.png" in expected[0].source
    assert expected[0].attachments == {"expected-5-0.png": {"image/png": PNG}}
    # Run the stubbed exercise, its rewritten check and the cell that uses the function: the reference takes over.
    ns = {"torch": __import__("torch"), "checks": __import__("isodl.core.checks", fromlist=["checks"])}
    code = [c.source for c in out.cells if c.cell_type == "code"][:4]
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        for source in code:
            exec(source, ns)
    printed = buf.getvalue()
    assert "FAIL: unit_rows" in printed and "NOTE: unit_rows did not pass yet" in printed
    assert printed.strip().splitlines()[-1] == "2.0"


def test_instructor_copy(teacher_path, tmp_path):
    notes = tmp_path / "notes" / "00_demo.md"
    notes.parent.mkdir()
    notes.write_text("**Key idea.** Rows of length one.\n")
    dst = make_instructor_copy(teacher_path, tmp_path / "instructor" / "00_demo.ipynb", notes)
    nb = nbformat.read(dst, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[1].source.startswith(INSTRUCTOR_HEADING) and "Rows of length one" in nb.cells[1].source
    assert "SECRET-LINE" in dst.read_text()  # solutions kept
    assert nb.cells[4].outputs  # outputs kept
    with pytest.raises(FileNotFoundError, match="teaching notes"):
        make_instructor_copy(teacher_path, tmp_path / "x.ipynb", tmp_path / "notes" / "missing.md")
    with pytest.raises(ValueError, match="dst"):
        make_instructor_copy(teacher_path, teacher_path, notes)
    assert make_instructor_copies(teacher_path.parent, tmp_path / "all", notes.parent) == [
        tmp_path / "all" / "00_demo.ipynb"
    ]
    assert (
        student.main(
            [
                str(teacher_path.parent),
                str(tmp_path / "s"),
                "--instructor",
                str(tmp_path / "i"),
                "--notes",
                str(notes.parent),
            ]
        )
        == 0
    )
    assert (tmp_path / "i" / "00_demo.ipynb").exists()


# --------------------------------------------------------------------------- the course notebooks


def _course_notebooks():
    if not NOTEBOOKS.is_dir():
        return []
    return [p for p in sorted(NOTEBOOKS.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]


@pytest.mark.parametrize("path", _course_notebooks(), ids=lambda p: p.name)
def test_course_notebook_student_copy(path, tmp_path):
    dst = tmp_path / path.name
    count = make_student_copy(path, dst)
    nb = nbformat.read(dst, as_version=4)
    nbformat.validate(nb)
    teacher = nbformat.read(path, as_version=4)
    exercises = find_exercises(teacher, name=path.name)
    assert count == len(exercises)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert solution_regions(cell.source) == []
            assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source
            assert cell.outputs == [] and cell.execution_count is None
    student_sources = {c.source for c in nb.cells}
    for ex in exercises:
        assert ex.student_source in student_sources
        lines = ex.solution_source.split("\n")
        for begin, end in solution_regions(ex.solution_source):
            for line in lines[begin + 1 : end]:
                if line.strip() and not line.strip().startswith("#"):
                    assert line not in ex.student_source.split("\n"), f"solution line survived: {line!r}"
        teacher_result = run_exercise(ex, student=False)
        assert teacher_result.passed, f"{path.name} cell {ex.cell_index}: {teacher_result.message}"
        student_result = run_exercise(ex, student=True)
        assert not student_result.passed, f"{path.name} cell {ex.cell_index}: the student stub passed"
        assert "not done yet" in student_result.message


TEACHING = Path(__file__).parents[2] / "docs" / "teaching"


@pytest.mark.parametrize("path", _course_notebooks(), ids=lambda p: p.name)
def test_every_notebook_has_teaching_notes(path):
    assert (TEACHING / f"{path.stem}.md").is_file(), f"write the teaching notes docs/teaching/{path.stem}.md"


# Every course notebook's student copy runs end to end with SEED=1 in
# tests/test_notebooks.py::test_claims_hold_for_another_seed_in_the_student_copy.

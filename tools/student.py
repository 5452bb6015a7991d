"""Write student copies of the notebooks, with the exercise solutions stubbed out.

Exercise convention (nbgrader style)
------------------------------------
An exercise is a code cell that defines one function; the learner's part lies
between the marker lines ``### BEGIN SOLUTION`` and ``### END SOLUTION``
(markers may be indented; a cell may hold several regions)::

    def unit_rows(x):
        \"\"\"Scale every row of x to length 1.\"\"\"
        ### BEGIN SOLUTION
        norm = x.norm(dim=-1, keepdim=True)
        return torch.where(norm > 0, x / norm, torch.zeros_like(x))
        ### END SOLUTION

The cell uses only what it imports itself plus ``np``, ``torch`` and ``math``.
The next code cell checks it, ending with the check's call::

    checks.check_unit_rows(unit_rows)

In the student copy each region, markers included, becomes::

        # YOUR CODE HERE
        raise NotImplementedError("Exercise: write your solution here, then run the check cell below.")

and all outputs, execution counts and saved widget state are removed. So that an
unfinished exercise never stops "Run All", the check cell's call becomes::

    # If the check does not pass, the cells below use the library's reference (it says so).
    unit_rows = checks.check_unit_rows(unit_rows).fallback(unit_rows)

(:meth:`isodl.exercises.CheckResult.fallback`), and every figure of the
instructor's run stays in the handout as an *expected output* image: a
markdown cell right after the figure's code cell, the PNG attached to it.

The instructor copy (:func:`make_instructor_copy`) is the solved notebook with
its outputs, plus the notebook's teaching notes (``docs/teaching/<stem>.md``)
as a cell after the title.

Command line::

    python -m tools.student [SRC_DIR] [DST_DIR] [--instructor DIR] [--notes DIR]
    # defaults: notebooks build/student; --instructor build/instructor writes the instructor copies too
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import math
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import torch

from isodl import exercises
from isodl.exercises import STUB_MESSAGE, CheckResult

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "Exercise",
    "solution_regions",
    "strip_solutions",
    "make_student_copy",
    "make_student_copies",
    "make_instructor_copy",
    "make_instructor_copies",
    "fallback_check_source",
    "EXPECTED_OUTPUT_TEXT",
    "INSTRUCTOR_HEADING",
    "find_exercises",
    "run_exercise",
    "main",
]

BEGIN_MARKER = "### BEGIN SOLUTION"
END_MARKER = "### END SOLUTION"
STUB_LINES = ("# YOUR CODE HERE", 'raise NotImplementedError("' + STUB_MESSAGE + '")')

# A marker line: optional indentation, one or more '#', BEGIN/END SOLUTION, nothing else.
_MARKER = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*(?P<kind>BEGIN|END) SOLUTION[ \t]*\r?$")
_MARKER_TEXT = re.compile(r"(BEGIN|END)\s*SOLUTION", re.IGNORECASE)

#: The caption of an expected-output image in a student copy.
EXPECTED_OUTPUT_TEXT = "*Expected output* (from a clean run of the solved notebook; yours should look like it):"
#: The heading of the teaching-notes cell in an instructor copy.
INSTRUCTOR_HEADING = "## Instructor notes (not in the student copy)"
FALLBACK_COMMENT = "# If the check does not pass, the cells below use the library's reference (it says so)."

# Cell metadata written by running a notebook (timings, papermill status): dropped.
_RUN_CELL_METADATA = ("execution", "papermill", "ExecuteTime")
# Notebook metadata written by running it: saved widget state and papermill's record.
_RUN_NOTEBOOK_METADATA = ("widgets", "papermill")


def _where(cell: str | None) -> str:
    return cell if cell else "cell"


def solution_regions(source: str, *, cell: str | None = None) -> list[tuple[int, int]]:
    """Return the solution regions of a cell as ``(begin_line, end_line)`` pairs.

    Lines are counted from 0 (``source.split("\\n")``); both numbers point at
    the marker lines themselves, so a region spans
    ``lines[begin_line : end_line + 1]``. ``cell`` names the cell in error
    messages (for example ``"00_start_here.ipynb, cell 7"``).

    Raises ``ValueError`` for an END without a BEGIN, a BEGIN without an END,
    a BEGIN inside another region, or a line that mentions BEGIN/END SOLUTION
    without being a marker line on its own (such a line would let a solution
    slip into the student copy).
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    where = _where(cell)
    regions: list[tuple[int, int]] = []
    start: int | None = None
    for i, line in enumerate(source.split("\n")):
        m = _MARKER.match(line)
        if m is None:
            if _MARKER_TEXT.search(line):
                raise ValueError(
                    f"{where}, line {i + 1}: {line.strip()!r} looks like a solution marker but is not one; "
                    f"write {BEGIN_MARKER!r} or {END_MARKER!r} alone on its line"
                )
            continue
        if m.group("kind") == "BEGIN":
            if start is not None:
                raise ValueError(
                    f"{where}, line {i + 1}: nested {BEGIN_MARKER!r} (the region opened on line {start + 1} "
                    f"has no {END_MARKER!r} yet)"
                )
            start = i
        else:
            if start is None:
                raise ValueError(f"{where}, line {i + 1}: {END_MARKER!r} without a matching {BEGIN_MARKER!r}")
            regions.append((start, i))
            start = None
    if start is not None:
        raise ValueError(f"{where}, line {start + 1}: {BEGIN_MARKER!r} without a matching {END_MARKER!r}")
    return regions


def strip_solutions(source: str, *, cell: str | None = None) -> str:
    """Replace every solution region (markers included) by the two-line stub.

    The stub lines are indented like the BEGIN marker. A source without
    regions is returned unchanged.
    """
    regions = solution_regions(source, cell=cell)
    if not regions:
        return source
    lines = source.split("\n")
    out: list[str] = []
    pos = 0
    for begin, end in regions:
        out.extend(lines[pos:begin])
        indent = _MARKER.match(lines[begin]).group("indent")
        out.extend(indent + stub for stub in STUB_LINES)
        pos = end + 1
    out.extend(lines[pos:])
    return "\n".join(out)


def _compiles(source: str) -> bool:
    try:
        compile(source, "<cell>", "exec")
    except SyntaxError:
        return False
    return True


def _strip_cell(source: str, cell: str) -> tuple[str, bool]:
    stripped = strip_solutions(source, cell=cell)
    changed = stripped != source
    if changed and _compiles(source) and not _compiles(stripped):
        raise ValueError(
            f"{cell}: the student version of this cell is not valid Python; make each solution region "
            "a whole block of statements (for example the body of the function after its docstring)"
        )
    return stripped, changed


def fallback_check_source(source: str, *, cell: str | None = None) -> str:
    """Rewrite a check cell so that a failed check hands the reference to the cells below.

    The cell's last statement must be the check's call on the learner's
    function, ``checks.check_<name>(<function>, ...)``; it becomes
    ``<function> = checks.check_<name>(<function>, ...).fallback(<function>)``
    after a comment that says why. Earlier lines are kept. Raises
    ``ValueError`` (naming ``cell``) for a cell of another shape.
    """
    where = _where(cell)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{where}: the check cell is not valid Python ({exc.msg})") from None
    last = tree.body[-1] if tree.body else None
    call = last.value if isinstance(last, ast.Expr) else None
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr.startswith("check_")
        and call.args
        and isinstance(call.args[0], ast.Name)
    ):
        raise ValueError(
            f"{where}: a check cell must end with checks.check_<name>(<your function>, ...), got {source!r}"
        )
    fn = call.args[0].id
    lines = source.split("\n")
    head = lines[: last.lineno - 1]
    text = ast.get_source_segment(source, call)
    return "\n".join([*head, FALLBACK_COMMENT, f"{fn} = {text}.fallback({fn})"])


def _expected_output_cell(cell, index: int):
    """A markdown cell showing the PNG figures of ``cell``'s outputs, or None when it drew none."""
    images = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    if not images:
        return None
    attachments, links = {}, []
    for k, png in enumerate(images):
        key = f"expected-{index}-{k}.png"
        attachments[key] = {"image/png": png if isinstance(png, str) else "".join(png)}
        links.append(f"![expected output {k + 1}](attachment:{key})")
    md = nbformat.v4.new_markdown_cell("\n\n".join([EXPECTED_OUTPUT_TEXT, *links]))
    md.attachments = attachments
    md.metadata["tags"] = ["expected-output"]
    return md


def _student_notebook(nb, name: str):
    """Strip solutions and run records from ``nb`` in place; return the exercise count."""
    found = find_exercises(nb, name=name)
    check_cells = {ex.check_index for ex in found}
    exercise_cells = {ex.cell_index for ex in found}
    count = 0
    cells = []
    for index, cell in enumerate(nb.cells):
        expected = None
        if cell.get("cell_type") == "code":
            if index not in check_cells | exercise_cells:
                expected = _expected_output_cell(cell, index)
            cell.source, changed = _strip_cell(cell.source, f"{name}, cell {index}")
            if index in check_cells:
                cell.source = fallback_check_source(cell.source, cell=f"{name}, cell {index}")
            count += changed
            cell.outputs = []
            cell.execution_count = None
        elif "outputs" in cell:  # never present in a valid notebook; be safe
            del cell["outputs"]
        for key in _RUN_CELL_METADATA:
            cell.get("metadata", {}).pop(key, None)
        cells.append(cell)
        if expected is not None:
            cells.append(expected)
    nb.cells = cells
    for key in _RUN_NOTEBOOK_METADATA:
        nb.metadata.pop(key, None)
    return count


def make_student_copy(src, dst) -> int:
    """Write the student copy of notebook ``src`` to ``dst``; return its number of exercises.

    Solution regions in code cells are stubbed out, each check cell falls back
    on the reference (:func:`fallback_check_source`), each figure is kept as an
    expected-output image after its cell, every output and execution
    count is cleared, saved widget state (``metadata["widgets"]``) and run
    records (cell timings, papermill metadata) are dropped; cell tags and all
    other metadata are kept. The result is validated with
    ``nbformat.validate`` before it is written. ``dst`` may not be ``src``.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"src notebook {str(src)!r} does not exist")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"dst must differ from src ({str(src)!r}); the teacher notebook would be overwritten")
    nb = nbformat.read(src, as_version=4)
    count = _student_notebook(nb, src.name)
    nbformat.validate(nb)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return count


def _notebooks_in(src_dir: Path, skip: Path | None = None) -> list[Path]:
    found = []
    for path in sorted(src_dir.rglob("*.ipynb")):
        rel = path.relative_to(src_dir)
        if any(part == ".ipynb_checkpoints" for part in rel.parts):
            continue
        if skip is not None and path.resolve().is_relative_to(skip):
            continue
        found.append(path)
    return found


def make_student_copies(src_dir="notebooks", dst_dir="build/student") -> dict[str, int]:
    """Write the student copy of every notebook under ``src_dir`` into ``dst_dir``.

    Sub-folders are mirrored; ``.ipynb_checkpoints`` folders (and ``dst_dir``
    itself, should it lie inside ``src_dir``) are skipped. Returns
    ``{relative path: number of exercises stripped}``, e.g.
    ``{"00_start_here.ipynb": 1}``.
    """
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if not src_dir.is_dir():
        raise NotADirectoryError(f"src_dir {str(src_dir)!r} is not a folder")
    if dst_dir.resolve() == src_dir.resolve():
        raise ValueError(f"dst_dir must differ from src_dir ({str(src_dir)!r})")
    dst_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for path in _notebooks_in(src_dir, skip=dst_dir.resolve()):
        rel = path.relative_to(src_dir)
        counts[rel.as_posix()] = make_student_copy(path, dst_dir / rel)
    return counts


def make_instructor_copy(src, dst, notes) -> Path:
    """Write the instructor copy of notebook ``src`` to ``dst``: solutions and outputs kept, notes added.

    ``notes`` is the notebook's teaching-notes file (Markdown, for example
    ``docs/teaching/07_neurogenesis_and_neurodegeneration.md``); its text goes
    into a cell after the first one, under :data:`INSTRUCTOR_HEADING`. Returns ``dst``.
    """
    src, dst, notes = Path(src), Path(dst), Path(notes)
    if not src.is_file():
        raise FileNotFoundError(f"src notebook {str(src)!r} does not exist")
    if not notes.is_file():
        raise FileNotFoundError(f"notes {str(notes)!r} does not exist: write the notebook's teaching notes there")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"dst must differ from src ({str(src)!r}); the teacher notebook would be overwritten")
    nb = nbformat.read(src, as_version=4)
    cell = nbformat.v4.new_markdown_cell(f"{INSTRUCTOR_HEADING}\n\n{notes.read_text().strip()}")
    cell.metadata["tags"] = ["instructor-notes"]
    nb.cells.insert(1, cell)
    nbformat.validate(nb)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst


def make_instructor_copies(src_dir="notebooks", dst_dir="build/instructor", notes_dir="docs/teaching") -> list[Path]:
    """Write the instructor copy of every ``NN_name.ipynb`` under ``src_dir``, notes from ``notes_dir/NN_name.md``."""
    src_dir, dst_dir, notes_dir = Path(src_dir), Path(dst_dir), Path(notes_dir)
    if not src_dir.is_dir():
        raise NotADirectoryError(f"src_dir {str(src_dir)!r} is not a folder")
    if dst_dir.resolve() == src_dir.resolve():
        raise ValueError(f"dst_dir must differ from src_dir ({str(src_dir)!r})")
    return [
        make_instructor_copy(path, dst_dir / path.relative_to(src_dir), notes_dir / f"{path.stem}.md")
        for path in _notebooks_in(src_dir, skip=dst_dir.resolve())
    ]


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook and the code cell that checks it."""

    notebook: str  #: the notebook's name, for messages
    cell_index: int  #: index of the exercise cell in ``nb.cells``
    solution_source: str  #: the teacher's cell, solutions included
    student_source: str  #: the same cell with the solutions stubbed out
    check_index: int  #: index of the check cell in ``nb.cells``
    check_source: str  #: the check cell, e.g. ``checks.check_unit_rows(unit_rows)``


def find_exercises(nb, *, name: str | None = None) -> list[Exercise]:
    """List the exercises of a notebook (a ``NotebookNode`` or a path to one).

    The check cell of an exercise is the next code cell; it must call
    ``checks.check_...``. A ``ValueError`` naming the notebook cell is raised
    when it is missing, and for malformed markers.
    """
    if isinstance(nb, (str, Path)):
        name = name or Path(nb).name
        nb = nbformat.read(nb, as_version=4)
    if not hasattr(nb, "cells"):
        raise TypeError(f"nb must be a notebook (nbformat.NotebookNode) or a path, got {type(nb).__name__}")
    name = name or "notebook"
    code = [(i, c) for i, c in enumerate(nb.cells) if c.get("cell_type") == "code"]
    exercises = []
    for k, (index, cell) in enumerate(code):
        where = f"{name}, cell {index}"
        student, changed = _strip_cell(cell.source, where)
        if not changed:
            continue
        following = code[k + 1] if k + 1 < len(code) else None
        if following is None or "checks.check_" not in following[1].source:
            raise ValueError(
                f"{where}: exercise cell has no check cell after it; the next code cell must call "
                "checks.check_<name>(<function>)"
            )
        exercises.append(
            Exercise(
                notebook=name,
                cell_index=index,
                solution_source=cell.source,
                student_source=student,
                check_index=following[0],
                check_source=following[1].source,
            )
        )
    return exercises


def _namespace() -> dict:
    # ``checks`` is every part's checks at once (a notebook imports its part's module under that name).
    every = types.SimpleNamespace(**{f"check_{name}": fn for name, fn in exercises.all_checks().items()})
    return {"__name__": "__exercise__", "np": np, "torch": torch, "math": math, "checks": every}


def run_exercise(exercise: Exercise, student: bool, *, verbose: bool = False) -> CheckResult:
    """Run an exercise cell and its check cell in a fresh namespace; return the check's result.

    ``student=True`` runs the stubbed cell, ``False`` the teacher's solution.
    The namespace holds only ``np``, ``torch``, ``math`` and ``checks``. The
    check cell's statements run in it and its last line, an expression such as
    ``checks.check_unit_rows(unit_rows)``, is evaluated to get the
    :class:`~isodl.exercises.CheckResult`. Printing is silenced unless
    ``verbose``.
    """
    if not isinstance(exercise, Exercise):
        raise TypeError(f"exercise must be an Exercise (from find_exercises), got {type(exercise).__name__}")
    if not isinstance(student, (bool, np.bool_)):
        raise TypeError(f"student must be True or False, got {student!r}")
    source = exercise.student_source if student else exercise.solution_source
    where = f"{exercise.notebook}, cell"
    tree = ast.parse(exercise.check_source, filename=f"<{where} {exercise.check_index}>")
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        raise ValueError(
            f"{where} {exercise.check_index}: the check cell must end with the check's call, "
            "e.g. checks.check_unit_rows(unit_rows)"
        )
    head = ast.Module(body=tree.body[:-1], type_ignores=[])
    last = ast.Expression(body=tree.body[-1].value)
    ns = _namespace()
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        exec(compile(source, f"<{where} {exercise.cell_index}>", "exec"), ns)
        exec(compile(head, f"<{where} {exercise.check_index}>", "exec"), ns)
        result = eval(compile(last, f"<{where} {exercise.check_index}>", "eval"), ns)
    if not isinstance(result, CheckResult):
        raise TypeError(
            f"{where} {exercise.check_index}: the check cell's last expression gave "
            f"{type(result).__name__}, not a CheckResult"
        )
    return result


def main(argv=None) -> int:
    """Command line: ``python -m tools.student [SRC_DIR] [DST_DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.student",
        description="Write student copies of the notebooks (solutions stubbed out, outputs cleared).",
    )
    parser.add_argument("src_dir", nargs="?", default="notebooks", help="teacher notebooks (default: notebooks)")
    parser.add_argument("dst_dir", nargs="?", default="build/student", help="output folder (default: build/student)")
    parser.add_argument("--instructor", metavar="DIR", help="also write instructor copies (solutions and notes) here")
    parser.add_argument(
        "--notes", metavar="DIR", default="docs/teaching", help="teaching notes (default: docs/teaching)"
    )
    args = parser.parse_args(argv)
    try:
        counts = make_student_copies(args.src_dir, args.dst_dir)
        written = make_instructor_copies(args.src_dir, args.instructor, args.notes) if args.instructor else []
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not counts:
        print(f"no notebooks found in {args.src_dir}")
    for name, count in counts.items():
        noun = "exercise" if count == 1 else "exercises"
        print(f"{name}: {count} {noun} stripped -> {Path(args.dst_dir) / name}")
    for path in written:
        print(f"instructor copy -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

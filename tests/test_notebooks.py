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
from tools.student import find_exercises, make_student_copy

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


#: Words from the making of the course that a learner cannot look up.
INTERNAL_LANGUAGE = (
    r"\bdecision \d+",
    r"\bthe (course's )?spec\b",
    r"not available to the course",
    r"student reimplementation",
    r"\bthe review\b",
    r"\bissue \d+",
    r"\bcoordinator\b",
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_learner_prose_has_no_internal_language(path: Path):
    nb = nbformat.read(path, as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    found = [m.group(0) for pattern in INTERNAL_LANGUAGE for m in re.finditer(pattern, prose, re.I)]
    assert not found, (
        f"{path.name}: learner prose says {found}; say what is derived, from the author's code or the course's"
    )


def test_internal_language_rule_catches_violations():
    prose = "As decision 7 says, the spec wants this; the student reimplementation in issue 14."
    found = [p for p in INTERNAL_LANGUAGE if re.search(p, prose, re.I)]
    assert len(found) == 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_notebook_links_the_glossary_and_ends_the_same_way(path: Path):
    """First cell links the glossary; the end has a summary, folded-away answers and further reading with links."""
    nb = nbformat.read(path, as_version=4)
    assert "docs/glossary.md" in nb.cells[0].source, "link the glossary from the first cell"
    headings = [
        line.strip().lower()
        for c in nb.cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("## ")
    ]
    tail = headings[-3:]
    assert (
        tail == ["## summary", "## check your understanding", "## further reading"]
        or tail[-1] == "## where next"
        and (headings[-4:-1] == ["## summary", "## check your understanding", "## further reading"])
    ), f"{path.name} must end with Summary, Check your understanding and Further reading; its last headings: {tail}"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    questions = text.split("## Check your understanding", 1)[1].split("## Further reading", 1)[0]
    assert 3 <= questions.count("<details>") <= 6, "3-5 questions, each with its answer folded in <details>"
    reading = text.split("## Further reading", 1)[1]
    assert reading.count("](http") >= 2, "further reading gives links"


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
def test_claims_hold_for_another_seed_in_the_student_copy(path: Path, tmp_path: Path):
    """The student copy, every exercise left unsolved, runs to the end with SEED=1 and every assert holds.

    One run tests two things: the claims hold for another seed (the exercises fall back on the library's
    reference, which the solutions match, so the asserts see the same numbers), and a learner's *Run All*
    reaches the last cell, each unfinished exercise reporting its fallback. It runs from the student copy's
    own folder, as a learner's copy in build/student/ does.
    """
    copy = tmp_path / "student" / path.name
    make_student_copy(path, copy)
    out = tmp_path / path.name
    run_papermill(copy, out, {"SEED": 1}, timeout=CELL_TIMEOUT_SECONDS)  # raises at the first failing cell
    nb = json.loads(out.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "SEED = 1" in "".join(injected[0]["source"])
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code), "not every cell ran"
    printed = "\n".join("".join(o.get("text", "")) for c in code for o in c["outputs"] if o["output_type"] == "stream")
    n_exercises = len(find_exercises(nbformat.read(path, as_version=4), name=path.name))
    assert printed.count("did not pass yet, so the cells below use the library's reference") == n_exercises


# --- SCALE="paper": every notebook's paper-scale sizes, resolved without training ---------------------
#
# Each notebook's sizes come from its parameters cell and from `isodl.by_scale(cfg.scale, course=...,
# paper=...)` calls in its code cells. The helpers below read those calls with the ast module and
# evaluate just them (and the plain assignments they build on, such as `cfg = isodl.setup(SEED, SCALE)`)
# in a namespace holding the parameters cell: no data, no model, no training. `make paper` runs the
# notebooks for real; this test keeps their paper sizes valid between such runs.

#: Sizes that are smaller (or empty) at paper scale on purpose: (notebook, name) -> why.
PAPER_SMALLER_ON_PURPOSE = {
    ("04_quantised_representations.ipynb", "batch_size"): "the paper trains with batch 24, the course with 32",
}

#: Notebook 12 tunes every method of isodl.normalisation.experiments.ALL_METHODS.
from isodl.normalisation.experiments import ALL_METHODS as _NORMALISATION_METHODS  # noqa: E402

#: Relations between one notebook's sizes that its later cells rely on, checked at both scales.
SIZE_RELATIONS = {
    "12_normalisation_experiments.ipynb": [
        (
            "every method of the batch-size test is tuned",
            ("bs_methods",),
            lambda a: set(a) <= set(_NORMALISATION_METHODS),
        ),
        (
            "every method of the ablation is tuned",
            ("ablation_methods",),
            lambda a: set(a) <= set(_NORMALISATION_METHODS),
        ),
    ],
}

_SAFE_BUILTINS = {
    name: getattr(__builtins__, name) if not isinstance(__builtins__, dict) else __builtins__[name]
    for name in ("abs", "dict", "enumerate", "float", "int", "len", "list", "max", "min", "range", "round")
    + ("set", "sorted", "str", "sum", "tuple", "zip")
}


def _is_by_scale(node) -> bool:
    import ast

    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr == "by_scale") or (
        isinstance(func, ast.Name) and func.id == "by_scale"
    )


def _python_source(source: str) -> str:
    """A code cell as plain Python (IPython magics such as `%time` become function calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _stored_names(stmt) -> set[str]:
    import ast

    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _forget(stmt, ns: dict, keep) -> None:
    """Drop what a statement that is not evaluated may change: the names it binds, and the mutable
    values it mentions (``trained.append(net)`` in a loop), except the sizes and ``keep``."""
    import ast

    mentioned = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    for name in _stored_names(stmt) | {m for m in mentioned if isinstance(ns.get(m), (list, dict, set))}:
        if name not in keep:
            ns.pop(name, None)


def _size_label(stmt, call) -> tuple[str, bool]:
    """The name a by_scale call defines, and whether the statement is a plain `name = by_scale(...)`."""
    import ast

    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    if names and len(names) == len(targets) and stmt.value is call:
        return names[0], True
    keyword = next((k.arg for k in ast.walk(stmt) if isinstance(k, ast.keyword) and k.value is call), None)
    where = names[0] if names else f"a {type(stmt).__name__} statement"
    return (f"{keyword}= in {where}" if keyword else f"by_scale(...) in {where}"), False


class _KeepSizes:
    """The names :func:`_forget` keeps: the sizes found so far (by_scale results) and a few protected names."""

    def __init__(self, found, protected):
        self.found, self.protected = found, protected

    def __contains__(self, name) -> bool:
        return name in self.protected or name in self.found.sizes


class ResolvedSizes:
    """What :func:`resolve_sizes` found: ``sizes`` (name -> value), where each comes from, and checkable prints."""

    def __init__(self, notebook: str):
        self.notebook = notebook
        self.parameters: dict = {}
        self.scale: str | None = None
        self.sizes: dict = {}
        self.where: dict[str, str] = {}
        self.prints: list[tuple[int, str]] = []  # (code cell, text printed from parameters and sizes only)
        self.outputs: dict[int, str] = {}  # code cell -> its committed stdout


def resolve_sizes(path: Path, scale: str | None = None) -> ResolvedSizes:
    """Evaluate a notebook's `by_scale` sizes as a run with SCALE=``scale`` would (None: the parameters cell's).

    The parameters cell is executed, then ``scale`` is injected as papermill injects it; the
    environment (``ISODL_SCALE``) is read by the real ``isodl.core.config.resolve_scale`` inside a
    stand-in for ``isodl.setup``. Every later top-level statement holding a ``by_scale`` call must
    resolve from the parameters and the sizes before it (an AssertionError names the notebook and
    the size otherwise); other plain assignments are evaluated when they can be (with a few
    builtins and nothing imported) and forgotten when they cannot.
    """
    import ast
    import builtins
    import io
    import types

    from isodl.core.config import by_scale, resolve_scale

    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    found = ResolvedSizes(path.name)
    first = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    ns: dict = {"__builtins__": _SAFE_BUILTINS}
    exec(compile(_python_source(code[first].source), f"{path.name}::Cell {first}", "exec"), ns)
    found.parameters = {k: v for k, v in ns.items() if k != "__builtins__"}
    if scale is not None:
        ns["SCALE"] = scale  # papermill's injected-parameters cell

    def setup(seed=0, scale="course", **_ignored):
        cfg = types.SimpleNamespace(seed=seed, scale=resolve_scale(scale))
        found.scale = cfg.scale
        return cfg

    ns["isodl"] = types.SimpleNamespace(setup=setup, by_scale=by_scale)
    ns["by_scale"] = by_scale
    keep = _KeepSizes(found, protected={"isodl", "by_scale", "cfg", "__builtins__"})
    for i in range(first + 1, len(code)):
        cell = code[i]
        found.outputs[i] = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        try:
            tree = ast.parse(_python_source(cell.source))
        except SyntaxError as exc:
            assert "by_scale" not in cell.source, f"{path.name}: code cell {i} holds by_scale but does not parse: {exc}"
            continue
        for stmt in tree.body:
            calls = [n for n in ast.walk(stmt) if _is_by_scale(n)]
            if calls:
                for call in calls:
                    name, plain = _size_label(stmt, call)
                    where = f"{path.name}: {name} (code cell {i}, line {call.lineno}: {ast.unparse(call)[:120]})"
                    assert call.args and ast.unparse(call.args[0]) == "cfg.scale", (
                        f"{where}: pass cfg.scale to by_scale (what isodl.setup resolved, ISODL_SCALE included)"
                    )
                    assert "cfg" in ns, f"{where}: by_scale is called before cfg = isodl.setup(SEED, SCALE)"
                    try:
                        value = eval(compile(ast.Expression(call), where, "eval"), ns)
                    except Exception as exc:
                        raise AssertionError(
                            f"{where}: does not resolve from the parameters cell and the sizes before it: {exc!r}"
                        ) from None
                    found.sizes[name], found.where[name] = value, where
                    if plain:
                        for target in _stored_names(stmt):
                            ns[target] = value
                _forget(stmt, ns, keep)
            elif (
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Name)
                and stmt.value.func.id == "print"
                and "cfg" not in ast.unparse(stmt).replace("cfg.scale", "")
            ):
                buffer = io.StringIO()
                try:
                    eval(
                        compile(ast.Expression(stmt.value), "print", "eval"),
                        {**ns, "print": lambda *a, **k: builtins.print(*a, **{**k, "file": buffer})},
                    )
                except Exception:
                    continue  # prints something computed: not a size
                found.prints.append((i, buffer.getvalue()))
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                try:
                    exec(compile(ast.Module(body=[stmt], type_ignores=[]), "assign", "exec"), ns)
                except Exception:
                    _forget(stmt, ns, keep)
            elif not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                _forget(stmt, ns, keep)  # a loop, a def, a call: what it changes is not known here
    return found


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def size_problems(name: str, course, paper, *, smaller_ok: bool = False) -> list[str]:
    """Why ``paper`` is not a valid paper-scale value of the size whose course value is ``course`` ([] if it is).

    Numbers are finite and positive (entries of a list of seeds: non-negative), ints stay ints, containers keep the
    course's type and kind of elements, and the paper scale is at least the course scale (as large,
    as many entries, every course choice still there) unless ``smaller_ok``.
    """
    import math

    seed = name.lower().endswith("seeds")  # a list of seeds may hold seed 0; a count of seeds may not
    if _is_number(course):
        if not _is_number(paper):
            return [f"{name} = {paper!r} at paper scale is not a number (course: {course!r})"]
        if isinstance(course, int) and not isinstance(paper, int):
            return [f"{name} = {paper!r} at paper scale is not an int (course: {course!r})"]
        problems = []
        if not math.isfinite(paper) or paper <= 0:
            problems.append(f"{name} = {paper!r} at paper scale is not positive")
        if paper < course and not smaller_ok:
            problems.append(f"{name} = {paper!r} at paper scale is smaller than at course scale ({course!r})")
        return problems
    if isinstance(course, dict):
        if not isinstance(paper, dict):
            return [f"{name} = {paper!r} at paper scale is not a dict (course: {course!r})"]
        missing = [k for k in course if k not in paper]
        problems = [f"{name} at paper scale lacks the course keys {missing}"] if missing else []
        for key, value in paper.items():
            reference = course.get(key, value)
            problems += size_problems(f"{name}[{key!r}]", reference, value, smaller_ok=smaller_ok)
        return problems
    if isinstance(course, (list, tuple)):
        if type(paper) is not type(course):
            return [f"{name} = {paper!r} at paper scale is a {type(paper).__name__}, not a {type(course).__name__}"]
        problems = []
        if len(paper) < max(len(course), 1) and not smaller_ok:
            problems.append(f"{name} = {paper!r} at paper scale has fewer entries than at course scale ({course!r})")
        if all(_is_number(c) for c in course):
            bad = [p for p in paper if not _is_number(p) or not math.isfinite(p) or p < 0 or (p == 0 and not seed)]
            if bad:
                problems.append(f"{name} = {paper!r} at paper scale holds invalid entries {bad}")
            elif course and paper and max(paper) < max(course) and not smaller_ok:
                problems.append(f"{name} = {paper!r} at paper scale stops below the course's largest {max(course)!r}")
            if seed and (any(not isinstance(p, int) for p in paper) or len(set(paper)) != len(paper)):
                problems.append(f"{name} = {paper!r} at paper scale: seeds must be distinct ints")
        else:
            kinds = {type(c) for c in course}
            bad = [p for p in paper if type(p) not in kinds]
            if bad:
                problems.append(f"{name} = {paper!r} at paper scale holds entries unlike the course's: {bad}")
            missing = [c for c in course if c not in paper]
            if missing and not smaller_ok:
                problems.append(f"{name} at paper scale drops the course's {missing}")
        return problems
    if type(paper) is not type(course):
        return [f"{name} = {paper!r} at paper scale is a {type(paper).__name__}, not a {type(course).__name__}"]
    return []


def paper_size_problems(path: Path) -> list[str]:
    """Everything wrong with a notebook's paper-scale sizes (see :func:`size_problems` and SIZE_RELATIONS)."""
    import os

    from isodl.core.config import SCALE_ENV

    saved = os.environ.pop(SCALE_ENV, None)
    try:
        course = resolve_sizes(path, "course")
        paper = resolve_sizes(path, "paper")
        os.environ[SCALE_ENV] = "paper"
        via_env = resolve_sizes(path)  # SCALE stays the parameters cell's; ISODL_SCALE wins
    finally:
        os.environ.pop(SCALE_ENV, None)
        if saved is not None:
            os.environ[SCALE_ENV] = saved
    name = path.name
    problems = [] if course.sizes else [f"{name}: no isodl.by_scale(cfg.scale, ...) size, so SCALE changes nothing"]
    problems += [f"{name}: {p}" for p in ("course", "paper") if {"course": course, "paper": paper}[p].scale != p]
    for size, value in paper.sizes.items():
        smaller_ok = (name, size) in PAPER_SMALLER_ON_PURPOSE
        problems += [
            f"{name}: {p} [{paper.where[size]}]"
            for p in size_problems(size, course.sizes[size], value, smaller_ok=smaller_ok)
        ]
        if via_env.sizes.get(size) != value:
            problems.append(
                f"{name}: {size} is {via_env.sizes.get(size)!r} with ISODL_SCALE=paper but {value!r} with SCALE='paper'"
            )
    for resolved in (course, paper):
        for claim, names, holds in SIZE_RELATIONS.get(name, []):
            values = [resolved.sizes[n] for n in names]
            if not holds(*values):
                shown = ", ".join(f"{n} = {v!r}" for n, v in zip(names, values))
                problems.append(f"{name}: at {resolved.scale} scale, {claim} does not hold ({shown})")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_paper_sizes_are_valid(path: Path):
    """SCALE='paper' resolves to valid sizes in every notebook (no training: just the by_scale calls)."""
    problems = paper_size_problems(path)
    assert not problems, "invalid paper-scale sizes:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_course_sizes_are_the_committed_ones(path: Path, monkeypatch):
    """The same extraction at the default SCALE gives the sizes the committed outputs were run with."""
    from isodl.core.config import SCALE_ENV

    monkeypatch.delenv(SCALE_ENV, raising=False)
    course = resolve_sizes(path)  # the parameters cell as committed
    assert course.parameters.get("SCALE") == "course", (
        f"{path.name}: the parameters cell must default to SCALE = 'course'"
    )
    assert course.scale == "course"
    problems = [
        f"{path.name}: {p} [{course.where[size]}]"
        for size, value in course.sizes.items()
        for p in size_problems(size, value, value)
    ]
    for cell, text in course.prints:
        if text.strip() not in course.outputs[cell]:
            problems.append(
                f"{path.name}: code cell {cell} prints {text.strip()!r} from the course sizes, "
                f"but its committed output is {course.outputs[cell].strip()[:300]!r}"
            )
    assert not problems, "\n".join(problems)


def _resolves(dotted: str) -> bool:
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def stale_references(text: str) -> list[str]:
    """Library names (``isodl.a.b``) and repository paths (``lib/...``, ``tests/...``) in ``text`` that do not exist."""
    bad = [name for name in set(re.findall(r"\bisodl(?:\.[A-Za-z_]\w*)+", text)) if not _resolves(name)]
    paths = set(re.findall(r"\b((?:lib|tests|scripts|docs|tools|benchmarks)/[\w./-]*\w)", text))
    bad += [p for p in paths if not (ROOT / p).exists()]
    return sorted(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_prose_names_only_code_that_exists(path: Path):
    nb = nbformat.read(path, as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    bad = stale_references(prose)
    assert not bad, f"{path.name} names modules or files that do not exist: {bad}"


def test_stale_reference_rule_catches_violations():
    text = "See isodl.core.ops.unit_rows and lib/isodl/core/ops.py; not isodl.rnn.step, lib/isodl/rnn.py or tests/test_rnn.py."
    assert stale_references(text) == ["isodl.rnn.step", "lib/isodl/rnn.py", "tests/test_rnn.py"]


#: A code cell that builds an interactive figure (the course's widget wrappers or raw ipywidgets).
WIDGET_CALL = re.compile(r"\bwidgets\.(interactive_figure|interact\w*)\(|\bipywidgets\b|\binteract\(")
#: The output a live widget leaves in a committed notebook (catches widgets built inside a library function).
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PREDICT = "**Predict first:**"


def predict_first_gaps(nb) -> tuple[list[int], int]:
    """(indices of widget cells not preceded by a markdown cell holding PREDICT, number of PREDICT prompts)."""
    gaps, prompts = [], 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and PREDICT in cell.source:
            # a prompt counts when a code cell follows it (the cell whose output answers it)
            later = [c for c in nb.cells[i + 1 : i + 3] if c.cell_type == "code"]
            prompts += bool(later)
        shows_widget = any(WIDGET_VIEW in o.get("data", {}) for o in cell.get("outputs", []))
        if cell.cell_type == "code" and (WIDGET_CALL.search(cell.source) or shows_widget):
            before = next((c for c in reversed(nb.cells[:i]) if c.cell_type == "markdown"), None)
            if before is None or PREDICT not in before.source:
                gaps.append(i)
    return gaps, prompts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_learners_predict_before_widgets_and_experiments(path: Path):
    """Every widget is preceded by a 'Predict first:' question, and every notebook has at least one before a result."""
    nb = nbformat.read(path, as_version=4)
    gaps, prompts = predict_first_gaps(nb)
    assert not gaps, f"{path.name}: the markdown cell before widget cell(s) {gaps} must ask a '{PREDICT}' question"
    assert prompts >= 1, f"{path.name}: ask the learner to predict at least one result ('{PREDICT}' before a code cell)"


def test_predict_first_rule_catches_violations():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    bad = nbformat.v4.new_notebook(cells=[md("Move the slider."), code("widgets.interactive_figure(f, a=(0, 1))")])
    assert predict_first_gaps(bad) == ([1], 0)
    good = nbformat.v4.new_notebook(
        cells=[md(f"{PREDICT} what happens at a = 1?"), code("widgets.interactive_figure(f)")]
    )
    assert predict_first_gaps(good) == ([], 1)
    hidden = code("plots.explorer(bank)", outputs=[nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {}})])
    assert predict_first_gaps(nbformat.v4.new_notebook(cells=[md("Look."), hidden])) == ([1], 0)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_notebook_records_its_verdicts(path: Path):
    """The claims a notebook tests are recorded with isodl.core.verdicts, so docs/what_reproduces.md lists them."""
    from tools.verdicts import collect

    rows = collect([path])
    assert rows, f"{path.name} records no verdict: state each claim it tests with verdicts.verdict(...)"
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    for literal in re.findall(r"(?:statistic|null)\s*=\s*\"([^\"]*)\"", source):
        assert not re.search(r"\d\.\d", literal), (
            f"{path.name}: a verdict's statistic or null is typed in ({literal!r}); build it from the computed numbers"
        )


def test_readme_study_times_are_the_teaching_notes():
    """The README's plain-words table gives each notebook's study time as its teaching notes state it, and the total."""
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d\d) \| .+ \| (\d+) min \|$", readme, re.M))
    assert sorted(rows) == [p.name[:2] for p in NOTEBOOKS], "one plain-words row per notebook, in the README"
    total = 0
    for path in NOTEBOOKS:
        notes = (ROOT / "docs" / "teaching" / f"{path.stem}.md").read_text()
        stated = re.search(r"About (\d+) minutes of study", notes)
        assert stated, f"docs/teaching/{path.stem}.md must say 'About N minutes of study' under Timing"
        assert rows[path.name[:2]] == stated.group(1), f"README and teaching notes disagree on {path.name}'s study time"
        total += int(stated.group(1))
    hours = re.search(r"About (\d+)(½)? hours of study for the whole course", readme)
    assert hours, "README states the whole course's study time"
    assert abs(int(hours.group(1)) + 0.5 * bool(hours.group(2)) - total / 60) <= 0.5, f"the notes add up to {total} min"

"""Execute the course's notebooks headless, and measure them.

Two commands (wired to ``make execute``, ``make course`` and ``make paper``)::

    python -m tools.course execute [NOTEBOOK ...]
        Re-run notebooks *in place*, top to bottom in a fresh kernel, so the
        committed outputs come from one clean in-order run. This is the
        project's execute command: use it before committing a notebook.

    python -m tools.course run [--out build/course] [--report build/runtimes.md]
                               [--scale course|paper] [--cell-timeout SECONDS]
                               [-p NAME=VALUE ...] [NOTEBOOK ...]
        Execute every notebook with papermill into ``--out`` (the sources are
        not touched) and write a Markdown table of each notebook's wall time,
        its longest cell and the kernel's peak memory. A benchmark, not a test:
        it reports the budgets (about 60 s per notebook, never over 90 s; at
        most 30 s per cell) without failing on them. The budgets are
        course-scale budgets: with ``--scale paper`` (``make paper``) the
        notebooks run with ``SCALE="paper"`` (injected as a parameter and set
        as ``ISODL_SCALE`` for the kernel), the times are reported without
        budget verdicts and a cell may run for up to an hour. The report is
        rewritten after every notebook, so a long run can be read while it goes.

Cells are numbered as nbval numbers them (``notebooks/NN_name.ipynb::Cell N``):
code cells only, from 0, in the source notebook (papermill's injected-parameters
cell does not count). Per-cell times come from the timing papermill stores in
each output cell (``metadata.papermill.duration``), see :func:`cell_times`.

Both set ``ISODL_HEADLESS=1`` for the kernel, so progress bars stay quiet and
widgets also render their default figure as a static image.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "ROOT",
    "NOTEBOOK_DIR",
    "BUDGET_SECONDS",
    "LIMIT_SECONDS",
    "CELL_BUDGET_SECONDS",
    "CELL_TIMEOUT_SECONDS",
    "PAPER_CELL_TIMEOUT_SECONDS",
    "list_notebooks",
    "cell_times",
    "longest_cell",
    "execute_in_place",
    "run_papermill",
    "run_course",
    "effective_scale",
    "RUN_TIME_SENTENCE",
    "recorded_run_time",
    "run_time_problems",
    "write_run_times",
]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
BUDGET_SECONDS = 60
LIMIT_SECONDS = 90
#: Per-cell budget (measured and reported by ``make course``, not enforced).
CELL_BUDGET_SECONDS = 30
#: Per-cell timeout of nbval, papermill and execute: a guard against hangs, not a budget.
CELL_TIMEOUT_SECONDS = 600
#: The same guard for ``run --scale paper`` (``make paper``), whose cells legitimately run for minutes.
PAPER_CELL_TIMEOUT_SECONDS = 3600
#: The scales a notebook supports (as ``isodl.core.config.SCALES``; kept here so the tool imports without torch).
SCALES = ("course", "paper")
SCALE_ENV = "ISODL_SCALE"
KERNEL = "python3"


def list_notebooks(directory: Path | str = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks in learning order (``NN_name.ipynb``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"notebook folder {directory} does not exist")
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    from datetime import datetime

    if not start or not end:
        return None
    try:
        return (
            datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
        ).total_seconds()
    except ValueError:
        return None


def cell_times(notebook_path: Path | str) -> list[tuple[int, float]]:
    """The wall time of each code cell of an executed notebook, as ``(index, seconds)`` pairs.

    ``index`` counts the source notebook's code cells from 0, as nbval's ``Cell N`` does;
    papermill's injected-parameters cell is left out. The seconds are what papermill recorded
    (``metadata.papermill.duration``, else its ``start_time``/``end_time``), falling back on
    nbclient's ``metadata.execution`` timestamps. Cells without a timing (not reached, or a
    notebook executed without timing) are left out, so the list may be shorter than the notebook.
    """
    nb = json.loads(Path(notebook_path).read_text(encoding="utf-8"))
    times = []
    index = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        if "injected-parameters" in meta.get("tags", []):
            continue
        pm = meta.get("papermill") or {}
        seconds = pm.get("duration")
        if seconds is None:
            seconds = _seconds_between(pm.get("start_time"), pm.get("end_time"))
        if seconds is None:
            ex = meta.get("execution") or {}
            seconds = _seconds_between(ex.get("iopub.execute_input"), ex.get("shell.execute_reply"))
        if seconds is not None:
            times.append((index, float(seconds)))
        index += 1
    return times


def longest_cell(notebook_path: Path | str) -> tuple[int, float] | None:
    """``(index, seconds)`` of the slowest code cell of an executed notebook (None without timings)."""
    times = cell_times(notebook_path)
    return max(times, key=lambda t: t[1]) if times else None


def _headless_env() -> None:
    os.environ["ISODL_HEADLESS"] = "1"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # One compute thread per kernel (see isodl.core.config.configure_threads): the
    # course's models are small and extra threads stall when a core is busy.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


#: The first cell's run-time sentence; ``{seconds}`` is the time :func:`execute_in_place` recorded.
RUN_TIME_SENTENCE = (
    '**Expected run time:** about {seconds} s on a 2-core laptop CPU at `SCALE="course"` (measured by '
    "`make execute`, which records it; a busy or older machine can take two to three times as long)."
)
# The sentence as written by hand before it was generated: up to the first ")." or the end of its paragraph.
_RUN_TIME_TEXT = re.compile(r"\*\*Expected run time:\*\*(?:(?!\n\n).)*?(?:\)\.|(?=\n\n)|$)", re.S)
#: Where :func:`execute_in_place` records the run time: ``nb.metadata[RUN_TIME_KEY]["run_seconds"]``.
RUN_TIME_KEY = "isodl"
README = ROOT / "README.md"


def recorded_run_time(path: Path | str) -> int | None:
    """The run time in whole seconds that the last ``make execute`` of ``path`` recorded, or None."""
    meta = json.loads(Path(path).read_text()).get("metadata", {})
    seconds = meta.get(RUN_TIME_KEY, {}).get("run_seconds")
    return None if seconds is None else int(seconds)


_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _readme_rows(text: str):
    """``(line index, column index of "run time", cells)`` for each notebook row of the README's table."""
    lines = text.split("\n")
    column = None
    for i, line in enumerate(lines):
        # Cells split at unescaped pipes (a "|" inside a cell is written "\\|", as Markdown requires).
        cells = [c.strip() for c in _CELL_SPLIT.split(line.strip().strip("|"))] if line.startswith("|") else None
        if cells is None:
            column = None
            continue
        if column is None and "run time" in [c.lower() for c in cells]:
            column = [c.lower() for c in cells].index("run time")
            width = len(cells)
            continue
        if column is not None:
            if len(cells) != width:
                raise ValueError(
                    f"README line {i + 1} has {len(cells)} cells, its table {width}: write a '|' inside a cell as '\\|'"
                )
            yield i, column, cells


def _readme_time(text: str, name: str) -> str | None:
    for _i, column, cells in _readme_rows(text):
        if f"](notebooks/{name})" in cells[0]:
            return cells[column]
    return None


def run_time_problems(notebooks: list[Path] | None = None, readme: Path | str = README) -> list[str]:
    """Where the recorded run times, the first cells and the README disagree (empty when they agree)."""
    notebooks = list_notebooks() if notebooks is None else [Path(n) for n in notebooks]
    text = Path(readme).read_text()
    problems = []
    for path in notebooks:
        seconds = recorded_run_time(path)
        if seconds is None:
            problems.append(f"{path.name}: no recorded run time; run `make execute NB={path}`")
            continue
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        if RUN_TIME_SENTENCE.format(seconds=seconds) not in first:
            problems.append(f"{path.name}: the first cell does not say the recorded {seconds} s")
        shown = _readme_time(text, path.name)
        if shown != f"{seconds} s":
            problems.append(f"{path.name}: README says {shown!r}, recorded {seconds} s")
    return problems


def write_run_times(notebooks: list[Path] | None = None, readme: Path | str = README) -> list[str]:
    """Write each notebook's recorded run time into its first cell and the README row; return what changed."""
    import nbformat

    notebooks = list_notebooks() if notebooks is None else [Path(n) for n in notebooks]
    readme = Path(readme)
    lines = readme.read_text().split("\n")
    rows = {i: (column, cells) for i, column, cells in _readme_rows("\n".join(lines))}
    changed = []
    for path in notebooks:
        seconds = recorded_run_time(path)
        if seconds is None:
            continue
        nb = nbformat.read(path, as_version=4)
        sentence = RUN_TIME_SENTENCE.format(seconds=seconds)
        source = nb.cells[0].source
        new = _RUN_TIME_TEXT.sub(lambda _m: sentence, source, count=1) if _RUN_TIME_TEXT.search(source) else None
        if new is None:
            new = source.rstrip() + "\n\n" + sentence
        if new != source:
            nb.cells[0].source = new
            nbformat.write(nb, path)
            changed.append(f"{path.name}: first cell")
        for i, (column, cells) in rows.items():
            if f"](notebooks/{path.name})" in cells[0] and cells[column] != f"{seconds} s":
                cells[column] = f"{seconds} s"
                lines[i] = "| " + " | ".join(cells) + " |"
                changed.append(f"{path.name}: README")
    readme.write_text("\n".join(lines))
    return changed


def execute_in_place(path: Path | str, *, timeout: int = CELL_TIMEOUT_SECONDS) -> float:
    """Run one notebook top to bottom in a fresh kernel and save it with its outputs.

    Returns the wall time in seconds, which it also records in the notebook's
    metadata (:func:`recorded_run_time`) for :func:`write_run_times`. Raises
    ``nbclient.exceptions.CellExecutionError`` (and leaves the file untouched)
    when a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    _headless_env()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nb.metadata.pop("papermill", None)
    nb.metadata[RUN_TIME_KEY] = {"run_seconds": round(seconds)}
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return seconds


def run_papermill(
    src: Path | str, dst: Path | str, parameters: dict | None = None, *, timeout: int = CELL_TIMEOUT_SECONDS
) -> None:
    """Execute ``src`` with papermill into ``dst`` (injecting ``parameters``)."""
    import papermill

    _headless_env()
    papermill.execute_notebook(
        str(src),
        str(dst),
        parameters=parameters or {},
        kernel_name=KERNEL,
        cwd=str(Path(src).parent),
        progress_bar=False,
        execution_timeout=timeout,
        log_output=False,
    )


def _run_one(src: str, dst: str, params_json: str, timeout: int = CELL_TIMEOUT_SECONDS) -> None:
    """Child process of :func:`run_course`: run one notebook and report time and the kernel's peak memory."""
    status = "ok"
    start = time.perf_counter()
    try:
        run_papermill(src, dst, json.loads(params_json), timeout=timeout)
    except Exception as exc:  # reported in the table, not raised: this is a benchmark
        status = f"FAILED: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"[:300]
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the kernel is our child
    print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024, "status": status}))


def run_course(
    notebooks: list[Path] | None = None,
    *,
    out: Path | str = ROOT / "build" / "course",
    report: Path | str = ROOT / "build" / "runtimes.md",
    parameters: dict | None = None,
    scale: str | None = None,
    timeout: int | None = None,
) -> list[dict]:
    """Execute notebooks one by one in separate processes; write the run-time report.

    ``scale`` (``"course"`` or ``"paper"``) runs every notebook at that SCALE: it is
    injected as the papermill parameter ``SCALE`` and set as ``ISODL_SCALE`` for the
    kernel (which wins over the parameters cell, see ``isodl.core.config.resolve_scale``).
    Without it the notebooks run with their own SCALE unless ``ISODL_SCALE`` is set.
    ``timeout`` is the per-cell guard against hangs (default: ``CELL_TIMEOUT_SECONDS``,
    ``PAPER_CELL_TIMEOUT_SECONDS`` at paper scale). The report is rewritten after each
    notebook and lists the notebooks still to run.
    """
    notebooks = list_notebooks() if notebooks is None else [Path(n) for n in notebooks]
    out, report = Path(out), Path(report)
    parameters = dict(parameters or {})
    env = dict(os.environ)
    if scale is not None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        parameters["SCALE"] = scale
        env[SCALE_ENV] = scale
    effective = effective_scale(parameters, env)
    if timeout is None:
        timeout = PAPER_CELL_TIMEOUT_SECONDS if effective == "paper" else CELL_TIMEOUT_SECONDS
    out.mkdir(parents=True, exist_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, nb in enumerate(notebooks):
        (out / nb.name).unlink(missing_ok=True)  # no stale timings from an earlier run
        cmd = [
            sys.executable,
            "-m",
            "tools.course",
            "_one",
            str(nb),
            str(out / nb.name),
            json.dumps(parameters),
            "--timeout",
            str(timeout),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
        try:
            row = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            row = {"seconds": float("nan"), "peak_mb": float("nan"), "status": f"FAILED: {proc.stderr.strip()[-300:]}"}
        row["notebook"] = nb.name
        # papermill saves the output notebook after every cell, so a failed run still has its timings
        try:
            slowest = longest_cell(out / nb.name)
        except (OSError, ValueError):
            slowest = None
        row["longest_cell"], row["longest_cell_seconds"] = slowest if slowest else (None, float("nan"))
        rows.append(row)
        print(
            f"{nb.name:45s} {row['seconds']:7.1f} s  {row['peak_mb']:7.0f} MB  "
            f"longest {_cell_label(row):>8s} {row['longest_cell_seconds']:6.1f} s "
            f"({_cell_budget(row, effective)})  {row['status']}",
            flush=True,
        )
        pending = [n.name for n in notebooks[k + 1 :]]
        _write_report(rows, report, parameters, scale=effective, pending=pending, quiet=bool(pending))
    return rows


def effective_scale(parameters: dict | None = None, env: dict | None = None) -> str:
    """The SCALE the notebooks run at: ``ISODL_SCALE`` if set, else a ``SCALE`` parameter, else ``"course"``.

    The same order as ``isodl.core.config.resolve_scale`` (the environment wins over the parameters cell).
    """
    env = os.environ if env is None else env
    scale = env.get(SCALE_ENV) or (parameters or {}).get("SCALE") or "course"
    return str(scale)


def _budgets_apply(scale: str) -> bool:
    """The 60 s / 30 s budgets are course-scale budgets; at any other scale times are only reported."""
    return scale == "course"


def _notebook_budget(row: dict, scale: str = "course") -> str:
    seconds = row["seconds"]
    if seconds != seconds:  # nan: not measured
        return "n/a"
    if not _budgets_apply(scale):
        return f"n/a ({scale} scale)"
    if seconds <= BUDGET_SECONDS:
        return "ok"
    return f"over {BUDGET_SECONDS} s" if seconds <= LIMIT_SECONDS else f"OVER {LIMIT_SECONDS} s"


def _cell_label(row: dict) -> str:
    return "n/a" if row.get("longest_cell") is None else f"cell {row['longest_cell']}"


def _cell_budget(row: dict, scale: str = "course") -> str:
    seconds = row.get("longest_cell_seconds", float("nan"))
    if row.get("longest_cell") is None or seconds != seconds:
        return "n/a"
    if not _budgets_apply(scale):
        verdict = f"n/a ({scale} scale)"
        return verdict if row.get("status") == "ok" else f"{verdict}, so far (run failed)"
    verdict = "ok" if seconds <= CELL_BUDGET_SECONDS else f"OVER {CELL_BUDGET_SECONDS} s"
    return verdict if row.get("status") == "ok" else f"{verdict} so far (run failed)"


def _write_report(
    rows: list[dict],
    report: Path,
    parameters: dict | None,
    *,
    scale: str | None = None,
    pending: list[str] | tuple[str, ...] = (),
    quiet: bool = False,
) -> None:
    import platform

    import torch

    scale = effective_scale(parameters) if scale is None else scale
    budgets = _budgets_apply(scale)
    command = "make course" if scale == "course" else f"make {scale}" if scale in SCALES else "tools.course run"
    if budgets:
        budget_line = (
            f"Budgets: about {BUDGET_SECONDS} s per notebook, never over {LIMIT_SECONDS} s; "
            f"at most {CELL_BUDGET_SECONDS} s per cell. These are measurements, reported and never enforced "
            f"(the {CELL_TIMEOUT_SECONDS} s per-cell timeout of nbval and papermill only guards against hangs)."
        )
    else:
        budget_line = (
            f'Budgets: none at SCALE="{scale}". The {BUDGET_SECONDS} s per notebook and {CELL_BUDGET_SECONDS} s per '
            f"cell budgets are course-scale budgets, so the budget columns read n/a; the times are measurements only "
            f"(a per-cell timeout only guards against hangs)."
        )
    lines = [
        f'# Notebook run times at SCALE="{scale}"',
        "",
        f"Measured by `{command}` on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}), "
        f"{time.strftime('%Y-%m-%d %H:%M')}, SCALE={scale}"
        f"{'' if os.environ.get(SCALE_ENV) or (parameters or {}).get('SCALE') else ' (default)'}, "
        f"parameters {parameters or 'default'}.",
        budget_line,
        "Wall time includes kernel start-up; peak memory is the kernel's maximum resident set size. "
        "The longest cell is numbered as nbval numbers cells (`notebook.ipynb::Cell N`: code cells from 0) "
        "and timed by papermill.",
        "",
        "| notebook | wall time (s) | notebook budget | longest cell | longest cell (s) | cell budget "
        "| peak memory (MB) | status |",
        "|---|---:|---|---|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['notebook']} | {r['seconds']:.1f} | {_notebook_budget(r, scale)} | {_cell_label(r)} "
            f"| {r['longest_cell_seconds']:.1f} | {_cell_budget(r, scale)} | {r['peak_mb']:.0f} | {r['status']} |"
        )
    total = sum(r["seconds"] for r in rows)
    lines += ["", f"Total: {total:.1f} s for {len(rows)} notebook(s)."]
    timed = [r for r in rows if r.get("longest_cell") is not None]
    if timed:
        worst = max(timed, key=lambda r: r["longest_cell_seconds"])
        over = [r["notebook"] for r in timed if r["longest_cell_seconds"] > CELL_BUDGET_SECONDS]
        failed = [r["notebook"] for r in rows if r["status"] != "ok"]
        if budgets:
            verdict = (
                f"over the {CELL_BUDGET_SECONDS} s cell budget: {', '.join(over)}."
                if over
                else f"every timed cell within the {CELL_BUDGET_SECONDS} s cell budget."
            )
        else:
            verdict = f"no cell budget at {scale} scale."
        lines.append(
            f"Longest cell: {worst['notebook']} {_cell_label(worst)}, {worst['longest_cell_seconds']:.1f} s; "
            + verdict
            + (f" Not timed past their failure: {', '.join(failed)}." if failed else "")
        )
    if pending:
        lines.append(f"Run in progress; still to run: {', '.join(pending)}.")
    report.write_text("\n".join(lines) + "\n")
    if not quiet:
        print(f"wrote {report}")


def _parse_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"-p expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="re-run notebooks in place (the project's execute command)")
    ex.add_argument("notebooks", nargs="*")
    run = sub.add_parser("run", help="execute all notebooks with papermill into build/ and time them")
    run.add_argument("notebooks", nargs="*")
    run.add_argument("--out", default=str(ROOT / "build" / "course"))
    run.add_argument("--report", default=str(ROOT / "build" / "runtimes.md"))
    run.add_argument("-p", "--parameter", action="append", default=[], help="NAME=VALUE, e.g. -p SEED=1")
    run.add_argument(
        "--scale",
        choices=SCALES,
        default=None,
        help="run every notebook at this SCALE (parameter SCALE and ISODL_SCALE for the kernel); "
        "default: each notebook's own SCALE, or ISODL_SCALE when set",
    )
    run.add_argument(
        "--cell-timeout",
        type=int,
        default=None,
        help=f"per-cell guard against hangs in seconds (default {CELL_TIMEOUT_SECONDS}, "
        f"{PAPER_CELL_TIMEOUT_SECONDS} at paper scale)",
    )
    times = sub.add_parser("runtimes", help="write the recorded run times into first cells and the README")
    times.add_argument("--check", action="store_true", help="only report disagreements (exit 1 if any)")
    one = sub.add_parser("_one")
    one.add_argument("src")
    one.add_argument("dst")
    one.add_argument("params")
    one.add_argument("--timeout", type=int, default=CELL_TIMEOUT_SECONDS)
    args = parser.parse_args(argv)
    if args.command == "execute":
        notebooks = [Path(n) for n in args.notebooks] or list_notebooks()
        failed = 0
        for nb in notebooks:
            try:
                seconds = execute_in_place(nb)
                print(f"{nb.name:45s} {seconds:7.1f} s  executed in place")
            except Exception as exc:
                failed += 1
                print(f"{nb.name:45s} FAILED ({type(exc).__name__}); file left unchanged\n{exc}", file=sys.stderr)
        write_run_times(notebooks)
        return 1 if failed else 0
    if args.command == "runtimes":
        if args.check:
            problems = run_time_problems()
            print("\n".join(problems) or "run times agree")
            return 1 if problems else 0
        print("\n".join(write_run_times()) or "nothing to change")
        return 0
    if args.command == "run":
        rows = run_course(
            [Path(n) for n in args.notebooks] or None,
            out=args.out,
            report=args.report,
            parameters=_parse_params(args.parameter),
            scale=args.scale,
            timeout=args.cell_timeout,
        )
        return 0 if all(r["status"] == "ok" for r in rows) else 1
    _run_one(args.src, args.dst, args.params, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

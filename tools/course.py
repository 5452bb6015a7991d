"""Execute the course's notebooks headless, and measure them.

Two commands (wired to ``make execute`` and ``make course``)::

    python -m tools.course execute [NOTEBOOK ...]
        Re-run notebooks *in place*, top to bottom in a fresh kernel, so the
        committed outputs come from one clean in-order run. This is the
        project's execute command: use it before committing a notebook.

    python -m tools.course run [--out build/course] [--report build/runtimes.md]
                               [-p NAME=VALUE ...] [NOTEBOOK ...]
        Execute every notebook with papermill into ``--out`` (the sources are
        not touched) and write a Markdown table of each notebook's wall time
        and the kernel's peak memory. A benchmark, not a test: it reports the
        budgets (about 60 s per notebook, never over 90 s) without failing.

Both set ``ISODL_HEADLESS=1`` for the kernel, so progress bars stay quiet and
widgets also render their default figure as a static image.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
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
    "list_notebooks",
    "execute_in_place",
    "run_papermill",
    "run_course",
]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
BUDGET_SECONDS = 60
LIMIT_SECONDS = 90
#: Per-cell budget (measured and reported by ``make course``, not enforced).
CELL_BUDGET_SECONDS = 30
#: Per-cell timeout of nbval, papermill and execute: a guard against hangs, not a budget.
CELL_TIMEOUT_SECONDS = 600
KERNEL = "python3"


def list_notebooks(directory: Path | str = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks in learning order (``NN_name.ipynb``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"notebook folder {directory} does not exist")
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _headless_env() -> None:
    os.environ["ISODL_HEADLESS"] = "1"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # One compute thread per kernel (see isodl.core.config.configure_threads): the
    # course's models are small and extra threads stall when a core is busy.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def execute_in_place(path: Path | str, *, timeout: int = CELL_TIMEOUT_SECONDS) -> float:
    """Run one notebook top to bottom in a fresh kernel and save it with its outputs.

    Returns the wall time in seconds. Raises ``nbclient.exceptions.CellExecutionError``
    (and leaves the file untouched) when a cell fails.
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


def _run_one(src: str, dst: str, params_json: str) -> None:
    """Child process of :func:`run_course`: run one notebook and report time and the kernel's peak memory."""
    status = "ok"
    start = time.perf_counter()
    try:
        run_papermill(src, dst, json.loads(params_json))
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
) -> list[dict]:
    """Execute notebooks one by one in separate processes; write the run-time report."""
    notebooks = list_notebooks() if notebooks is None else [Path(n) for n in notebooks]
    out, report = Path(out), Path(report)
    out.mkdir(parents=True, exist_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for nb in notebooks:
        cmd = [sys.executable, "-m", "tools.course", "_one", str(nb), str(out / nb.name), json.dumps(parameters or {})]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        try:
            row = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            row = {"seconds": float("nan"), "peak_mb": float("nan"), "status": f"FAILED: {proc.stderr.strip()[-300:]}"}
        row["notebook"] = nb.name
        rows.append(row)
        print(f"{nb.name:45s} {row['seconds']:7.1f} s  {row['peak_mb']:7.0f} MB  {row['status']}", flush=True)
    _write_report(rows, report, parameters)
    return rows


def _write_report(rows: list[dict], report: Path, parameters: dict | None) -> None:
    import platform

    import torch

    lines = [
        "# Notebook run times",
        "",
        f"Measured by `make course` on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}), "
        f"{time.strftime('%Y-%m-%d %H:%M')}, SCALE={os.environ.get('ISODL_SCALE', 'course (default)')}, "
        f"parameters {parameters or 'default'}.",
        f"Budget: about {BUDGET_SECONDS} s per notebook, never over {LIMIT_SECONDS} s. "
        "Wall time includes kernel start-up; peak memory is the kernel's maximum resident set size.",
        "",
        "| notebook | wall time (s) | peak memory (MB) | budget | status |",
        "|---|---:|---:|---|---|",
    ]
    for r in rows:
        budget = (
            "ok" if r["seconds"] <= BUDGET_SECONDS else ("over 60 s" if r["seconds"] <= LIMIT_SECONDS else "OVER 90 s")
        )
        lines.append(f"| {r['notebook']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {budget} | {r['status']} |")
    total = sum(r["seconds"] for r in rows)
    lines += ["", f"Total: {total:.1f} s for {len(rows)} notebook(s)."]
    report.write_text("\n".join(lines) + "\n")
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
    one = sub.add_parser("_one")
    one.add_argument("src")
    one.add_argument("dst")
    one.add_argument("params")
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
        return 1 if failed else 0
    if args.command == "run":
        rows = run_course(
            [Path(n) for n in args.notebooks] or None,
            out=args.out,
            report=args.report,
            parameters=_parse_params(args.parameter),
        )
        return 0 if all(r["status"] == "ok" for r in rows) else 1
    _run_one(args.src, args.dst, args.params)
    return 0


if __name__ == "__main__":
    sys.exit(main())

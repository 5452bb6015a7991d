"""Check that this machine can run the course, and say how to fix what it cannot.

``python -m tools.doctor`` (``make doctor``) prints one line per check, ``OK``
or ``FAIL`` with a fix, and exits with status 1 when anything failed:

* Python: 3.11 or later (the pinned environment uses 3.11);
* every package pinned in ``requirements.txt``: installed, at the pinned version;
* the widget pairing: ipywidgets 8 needs jupyterlab_widgets 3 and JupyterLab 4
  (widgets that show only as text are almost always a mismatch here);
* torch: a CPU build is enough; a CUDA build works but is a large download the course never needs;
* the ``isodl`` library importable from this checkout;
* offline data: scikit-learn digits and MNIST-1D generated here, without the network;
* a training run of a few seconds through the course's training loop.

Each check is a function returning a :class:`Check`, so the tests can run them
one by one and feed them broken inputs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ROOT",
    "Check",
    "read_pins",
    "check_python",
    "check_pins",
    "check_widget_pairing",
    "check_torch",
    "check_isodl",
    "check_offline_data",
    "check_training_run",
    "run_checks",
    "main",
]

ROOT = Path(__file__).resolve().parents[1]
TROUBLESHOOTING = "docs/teaching/README.md#troubleshooting"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``name``, whether it passed, what was found and, on failure, the fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        head = f"{'OK  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"
        return head if self.ok or not self.fix else f"{head}\n      fix: {self.fix}"


def read_pins(path: Path | str = ROOT / "requirements.txt") -> dict[str, str]:
    """``{package: version}`` from a requirements file of ``name==version`` lines (comments ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} is not a requirements file")
    pins = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        if m is None:
            raise ValueError(f"{path}:{number}: expected 'name==version', got {raw!r}")
        pins[m.group(1)] = m.group(2)
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    shown = ".".join(map(str, version))
    if tuple(version[:2]) >= (3, 11):
        return Check("Python", True, shown)
    return Check("Python", False, f"{shown} is too old", "install Python 3.11 and run `make setup` again")


def check_pins(pins: dict[str, str], installed: Callable[[str], str] = metadata.version) -> list[Check]:
    """One check per pinned package: installed at the pinned version."""
    out = []
    for name, want in pins.items():
        try:
            got = installed(name)
        except metadata.PackageNotFoundError:
            out.append(Check(name, False, "not installed", "run `make setup` (or pip install -r requirements.txt)"))
            continue
        base = got.split("+", 1)[0]  # torch's local tag, e.g. 2.13.0+cpu
        if base == want:
            out.append(Check(name, True, got))
        else:
            out.append(
                Check(name, False, f"{got} installed, {want} pinned", f"pip install '{name}=={want}' (or `make setup`)")
            )
    return out


def check_widget_pairing(installed: Callable[[str], str] = metadata.version) -> Check:
    """ipywidgets 8 renders in JupyterLab 4 only with jupyterlab_widgets 3."""
    try:
        versions = {n: installed(n) for n in ("ipywidgets", "jupyterlab_widgets", "jupyterlab")}
    except metadata.PackageNotFoundError as exc:
        return Check("widgets", False, f"{exc.name} is not installed", "run `make setup`")
    major = {n: int(v.split(".")[0]) for n, v in versions.items()}
    shown = ", ".join(f"{n} {v}" for n, v in versions.items())
    if major == {"ipywidgets": 8, "jupyterlab_widgets": 3, "jupyterlab": 4}:
        return Check("widgets", True, shown)
    return Check(
        "widgets",
        False,
        f"{shown}: these do not work together",
        "install the pinned trio (ipywidgets 8, jupyterlab_widgets 3, JupyterLab 4) with `make setup`, then "
        f"restart JupyterLab and reload the browser tab; see {TROUBLESHOOTING}",
    )


def check_torch() -> Check:
    try:
        import torch
    except ImportError:
        return Check("torch build", False, "torch is not importable", "run `make setup`")
    cuda = torch.version.cuda
    if cuda is None:
        return Check("torch build", True, f"{torch.__version__}, CPU build")
    return Check(
        "torch build",
        True,
        f"{torch.__version__} built for CUDA {cuda}: works, but the course needs only the CPU build "
        "(PIP_ARGS='--index-url https://download.pytorch.org/whl/cpu' make setup saves a large download)",
    )


def check_isodl() -> Check:
    try:
        isodl = importlib.import_module("isodl")
    except ImportError as exc:
        return Check("isodl", False, f"not importable ({exc})", "run `make setup` (it installs lib/ with pip -e)")
    where = Path(isodl.__file__).resolve()
    if not where.is_relative_to(ROOT / "lib"):
        return Check(
            "isodl",
            False,
            f"imported from {where}, not from this checkout",
            "another copy is installed: pip uninstall isodl, then `make setup` here",
        )
    return Check("isodl", True, f"{isodl.__version__} from {where.parent}")


def check_offline_data() -> Check:
    """scikit-learn digits and a small MNIST-1D, generated on this machine (no network)."""
    try:
        from isodl.core import data

        start = time.perf_counter()
        digits = data.digits()
        m1d = data.mnist1d(n_samples=500)
        seconds = time.perf_counter() - start
    except Exception as exc:  # report, do not raise: this is a diagnosis
        return Check("offline data", False, f"{type(exc).__name__}: {exc}", "run `make setup`; see " + TROUBLESHOOTING)
    return Check(
        "offline data",
        True,
        f"digits {tuple(digits.x_train.shape)}, MNIST-1D {tuple(m1d.x_train.shape)} in {seconds:.1f} s",
    )


def check_training_run(budget_s: float = 10.0) -> Check:
    """A small classifier trained for a few seconds with the course's loop; it must beat chance."""
    try:
        import torch

        from isodl.core import data, train
        from isodl.core.config import set_seed

        set_seed(0)
        d = data.digits()
        model = torch.nn.Sequential(torch.nn.Linear(d.n_features, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))
        start = time.perf_counter()
        train.fit(model, d, epochs=3, batch_size=64, lr=1e-2, progress=False)
        seconds = time.perf_counter() - start
        acc = train.accuracy(model, d.x_test, d.y_test)
    except Exception as exc:
        return Check("training run", False, f"{type(exc).__name__}: {exc}", "run `make setup`; see " + TROUBLESHOOTING)
    if acc <= 0.5:
        return Check("training run", False, f"test accuracy {acc:.2f} after 3 epochs (expected > 0.5)", TROUBLESHOOTING)
    slow = seconds > budget_s
    detail = f"3 epochs on digits in {seconds:.1f} s, test accuracy {acc:.2f}"
    if slow:
        detail += f" (slower than {budget_s:.0f} s: notebooks will take longer than the times quoted)"
    return Check("training run", True, detail)


def run_checks() -> list[Check]:
    checks = [check_python()]
    try:
        checks += check_pins(read_pins())
    except (OSError, ValueError) as exc:
        checks.append(Check("requirements.txt", False, str(exc), "run from a checkout of the course"))
    checks += [check_widget_pairing(), check_torch(), check_isodl(), check_offline_data(), check_training_run()]
    return checks


def main(argv=None) -> int:
    """Command line: ``python -m tools.doctor``; exit status 1 if any check failed."""
    argparse.ArgumentParser(prog="python -m tools.doctor", description=__doc__.splitlines()[0]).parse_args(argv)
    checks = run_checks()
    for c in checks:
        print(c.line())
    failed = [c for c in checks if not c.ok]
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} checks OK." + (f" Help: {TROUBLESHOOTING}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

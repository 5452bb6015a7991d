"""Every notebook: the exercise-check framework that compares a learner's function with a reference.

In a notebook, an exercise cell defines one function and the next code cell
checks it with the ``checks`` module of its part (``from isodl.core import
checks`` in notebook 00, ``from isodl.symmetry import checks`` in notebooks
01-04, and so on)::

    checks.check_unit_rows(unit_rows)

The check calls the learner's function and the reference on a few random
inputs and prints one line: ``PASS: ...`` or ``FAIL: ...: what went wrong.
Hint: ...`` followed by the offending input. It returns a :class:`CheckResult`
(truthy when passed) and never raises because the learner's code is wrong, so a
notebook keeps running. A function that still raises the stub of the student
copy (:data:`STUB_MESSAGE`, written by ``tools/student.py``) gets
:data:`NOT_DONE_HINT`.

Adding a check for a new exercise
---------------------------------
1. Write the reference in the library (for example :func:`isodl.core.ops.unit_rows`).
2. In the ``checks`` module of the notebook's part, define
   ``check_<name>(fn, *, verbose=True)`` that calls :func:`compare_functions`
   with the reference, a ``make_inputs(gen)`` function (returns a tuple of
   arguments drawn with the ``torch.Generator`` ``gen``) and optional ``hints``
   for the usual mistakes (:func:`matches` compares a tensor with a guess).
3. Register it with :func:`register_check` (as a decorator or by a call after
   the definition), which adds it to :data:`CHECKS`. :func:`all_checks` imports
   every module of :data:`CHECK_MODULES` and returns the registry
   (``tools/student.py`` runs the notebooks' solutions through it).

See :mod:`isodl.core.checks` (:func:`isodl.core.checks.check_unit_rows`) for a
complete example. This module imports only :mod:`isodl.core`; the parts' checks
import it.
"""

from __future__ import annotations

import cmath
import copy
import numbers
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from isodl.core.validate import check_bool, check_float, check_int

__all__ = [
    "NOT_DONE_HINT",
    "STUB_MESSAGE",
    "CheckResult",
    "compare_functions",
    "matches",
    "CHECKS",
    "register_check",
    "define_check",
    "exercise_check",
    "CHECK_MODULES",
    "all_checks",
]

#: The hint shown when the learner's function still raises the stub's error.
NOT_DONE_HINT = "this exercise is not done yet: replace the `raise NotImplementedError` line with your code"

#: Message of the stub written by :mod:`tools.student` (kept in sync there).
STUB_MESSAGE = "Exercise: write your solution here, then run the check cell below."


@dataclass
class CheckResult:
    """The outcome of one check: ``bool(result)`` is ``result.passed``."""

    name: str
    passed: bool
    message: str
    trials: int
    printed: bool = field(default=False, repr=False, compare=False)
    #: The library's function the check compared with (a drop-in: same arguments as the learner's).
    reference: Callable | None = field(default=None, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.passed)

    def fallback(self, fn: Callable) -> Callable:
        """``fn`` when the check passed, otherwise the reference, saying so.

        Student copies call it after every check (``unit_rows =
        checks.check_unit_rows(unit_rows).fallback(unit_rows)``), so an
        unfinished or wrong exercise never stops "Run All": the later cells run
        on the library's reference and the notebook reaches its end. Come back
        to the exercise and re-run from its cell once it passes.
        """
        if self.passed:
            return fn
        if self.reference is None:
            raise ValueError(f"the check {self.name!r} has no reference to fall back on")
        print(
            f"NOTE: {self.name} did not pass yet, so the cells below use the library's reference instead of "
            "your function. Fix the exercise, re-run its cell and this check, and they will use yours."
        )
        return self.reference

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        # A check that already printed its verdict (verbose=True) shows nothing
        # more when it is the last expression of a cell; otherwise print it once.
        if not self.printed:
            print(self.message)


# --------------------------------------------------------------------------- helpers


def _clone(obj):
    """A fresh copy of ``obj`` so a function that edits its inputs cannot cheat."""
    if isinstance(obj, torch.Tensor):
        out = obj.detach().clone()
        return out.requires_grad_(obj.requires_grad) if obj.is_leaf and obj.requires_grad else out
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, tuple):
        return tuple(_clone(o) for o in obj)
    if isinstance(obj, list):
        return [_clone(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    try:
        return copy.deepcopy(obj)
    except Exception:  # an object that cannot be copied is passed as is
        return obj


def _as_tensor(obj) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, np.ndarray):
        try:
            return torch.as_tensor(obj.copy())
        except (TypeError, RuntimeError):
            return None
    return None


def _fmt_number(v: float) -> str:
    return f"{v:.6g}"


def _show(label: str, obj) -> str:
    """``label = <compact description of obj>``, arrays over a few indented lines."""
    arr = None
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        kind = f"tensor of shape {tuple(obj.shape)}, {str(obj.dtype).replace('torch.', '')}"
        arr = t.numpy()
    elif isinstance(obj, np.ndarray):
        arr = obj
        kind = f"numpy array of shape {arr.shape}, {arr.dtype}"
    if arr is None:
        text = repr(obj)
        if len(text) > 200:
            text = text[:197] + "..."
        return f"  {label} = {text}"
    body = np.array2string(
        arr, precision=4, threshold=60, edgeitems=3, max_line_width=88, separator=", ", suppress_small=False
    )
    body = "\n".join("    " + line for line in body.splitlines())
    return f"  {label} = {kind}\n{body}"


def _show_inputs(inputs: tuple, arg_names: Sequence[str] | None) -> str:
    return "\n".join(
        _show(arg_names[i] if arg_names and i < len(arg_names) else f"argument {i + 1}", value)
        for i, value in enumerate(inputs)
    )


def _arg_names(fn, n: int) -> list[str] | None:
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return names[:n] if len(names) >= n else None


def _index_str(idx) -> str:
    idx = tuple(int(i) for i in idx)
    return str(idx[0]) if len(idx) == 1 else str(idx)


def _compare(got, expected, rtol: float, atol: float, where: str = "") -> str | None:
    """Return ``None`` when ``got`` matches ``expected``, else what differs."""
    label = f"output{where}"
    # Tuples and lists of results (functions returning several values).
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"your function returned a {type(got).__name__}, but {len(expected)} values (a tuple) were expected"
        if len(got) != len(expected):
            return f"your function returned {len(got)} values, but {len(expected)} were expected"
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = _compare(g, e, rtol, atol, where=f"{where}[{i}]")
            if problem:
                return problem
        return None
    # Plain numbers.
    if isinstance(expected, (numbers.Number, np.number)) and not isinstance(expected, (bool, np.bool_)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        elif isinstance(got, np.ndarray) and got.size == 1:
            got = got.item()
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (numbers.Number, np.number)):
            return f"your {label} is a {type(got).__name__}, but a number was expected"
        g, e = complex(got), complex(expected)
        if cmath.isnan(g) and cmath.isnan(e):
            return None
        if cmath.isfinite(e) and not cmath.isfinite(g):
            return f"your {label} is {got}, but the expected value is finite ({expected})"
        if g != e and not abs(g - e) <= atol + rtol * abs(e):
            return f"your {label} is {got!r}, expected {expected!r} (difference {abs(g - e):.3g})"
        return None
    exp_t = _as_tensor(expected)
    if exp_t is None:  # anything else: plain equality
        try:
            same = bool(got == expected)
        except Exception:
            same = False
        return None if same else f"your {label} is {got!r}, expected {expected!r}"

    got_t = _as_tensor(got)
    if got_t is None:
        return f"your function returned a {type(got).__name__}, but a torch.Tensor (or numpy array) was expected" + (
            " (convert it with torch.tensor(...) or build it from tensor operations)"
            if isinstance(got, (list, tuple))
            else ""
        )
    if tuple(got_t.shape) != tuple(exp_t.shape):
        return f"your {label} has shape {tuple(got_t.shape)}, but the expected shape is {tuple(exp_t.shape)}"
    if got_t.is_complex() and not exp_t.is_complex():
        return f"your {label} is complex ({got_t.dtype}), but a real result was expected"
    if got_t.dtype == torch.bool and exp_t.dtype == torch.bool:
        diff = got_t != exp_t
        if bool(diff.any()):
            first = torch.nonzero(diff)[0]
            return (
                f"your {label} differs from the expected one in {int(diff.sum())} of {diff.numel()} places "
                f"(first at index {_index_str(first)}: got {bool(got_t[tuple(first)])}, expected {bool(exp_t[tuple(first)])})"
            )
        return None
    dtype = torch.complex128 if exp_t.is_complex() or got_t.is_complex() else torch.float64
    g = got_t.cpu().to(dtype)
    e = exp_t.cpu().to(dtype)
    if g.numel() == 0:
        return None
    bad_finite = torch.isfinite(e) & ~torch.isfinite(g)
    if bool(bad_finite.any()):
        first = torch.nonzero(bad_finite)[0]
        what = "NaN" if bool(torch.isnan(g[tuple(first)])) else "infinite values"
        n_bad = int(bad_finite.sum())
        return (
            f"your {label} contains {what} where the expected values are finite "
            f"({n_bad} of {g.numel()} entries, first at index {_index_str(first)})"
        )
    close = torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if bool(close.all()):
        return None
    both_finite = torch.isfinite(g) & torch.isfinite(e)
    diff = torch.where(both_finite & ~close, (g - e).abs(), torch.zeros((), dtype=torch.float64))
    n_bad = int((~close).sum())
    if bool((diff > 0).any()):
        flat = int(torch.argmax(diff.reshape(-1)))
        worst = np.unravel_index(flat, tuple(g.shape)) if g.ndim else ()
        gv, ev = g.reshape(-1)[flat].item(), e.reshape(-1)[flat].item()
        return (
            f"your {label} differs from the expected values in {n_bad} of {g.numel()} entries; "
            f"the largest difference is {_fmt_number(float(diff.max()))} at index {_index_str(worst) if worst else '()'} "
            f"(got {_fmt_number(abs(gv) if isinstance(gv, complex) else gv)}, "
            f"expected {_fmt_number(abs(ev) if isinstance(ev, complex) else ev)})"
        )
    first = torch.nonzero(~close)[0]
    return (
        f"your {label} differs from the expected values in {n_bad} of {g.numel()} entries "
        f"(first at index {_index_str(first)}: got {g[tuple(first)].item()}, expected {e[tuple(first)].item()})"
    )


def _validate_hints(hints) -> list[tuple[Callable, str]]:
    if hints is None:
        return []
    if isinstance(hints, (str, bytes)) or not isinstance(hints, Sequence):
        raise TypeError("hints must be a sequence of (predicate, text) pairs")
    out = []
    for i, item in enumerate(hints):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and callable(item[0]) and isinstance(item[1], str)):
            raise TypeError(f"hints[{i}] must be a (predicate, text) pair with a callable predicate and a str text")
        out.append((item[0], item[1]))
    return out


def _first_hint(hints, got, expected, inputs) -> str | None:
    got_arg = _as_tensor(got) if isinstance(got, (torch.Tensor, np.ndarray)) else got
    for predicate, text in hints:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if bool(predicate(got_arg, expected, inputs)):
                    return text
        except Exception:  # a predicate that does not apply to this output
            continue
    return None


# --------------------------------------------------------------------------- the comparison


def _positional_count(fn) -> int:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def compare_functions(
    candidate,
    reference,
    make_inputs,
    *,
    name: str,
    n_trials: int = 5,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    hints: Sequence[tuple[Callable, str]] = (),
    verbose: bool = True,
) -> CheckResult:
    """Call ``candidate`` and ``reference`` on random inputs and compare the outputs.

    Parameters
    ----------
    candidate : callable
        The learner's function. Anything it raises is caught and reported.
    reference : callable
        The library's function with the expected behaviour.
    make_inputs : callable
        ``make_inputs(gen)`` draws one trial's arguments with the
        ``torch.Generator`` ``gen`` (seeded with ``seed``) and returns them as a
        tuple (any other value is passed as the single argument). A
        ``make_inputs(gen, trial)`` with two parameters also gets the trial
        number (0, 1, ...), for inputs that differ between trials (for
        example zero rows in every second trial). Each function
        gets its own fresh copy, so editing the inputs in place cannot cheat.
    name : str
        The exercise's name, used in the printed line.
    n_trials, seed : int
        How many random inputs to try, and the seed that makes them repeatable.
    rtol, atol : float
        Tolerances of ``torch.isclose`` (outputs are compared in float64).
    hints : sequence of (predicate, text)
        When the outputs differ, ``predicate(candidate_output, expected_output,
        inputs)`` is called for each pair in order and the ``text`` of the first
        one returning True is added as a hint. NumPy outputs are passed as
        tensors; a predicate that raises counts as False.
    verbose : bool
        Print the one-line verdict (and, on failure, the offending input).

    Returns
    -------
    CheckResult
        ``passed``, the full ``message`` and the number of ``trials`` run.
        Raises only for a bad call of this function itself (for example a
        ``candidate`` that is not callable), never for a wrong ``candidate``.
    """
    if not callable(candidate):
        raise TypeError(
            f"candidate must be a function, got {type(candidate).__name__}; "
            "pass the function itself, e.g. check(unit_rows), not check(unit_rows(x))"
        )
    if not callable(reference):
        raise TypeError(f"reference must be callable, got {type(reference).__name__}")
    if not callable(make_inputs):
        raise TypeError(f"make_inputs must be callable, got {type(make_inputs).__name__}")
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    n_trials = check_int("n_trials", n_trials, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    rtol = check_float("rtol", rtol, minimum=0.0)
    atol = check_float("atol", atol, minimum=0.0)
    hint_list = _validate_hints(hints)
    verbose = check_bool("verbose", verbose)

    takes_trial = _positional_count(make_inputs) >= 2
    gen = torch.Generator().manual_seed(seed)
    message = None
    trials = 0
    for trial in range(n_trials):
        trials = trial + 1
        inputs = make_inputs(gen, trial) if takes_trial else make_inputs(gen)
        if not isinstance(inputs, tuple):
            inputs = (inputs,)
        expected = reference(*_clone(inputs))
        problem, hint = None, None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the verdict says what is wrong
                got = candidate(*_clone(inputs))
        except NotImplementedError as exc:
            text = str(exc)
            if not text or text == STUB_MESSAGE or text.startswith("Exercise:"):
                problem = "your function raised NotImplementedError"
                hint = NOT_DONE_HINT
            else:
                problem = f"your function raised NotImplementedError: {text}"
                hint = (
                    "this error comes from an operation your code calls, not from the exercise stub; "
                    "that operation does not support these inputs, try another way to compute it"
                )
        except Exception as exc:  # the learner's code failed: report, do not raise
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            problem = f"your function raised {type(exc).__name__}" + (f": {text}" if text else "")
        else:
            problem = _compare(got, expected, rtol, atol)
            if problem is not None:
                hint = _first_hint(hint_list, got, expected, inputs)
        if problem is not None:
            message = f"FAIL: {name}: {problem.rstrip('.')}." + (f" Hint: {hint.rstrip('.')}." if hint else "")
            names = _arg_names(candidate, len(inputs)) or _arg_names(reference, len(inputs))
            message += f"\nInput that failed (random trial {trials} of {n_trials}):\n" + _show_inputs(inputs, names)
            break
    if message is None:
        noun = "input" if n_trials == 1 else "inputs"
        message = f"PASS: {name} matched the reference on {n_trials} random {noun}"
    result = CheckResult(
        name=name, passed=message.startswith("PASS"), message=message, trials=trials, reference=reference
    )
    if verbose:
        print(message)
        result.printed = True
    return result


# --------------------------------------------------------------------------- registry

#: Every exercise check by name: ``CHECKS["unit_rows"] is check_unit_rows``.
CHECKS: dict[str, Callable[..., CheckResult]] = {}


def register_check(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    """Add ``check_<name>`` to :data:`CHECKS`; use as a decorator or call it after the definition.

    Each part of the course keeps its checks in its own ``checks`` module
    (``isodl.symmetry.checks`` for notebooks 01-04, ...), which registers them::

        from isodl.exercises import compare_functions, register_check

        @register_check
        def check_srm_angles(fn, *, verbose=True):
            return compare_functions(fn, srm_angles, make_inputs, name="srm_angles", verbose=verbose)

    The notebook's check cell calls it from that module
    (``checks.check_srm_angles(srm_angles)`` after
    ``from isodl.symmetry import checks``). :func:`all_checks` imports every
    part's checks and returns the registry.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    fname = getattr(fn, "__name__", "")
    if not fname.startswith("check_") or len(fname) <= len("check_"):
        raise ValueError(f"a check function must be named check_<name>, got {fname!r}")
    CHECKS[fname[len("check_") :]] = fn
    return fn


def define_check(
    name: str,
    reference: Callable,
    make_inputs: Callable,
    *,
    label: str | None = None,
    n_trials: int = 6,
    doc: str = "",
    **compare: object,
) -> Callable[..., CheckResult]:
    """Build and register ``check_<name>(fn, *, n_trials=..., seed=0, verbose=True)``.

    The check calls :func:`compare_functions` with ``reference``,
    ``make_inputs`` and the other keyword arguments (``rtol``, ``atol``,
    ``hints``); ``n_trials`` is its default number of random inputs and ``doc``
    its docstring. ``label`` is the name printed in PASS/FAIL lines (default ``name``). Every exercise check of the course is made this way::

        check_unit_rows = define_check("unit_rows", ops.unit_rows, make_inputs, hints=UNIT_ROWS_HINTS, doc="...")
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier such as 'unit_rows', got {name!r}")
    if not callable(reference) or not callable(make_inputs):
        raise TypeError("reference and make_inputs must be callables")
    n_trials = check_int("n_trials", n_trials, minimum=1)
    label = name if label is None else label
    unknown = set(compare) - {"rtol", "atol", "hints"}
    if unknown:
        raise TypeError(f"define_check passes only rtol, atol and hints on to compare_functions, got {sorted(unknown)}")
    default_trials = n_trials

    def check(fn, *, n_trials: int = default_trials, seed: int = 0, verbose: bool = True) -> CheckResult:
        return compare_functions(
            fn, reference, make_inputs, name=label, n_trials=n_trials, seed=seed, verbose=verbose, **compare
        )

    check.__name__ = check.__qualname__ = f"check_{name}"
    check.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    check.__doc__ = doc
    return register_check(check)


def exercise_check(
    reference: Callable,
    make_inputs: Callable,
    *,
    label: str | None = None,
    **compare: object,
) -> Callable[[Callable], Callable[..., CheckResult]]:
    """Decorator form of :func:`define_check`, the way the course's parts write their checks::

        @exercise_check(ops.unit_rows, _unit_rows_inputs, hints=UNIT_ROWS_HINTS)
        def check_unit_rows(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
            \"\"\"Check the notebook-00 exercise ``unit_rows(x)``.\"\"\"

    The decorated function is never run: it gives the check its name
    (``check_<name>``), its default ``n_trials`` and its docstring.
    """

    def wrap(stub: Callable) -> Callable[..., CheckResult]:
        import inspect

        fname = getattr(stub, "__name__", "")
        if not fname.startswith("check_"):
            raise ValueError(f"a check function must be named check_<name>, got {fname!r}")
        trials = inspect.signature(stub).parameters.get("n_trials")
        check = define_check(
            fname[len("check_") :],
            reference,
            make_inputs,
            label=label,
            n_trials=6 if trials is None else trials.default,
            doc=stub.__doc__ or "",
            **compare,
        )
        check.__module__ = stub.__module__
        return check

    return wrap


#: The modules that hold the course's exercise checks, in course order.
CHECK_MODULES = (
    "isodl.core.checks",
    "isodl.symmetry.checks",
    "isodl.topology.checks",
    "isodl.normalisation.checks",
    "isodl.recurrent.checks",
    "isodl.superposition.checks",
)


def all_checks() -> dict[str, Callable[..., CheckResult]]:
    """Import every part's ``checks`` module and return :data:`CHECKS` (name -> check function)."""
    import importlib

    for name in CHECK_MODULES:
        importlib.import_module(name)
    return dict(CHECKS)


def matches(got, target) -> bool:
    """Whether tensor ``got`` has ``target``'s shape and values (float64, rtol 1e-5, atol 1e-6); for hints."""
    got = got.to(torch.float64)
    return tuple(got.shape) == tuple(target.shape) and bool(
        torch.allclose(got, target, rtol=1e-5, atol=1e-6, equal_nan=False)
    )

"""Exercise checks: compare a learner's function with the library's reference.

In a notebook, an exercise cell defines one function and the next code cell
checks it::

    checks.check_unit_rows(unit_rows)

The check calls the learner's function and the reference on a few random
inputs and prints one line: ``PASS: ...`` or ``FAIL: ...: what went wrong.
Hint: ...`` followed by the offending input. It returns a :class:`CheckResult`
(truthy when passed) and never raises because the learner's code is wrong, so a
notebook keeps running.

Adding a check for a new exercise
---------------------------------
1. Write the reference in the library (for example ``isodl.ops.unit_rows``).
2. Define ``check_<name>(fn, *, verbose=True)`` that calls
   :func:`compare_functions` with the reference, a ``make_inputs(gen)``
   function (returns a tuple of arguments drawn with the ``torch.Generator``
   ``gen``) and optional ``hints`` for the usual mistakes.
3. Register it: add it to :data:`CHECKS` here, or, from another module, decorate
   it with :func:`register_check`, which also makes it available as
   ``isodl.checks.check_<name>`` for the check cell.

See :func:`check_unit_rows` for a complete example.
"""
from __future__ import annotations

import cmath
import copy
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from . import ops
from .validate import check_bool, check_float, check_int

__all__ = [
    "CheckResult",
    "compare_functions",
    "check_unit_rows",
    "register_check",
    "CHECKS",
    "NOT_DONE_HINT",
]

#: The hint shown when the learner's function still raises the stub's error.
NOT_DONE_HINT = "this exercise is not done yet: replace the `raise NotImplementedError` line with your code"

#: Message of the stub written by :mod:`isodl.student` (kept in sync there).
STUB_MESSAGE = "Exercise: write your solution here, then run the check cell below."


@dataclass
class CheckResult:
    """The outcome of one check: ``bool(result)`` is ``result.passed``."""

    name: str
    passed: bool
    message: str
    trials: int
    printed: bool = field(default=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.passed)

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
        return (
            f"your function returned a {type(got).__name__}, but a torch.Tensor (or numpy array) was expected"
            + (" (convert it with torch.tensor(...) or build it from tensor operations)" if isinstance(got, (list, tuple)) else "")
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
        tuple (any other value is passed as the single argument). Each function
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

    gen = torch.Generator().manual_seed(seed)
    message = None
    trials = 0
    for trial in range(n_trials):
        trials = trial + 1
        inputs = make_inputs(gen)
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
    result = CheckResult(name=name, passed=message.startswith("PASS"), message=message, trials=trials)
    if verbose:
        print(message)
        result.printed = True
    return result


# --------------------------------------------------------------------------- registry

#: Every exercise check by name: ``CHECKS["unit_rows"] is check_unit_rows``.
CHECKS: dict[str, Callable[..., CheckResult]] = {}


def register_check(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    """Add ``check_<name>`` to :data:`CHECKS` and to this module; use as a decorator.

    A module defining a check elsewhere (for example the notebook 05 helpers)
    writes::

        from isodl import checks

        @checks.register_check
        def check_srm_angles(fn, *, verbose=True):
            return checks.compare_functions(fn, srm_angles, make_inputs, name="srm_angles", verbose=verbose)

    and the check cell can then call ``checks.check_srm_angles(srm_angles)``
    once that module has been imported.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    fname = getattr(fn, "__name__", "")
    if not fname.startswith("check_") or len(fname) <= len("check_"):
        raise ValueError(f"a check function must be named check_<name>, got {fname!r}")
    CHECKS[fname[len("check_"):]] = fn
    globals()[fname] = fn
    return fn


# --------------------------------------------------------------------------- notebook 00


def _unit_rows_inputs():
    """Inputs for :func:`check_unit_rows`; odd trials contain zero rows."""
    calls = [0]

    def make_inputs(gen: torch.Generator):
        trial = calls[0]
        calls[0] += 1
        rows = int(torch.randint(2, 7, (1,), generator=gen))
        cols = int(torch.randint(2, 6, (1,), generator=gen))
        magnitudes = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 6 - 3)  # 1e-3 .. 1e3
        x = torch.randn(rows, cols, generator=gen, dtype=torch.float64) * magnitudes
        if trial % 2 == 1:
            n_zero = int(torch.randint(1, rows, (1,), generator=gen))  # at least one non-zero row left
            zero = torch.randperm(rows, generator=gen)[:n_zero]
            x[zero] = 0.0
        return (x,)

    return make_inputs


def _zero_rows_not_finite(got, expected, inputs) -> bool:
    x = inputs[0]
    zero = (x == 0).all(dim=-1)
    return bool(zero.any()) and not bool(torch.isfinite(got[zero]).all())


def _matches(got, target) -> bool:
    got = got.to(torch.float64)
    return tuple(got.shape) == tuple(target.shape) and bool(
        torch.allclose(got, target, rtol=1e-5, atol=1e-6, equal_nan=False)
    )


def _is_column_normalised(got, expected, inputs) -> bool:
    x = inputs[0]
    norm = torch.linalg.vector_norm(x, dim=0, keepdim=True)
    cols = x / torch.where(norm > 0, norm, torch.ones_like(norm))
    nonzero = ~(x == 0).all(dim=-1)  # compare where the rows are not zero (zero rows may be NaN)
    return _matches(got[nonzero], cols[nonzero])


def _is_divided_by_squared_norm(got, expected, inputs) -> bool:
    x = inputs[0]
    sq = (x * x).sum(dim=-1, keepdim=True)
    target = x / torch.where(sq > 0, sq, torch.ones_like(sq))
    nonzero = ~(x == 0).all(dim=-1)
    return _matches(got[nonzero], target[nonzero])


UNIT_ROWS_HINTS = (
    (
        _zero_rows_not_finite,
        "a zero row has norm 0: divide only where the norm is positive and leave zero rows as zeros",
    ),
    (_is_column_normalised, "normalise each row (dim=-1), not each column"),
    (_is_divided_by_squared_norm, "divide by the norm, not the squared norm"),
)


def check_unit_rows(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-00 exercise ``unit_rows(x)`` against :func:`isodl.ops.unit_rows`.

    The inputs are float64 matrices with 2 to 6 rows and 2 to 5 columns, each
    row scaled by a random magnitude between 1e-3 and 1e3; every second trial
    contains one or more all-zero rows, which must stay zero.
    """
    return compare_functions(
        fn,
        ops.unit_rows,
        _unit_rows_inputs(),
        name="unit_rows",
        n_trials=n_trials,
        seed=seed,
        hints=UNIT_ROWS_HINTS,
        verbose=verbose,
    )


register_check(check_unit_rows)


# --- checks for notebooks 09 and 10 (the Affine Divergence; references in isodl.affine)


def _predicted_step_inputs(gen: torch.Generator):
    """Inputs for :func:`check_predicted_step`: a batch x [B, d], gradients g [B, out] and a learning rate."""
    b = int(torch.randint(2, 9, (1,), generator=gen))
    d = int(torch.randint(2, 11, (1,), generator=gen))
    out = int(torch.randint(1, 5, (1,), generator=gen))
    scale = 10.0 ** (torch.rand(b, 1, generator=gen, dtype=torch.float64) * 2 - 1)  # norms 0.1x .. 10x
    x = torch.randn(b, d, generator=gen, dtype=torch.float64) * scale
    g = torch.randn(b, out, generator=gen, dtype=torch.float64)
    lr = float(10.0 ** (torch.rand(1, generator=gen, dtype=torch.float64) * 2 - 2))  # 0.01 .. 1
    return (x, g, lr)


def _close_to(got, target) -> bool:
    got = got.to(torch.float64)
    return tuple(got.shape) == tuple(target.shape) and bool(torch.allclose(got, target, rtol=1e-5, atol=1e-8))


def _step_without_bias(got, expected, inputs) -> bool:
    x, g, lr = inputs
    return _close_to(got, -(lr / x.shape[0]) * (x @ x.T) @ g)


def _step_without_mean(got, expected, inputs) -> bool:
    return _close_to(got, expected * inputs[0].shape[0])


def _step_wrong_sign(got, expected, inputs) -> bool:
    return _close_to(got, -expected)


def _step_diagonal_only(got, expected, inputs) -> bool:
    x, g, lr = inputs
    factor = (x * x).sum(dim=1, keepdim=True) + 1
    return _close_to(got, -(lr / x.shape[0]) * factor * g) or _close_to(got, -lr * factor * g)


PREDICTED_STEP_HINTS = (
    (_step_wrong_sign, "the step goes downhill: it is minus the learning rate times the kernel times g"),
    (_step_without_bias, "the bias is a parameter too: its update adds 1 to every kernel entry, K = X X^T + 1"),
    (_step_without_mean, "the loss is the mean over the batch, so the step carries a factor 1/B"),
    (
        _step_diagonal_only,
        "that is only the self-term (the divergence factor |x|^2 + 1 on each sample's own gradient); "
        "with a batch, every sample's gradient moves every other sample through K_nm = x_n . x_m + 1",
    ),
)


def check_predicted_step(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check notebook 09's exercise ``predicted_step(x, g, lr)`` against :func:`isodl.affine.predicted_minibatch_step`.

    ``x`` is a float64 batch [B, d] (B from 2 to 8, row norms spread over two
    orders of magnitude), ``g`` the per-sample gradients [B, out], ``lr``
    between 0.01 and 1. The expected result is ``-(lr/B) (X X^T + 1) g``.
    """
    from .affine import predicted_minibatch_step

    return compare_functions(
        fn,
        predicted_minibatch_step,
        _predicted_step_inputs,
        name="predicted_step",
        n_trials=n_trials,
        seed=seed,
        rtol=1e-7,
        atol=1e-10,
        hints=PREDICTED_STEP_HINTS,
        verbose=verbose,
    )


register_check(check_predicted_step)


def _affine_like_reference(x, weight, bias):
    return (x @ weight.T + bias) / torch.sqrt((x * x).sum(dim=-1, keepdim=True) + 1.0)


def _affine_like_inputs(gen: torch.Generator):
    """Inputs for :func:`check_affine_like`: x [B, d] with norms from 0.01 to 100, weight [out, d], bias [out]."""
    b = int(torch.randint(2, 7, (1,), generator=gen))
    d = int(torch.randint(2, 9, (1,), generator=gen))
    out = int(torch.randint(1, 5, (1,), generator=gen))
    scale = 10.0 ** (torch.rand(b, 1, generator=gen, dtype=torch.float64) * 4 - 2)
    x = torch.randn(b, d, generator=gen, dtype=torch.float64) * scale
    weight = torch.randn(out, d, generator=gen, dtype=torch.float64)
    bias = torch.randn(out, generator=gen, dtype=torch.float64)
    return (x, weight, bias)


def _affine_like_by_norm(got, expected, inputs) -> bool:
    x, w, b = inputs
    return _close_to(got, (x @ w.T + b) / x.norm(dim=-1, keepdim=True))


def _affine_like_bias_outside(got, expected, inputs) -> bool:
    x, w, b = inputs
    return _close_to(got, (x @ w.T) / torch.sqrt((x * x).sum(-1, keepdim=True) + 1) + b)


def _affine_like_no_sqrt(got, expected, inputs) -> bool:
    x, w, b = inputs
    return _close_to(got, (x @ w.T + b) / ((x * x).sum(-1, keepdim=True) + 1))


def _affine_like_plain(got, expected, inputs) -> bool:
    x, w, b = inputs
    return _close_to(got, x @ w.T + b)


AFFINE_LIKE_HINTS = (
    (_affine_like_plain, "that is the plain affine map; divide it by sqrt(|x|^2 + 1), one number per sample"),
    (
        _affine_like_by_norm,
        "divide by sqrt(|x|^2 + 1), the norm of the augmented input [x; 1], not by |x| "
        "(the +1 is the bias's share of the divergence factor)",
    ),
    (_affine_like_bias_outside, "the bias goes inside the division: (W x + b) / sqrt(|x|^2 + 1)"),
    (_affine_like_no_sqrt, "divide by the square root sqrt(|x|^2 + 1), not by |x|^2 + 1"),
)


def check_affine_like(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check notebook 10's exercise ``affine_like(x, weight, bias)``: ``(x W^T + b) / sqrt(|x|^2 + 1)`` row by row.

    Inputs are float64, ``x`` [B, d] with row norms from 0.01 to 100, ``weight``
    [out, d], ``bias`` [out]. The reference is the forward map of
    :class:`isodl.affine.AffineLike`.
    """
    return compare_functions(
        fn,
        _affine_like_reference,
        _affine_like_inputs,
        name="affine_like",
        n_trials=n_trials,
        seed=seed,
        rtol=1e-7,
        atol=1e-10,
        hints=AFFINE_LIKE_HINTS,
        verbose=verbose,
    )


register_check(check_affine_like)


def _init_statistics(fn):
    """Wrap the learner's in-place initialiser: build a layer, call fn on it, return [std(W), mean(W), max|b|]."""

    def initialise_and_measure(in_features, out_features):
        from .affine import AffineLike

        with torch.random.fork_rng(devices=[]):  # leave the notebook's random stream alone
            torch.manual_seed(in_features * 1000 + out_features)
            layer = AffineLike(in_features, out_features, init="linear")
            with torch.no_grad():
                fn(layer)
        w = layer.weight.detach().to(torch.float64)
        b = layer.bias.detach().to(torch.float64)
        return torch.stack([w.std(), w.mean(), b.abs().max()])

    return initialise_and_measure


def _init_inputs(gen: torch.Generator):
    in_features = int(torch.randint(64, 257, (1,), generator=gen))
    out_features = int(torch.randint(64, 129, (1,), generator=gen))
    return (in_features, out_features)


def _init_reference(in_features, out_features):
    return torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)


def _init_fan_in_scale(got, expected, inputs) -> bool:
    return float(got[0]) < 0.3


def _init_bias_left(got, expected, inputs) -> bool:
    return abs(float(got[0]) - 1.0) <= 0.06 and float(got[2]) > 0.06


def _init_uniform(got, expected, inputs) -> bool:
    return 0.45 < float(got[0]) < 0.7


AFFINE_LIKE_INIT_HINTS = (
    (
        _init_fan_in_scale,
        "the weights are still of order 1/sqrt(in_features), nn.Linear's scale; the affine-like layer already divides "
        "by about |x|, so give every weight variance 1 (for example layer.weight.normal_(0.0, 1.0))",
    ),
    (_init_bias_left, "the weights look right; now set every bias entry to zero"),
    (_init_uniform, "uniform(-1, 1) has standard deviation 0.58, not 1: draw the weights from N(0, 1)"),
)


def check_affine_like_init(fn, *, n_trials: int = 4, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check notebook 10's exercise ``init_affine_like_(layer)``: weights ~ N(0, 1), bias = 0, in place.

    Each trial builds an :class:`isodl.affine.AffineLike` with ``nn.Linear``'s
    default initialisation (64 to 256 inputs, 64 to 128 outputs), calls
    ``fn(layer)`` and compares ``[std(weight), mean(weight), max|bias|]`` with
    ``[1, 0, 0]`` (absolute tolerance 0.06, far above the sampling error of a
    correct N(0, 1) draw of at least 4096 weights). The notebook's random
    stream is left untouched.
    """
    if not callable(fn):
        raise TypeError(
            f"candidate must be a function, got {type(fn).__name__}; pass the function itself, e.g. "
            "check_affine_like_init(init_affine_like_)"
        )
    return compare_functions(
        _init_statistics(fn),
        _init_reference,
        _init_inputs,
        name="init_affine_like_",
        n_trials=n_trials,
        seed=seed,
        rtol=0.0,
        atol=0.06,
        hints=AFFINE_LIKE_INIT_HINTS,
        verbose=verbose,
    )


register_check(check_affine_like_init)
# --- end of checks for notebooks 09 and 10


# --- checks for notebook 11 (forward sensitivity; reference: isodl.rnn.TanhRNN.cell_jacobians)


def _sensitivity_step_reference(S_prev, h_prev, x, W_xh, W_hh, b_h):
    """One tanh RNN step and one step of ``S_t = J_t S_(t-1) + F_t``, via :mod:`isodl.rnn`."""
    from . import rnn

    n, m = W_xh.shape
    with torch.random.fork_rng(devices=[]):  # building the model draws weights: keep the caller's random state
        model = rnn.TanhRNN(m, n, 1, dtype=W_xh.dtype)
    jac = model.cell_jacobians(h_prev, x, {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h})
    return jac.state, jac.J_h @ S_prev + jac.J_theta


def _sensitivity_step_inputs(gen: torch.Generator):
    n = int(torch.randint(2, 6, (1,), generator=gen))
    m = int(torch.randint(1, 4, (1,), generator=gen))
    P = n * m + n * n + n
    d = torch.float64
    W_xh = torch.randn(n, m, generator=gen, dtype=d)
    W_hh = 0.8 * torch.randn(n, n, generator=gen, dtype=d) / n**0.5
    b_h = 0.5 * torch.randn(n, generator=gen, dtype=d)
    h_prev = torch.tanh(torch.randn(n, generator=gen, dtype=d))
    x = torch.randn(m, generator=gen, dtype=d)
    S_prev = torch.randn(n, P, generator=gen, dtype=d)  # not zero, so the J_t S_(t-1) term matters
    return (S_prev, h_prev, x, W_xh, W_hh, b_h)


def _sens_parts(inputs):
    """Pieces used by the hints: h, d = 1 - h^2, the correct J and F, and the blocks of F."""
    S_prev, h_prev, x, W_xh, W_hh, b_h = inputs
    n = h_prev.shape[0]
    h = torch.tanh(W_hh @ h_prev + W_xh @ x + b_h)
    d = 1.0 - h * h
    eye = torch.eye(n, dtype=h.dtype)
    blocks = [torch.kron(eye, x[None, :]), torch.kron(eye, h_prev[None, :]), eye]
    return S_prev, h_prev, h, d, eye, blocks, W_hh


def _sens_matches(got, target) -> bool:
    S = got[1] if isinstance(got, (tuple, list)) and len(got) == 2 else None
    if not isinstance(S, torch.Tensor) or tuple(S.shape) != tuple(target.shape):
        return False
    return bool(torch.allclose(S.detach().to(torch.float64), target, rtol=1e-5, atol=1e-6))


def _sens_forgot_propagation(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    return _sens_matches(got, d[:, None] * torch.cat(blocks, dim=1))


def _sens_no_tanh_derivative_in_J(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    F = d[:, None] * torch.cat(blocks, dim=1)
    return _sens_matches(got, W_hh @ S_prev + F) or _sens_matches(got, W_hh @ S_prev + torch.cat(blocks, dim=1))


def _sens_derivative_at_old_state(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    d_old = 1.0 - h_prev * h_prev
    return _sens_matches(got, d_old[:, None] * (W_hh @ S_prev + torch.cat(blocks, dim=1)))


def _sens_transposed_J(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    F = d[:, None] * torch.cat(blocks, dim=1)
    return _sens_matches(got, (d[:, None] * W_hh).T @ S_prev + F) or _sens_matches(got, (W_hh * d[None, :]) @ S_prev + F)


def _sens_column_major(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    x = inputs[2]
    swapped = [torch.kron(x[None, :], eye), torch.kron(h_prev[None, :], eye), eye]
    return _sens_matches(got, (d[:, None] * W_hh) @ S_prev + d[:, None] * torch.cat(swapped, dim=1))


def _sens_wrong_block_order(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    J = d[:, None] * W_hh
    for order in ((1, 0, 2), (2, 0, 1), (0, 2, 1), (1, 2, 0), (2, 1, 0)):
        if _sens_matches(got, J @ S_prev + d[:, None] * torch.cat([blocks[i] for i in order], dim=1)):
            return True
    return False


def _sens_bad_state(got, expected, inputs) -> bool:
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[0], torch.Tensor)):
        return False
    return tuple(got[0].shape) == tuple(expected[0].shape) and not bool(
        torch.allclose(got[0].to(torch.float64), expected[0], rtol=1e-5, atol=1e-6)
    )


SENSITIVITY_STEP_HINTS = (
    (_sens_bad_state, "the new state is h = tanh(W_hh @ h_prev + W_xh @ x + b_h)"),
    (
        _sens_forgot_propagation,
        "you returned F_t alone: add the propagated old sensitivity, S_t = J_t @ S_prev + F_t",
    ),
    (
        _sens_no_tanh_derivative_in_J,
        "both J_t and F_t carry the tanh derivative: J_t = diag(1 - h_t^2) @ W_hh and F_t = diag(1 - h_t^2) @ [...]",
    ),
    (
        _sens_derivative_at_old_state,
        "evaluate the tanh derivative at the new state h_t (1 - h_t^2), not at h_prev",
    ),
    (_sens_transposed_J, "J_t = diag(1 - h_t^2) @ W_hh multiplies S_prev from the left: row i is scaled by 1 - h_t[i]^2"),
    (
        _sens_column_major,
        "flatten each weight matrix row by row: the column of W[i, j] is i * W.shape[1] + j "
        "(torch.kron(torch.eye(n), x[None, :]) gives the W_xh block)",
    ),
    (_sens_wrong_block_order, "the columns of S come in the order W_xh, then W_hh, then b_h"),
)


def check_sensitivity_step(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-11 exercise ``sensitivity_step(S_prev, h_prev, x, W_xh, W_hh, b_h)``.

    It must return ``(h, S)``: the new state of ``h = tanh(W_hh h_prev + W_xh x
    + b_h)`` and ``S = J S_prev + F``, with the columns of ``S`` ordered as
    ``W_xh`` (row-major), ``W_hh`` (row-major), ``b_h``. The reference is
    :meth:`isodl.rnn.TanhRNN.cell_jacobians`. Inputs are float64 with state
    size 2 to 5, input size 1 to 3 and a random (non-zero) ``S_prev``.
    """
    return compare_functions(
        fn,
        _sensitivity_step_reference,
        _sensitivity_step_inputs,
        name="sensitivity_step",
        n_trials=n_trials,
        seed=seed,
        rtol=1e-7,
        atol=1e-9,
        hints=SENSITIVITY_STEP_HINTS,
        verbose=verbose,
    )


register_check(check_sensitivity_step)

# --- end of checks for notebook 11


# --- checks for notebooks 01 and 02 (references in isodl.functions and isodl.srm)


def _isotropic_tanh_reference(x):
    from . import functions

    return functions.isotropic_tanh(x)


def _isotropic_tanh_inputs():
    """float64 batches [rows, n]; odd trials hold zero rows, every trial some very short and long rows."""
    calls = [0]

    def make_inputs(gen: torch.Generator):
        trial = calls[0]
        calls[0] += 1
        rows = int(torch.randint(4, 9, (1,), generator=gen))
        n = int(torch.randint(2, 6, (1,), generator=gen))
        lengths = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 3 - 1.5)  # 0.03 .. 30
        x = torch.randn(rows, n, generator=gen, dtype=torch.float64)
        x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True) * lengths
        x[0] *= 1e-9  # almost at the origin
        if trial % 2 == 1:
            x[int(torch.randint(1, rows, (1,), generator=gen))] = 0.0
        return (x,)

    return make_inputs


def _iso_nonfinite_at_zero(got, expected, inputs) -> bool:
    zero = (inputs[0] == 0).all(dim=-1)
    return bool(zero.any()) and not bool(torch.isfinite(got[zero]).all())


def _iso_is_elementwise(got, expected, inputs) -> bool:
    return _matches(got, torch.tanh(inputs[0]))


def _iso_not_divided(got, expected, inputs) -> bool:
    x = inputs[0]
    r = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return _matches(got, torch.tanh(r) * x)


def _iso_wrong_dim(got, expected, inputs) -> bool:
    x = inputs[0]
    r = torch.linalg.vector_norm(x, dim=0, keepdim=True)
    return _matches(got[:, (r[0] > 0)], (torch.tanh(r) / r * x)[:, (r[0] > 0)])


ISOTROPIC_TANH_HINTS = (
    (
        _iso_nonfinite_at_zero,
        "at the origin (a zero row) tanh(r) / r is 0 / 0; its limit is 1, so return x there (use torch.where on a safe "
        "norm)",
    ),
    (_iso_is_elementwise, "torch.tanh(x) acts on each coordinate; the isotropic map squashes the length of the whole row"),
    (_iso_not_divided, "tanh(r) * x has length tanh(r) * r: keep the direction x / r, i.e. use tanh(r) / r as the gain"),
    (_iso_wrong_dim, "take the length of each row with dim=-1 (keepdim=True), not of each column"),
)


def check_isotropic_tanh(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-01 exercise ``isotropic_tanh(x)`` against :func:`isodl.functions.isotropic_tanh`.

    First the values on float64 batches (lengths 1e-9 to 30, zero rows in odd
    trials); then the gradient at the origin and next to it, which must be
    finite (``torch.where`` evaluates both branches, so a NaN in the branch not
    taken still poisons the gradient).
    """
    result = compare_functions(
        fn,
        _isotropic_tanh_reference,
        _isotropic_tanh_inputs(),
        name="isotropic_tanh",
        n_trials=n_trials,
        seed=seed,
        hints=ISOTROPIC_TANH_HINTS,
        verbose=False,
    )
    if result.passed:
        x = torch.tensor([[0.0, 0.0, 0.0], [3e-9, -4e-9, 0.0], [0.3, 0.1, -0.5]], dtype=torch.float64, requires_grad=True)
        problem = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = fn(x)
                (grad,) = torch.autograd.grad((out * torch.arange(1.0, 4.0, dtype=torch.float64)).sum(), x)
        except Exception as exc:  # a learner's function that cannot be differentiated
            problem = f"backpropagating through your function raised {type(exc).__name__}: {exc}"
        else:
            if not bool(torch.isfinite(grad).all()):
                problem = (
                    "the values are right, but the gradient at the origin is not finite "
                    f"(d/dx of your output at x = 0 gave {grad[0].tolist()}). Hint: torch.where computes both "
                    "branches and backpropagates through both, so tanh(r) / r at r = 0 still makes NaN; divide by a "
                    "safe norm, torch.where(r > 0, r, torch.ones_like(r)), inside the branch"
                )
            elif not torch.allclose(grad[0], torch.arange(1.0, 4.0, dtype=torch.float64)):
                problem = (
                    "the gradient at the origin should be the identity map (isotropic tanh equals x to first order), "
                    f"got {grad[0].tolist()} for the weights [1, 2, 3]"
                )
        if problem is not None:
            result = CheckResult(name="isotropic_tanh", passed=False, message=f"FAIL: isotropic_tanh: {problem}.", trials=result.trials)
        else:
            result.message += "; its gradient at the origin is finite (the identity)"
    if verbose:
        print(result.message)
        result.printed = True
    return result


register_check(check_isotropic_tanh)


def _cone_count_reference(activations, probes, epsilon):
    from . import srm

    return srm.cone_count(activations, probes, epsilon)


def _cone_count_inputs():
    """Activations with mixed lengths (some exactly on an axis, some zero), axis and random unit probes."""
    calls = [0]
    epsilons = (0.5, 1.0, 0.0, -0.4, 0.8, -1.0, 0.25)

    def make_inputs(gen: torch.Generator):
        trial = calls[0]
        calls[0] += 1
        n = int(torch.randint(2, 6, (1,), generator=gen))
        rows = int(torch.randint(8, 20, (1,), generator=gen))
        scale = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 4 - 2)  # 0.01 .. 100
        a = torch.randn(rows, n, generator=gen, dtype=torch.float64) * scale
        a[0] = 0.0
        a[0, 0] = 3.0  # exactly along the first axis: cos = 1 with the first probe
        a[1] = 0.0
        a[1, 1] = 0.5  # exactly orthogonal to the first probe: cos = 0
        if trial % 2 == 1:
            a[2] = 0.0  # a zero row
        n_probes = int(torch.randint(2, 6, (1,), generator=gen))
        p = torch.randn(n_probes, n, generator=gen, dtype=torch.float64)
        p = p / torch.linalg.vector_norm(p, dim=1, keepdim=True)
        p[0] = 0.0
        p[0, 0] = 1.0
        eps = epsilons[trial % len(epsilons)]
        return (a, p, eps)

    return make_inputs


def _cone_strict(got, expected, inputs) -> bool:
    from .ops import unit_rows

    a, p, eps = inputs
    return _matches(got, (unit_rows(a) @ p.T > eps).to(torch.float64).mean(dim=0))


def _cone_not_normalised(got, expected, inputs) -> bool:
    a, p, eps = inputs
    return _matches(got, (a @ p.T >= eps).to(torch.float64).mean(dim=0))


def _cone_counts_not_fractions(got, expected, inputs) -> bool:
    return _matches(got, expected * inputs[0].shape[0])


def _cone_zero_rows_dropped(got, expected, inputs) -> bool:
    a, p, eps = inputs
    zero = (a == 0).all(dim=1)
    return bool(zero.any()) and eps <= 0 and _matches(got, expected - zero.sum() / a.shape[0])


def _cone_wrong_shape(got, expected, inputs) -> bool:
    return tuple(got.shape) != tuple(expected.shape)


CONE_COUNT_HINTS = (
    (_cone_wrong_shape, "return one fraction per probe: shape [A] for probes of shape [A, n] (average over the N activations, dim=0)"),
    (_cone_not_normalised, "normalise each activation row to unit length before the dot product (the cone tests the angle only)"),
    (_cone_strict, "the cone includes its boundary: use >= epsilon, not > epsilon"),
    (_cone_counts_not_fractions, "return the fraction of activations in the cone (divide the count by N)"),
    (
        _cone_zero_rows_dropped,
        "a zero activation row stays zero after normalising (not NaN); its dot product is 0, which is inside the cone "
        "when epsilon <= 0",
    ),
)


def check_cone_count(fn, *, n_trials: int = 7, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-02 exercise ``cone_count(activations, probes, epsilon)`` against :func:`isodl.srm.cone_count`.

    Trials cover epsilon = 1 with an activation exactly on a probe, epsilon = 0
    with an activation exactly orthogonal to it (both on the boundary, so ``>=``
    matters), negative epsilon, zero rows and lengths from 0.01 to 100.
    """
    return compare_functions(
        fn,
        _cone_count_reference,
        _cone_count_inputs(),
        name="cone_count",
        n_trials=n_trials,
        seed=seed,
        hints=CONE_COUNT_HINTS,
        verbose=verbose,
    )


register_check(check_cone_count)

# --- end of checks for notebooks 01 and 02


# --- checks for notebooks 05-08 (isotropic networks and adaptive topologies; references in isodl.topology)


def _iso_length_reference(z, o):
    from . import topology

    return topology.isotropic_tanh_gain(z, o).unsqueeze(-1) * z


def _iso_length_inputs():
    """float64 batches [rows, n] with lengths 0.03..30; o is 0 in even trials, in (0.05, 3) in odd ones;
    every second even trial holds a zero row."""
    calls = [0]

    def make_inputs(gen: torch.Generator):
        trial = calls[0]
        calls[0] += 1
        rows = int(torch.randint(4, 8, (1,), generator=gen))
        n = int(torch.randint(2, 6, (1,), generator=gen))
        lengths = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 3 - 1.5)
        z = torch.randn(rows, n, generator=gen, dtype=torch.float64)
        z = z / torch.linalg.vector_norm(z, dim=1, keepdim=True) * lengths
        if trial % 2 == 1:
            o = 0.05 + 2.95 * float(torch.rand((), generator=gen, dtype=torch.float64))
        else:
            o = 0.0
            if trial % 4 == 2:
                z[int(torch.randint(0, rows, (1,), generator=gen))] = 0.0
        return (z, o)

    return make_inputs


def _iso_length_ignores_o(got, expected, inputs) -> bool:
    z, o = inputs
    return o > 0 and _matches(got, _iso_length_reference(z, 0.0))


def _iso_length_squares_o(got, expected, inputs) -> bool:
    z, o = inputs
    return o > 0 and _matches(got, _iso_length_reference(z, o * o))


def _iso_length_sqrt_o(got, expected, inputs) -> bool:
    z, o = inputs
    return o > 0 and _matches(got, _iso_length_reference(z, o**0.5))


def _iso_length_elementwise(got, expected, inputs) -> bool:
    return _matches(got, torch.tanh(inputs[0]))


def _iso_length_not_divided(got, expected, inputs) -> bool:
    z, o = inputs
    rho = torch.sqrt((z * z).sum(-1, keepdim=True) + o)
    return _matches(got, torch.tanh(rho) * z)


def _iso_length_nonfinite(got, expected, inputs) -> bool:
    return not bool(torch.isfinite(torch.as_tensor(got)).all())


ISO_LENGTH_HINTS = (
    (
        _iso_length_nonfinite,
        "a zero row with o = 0 gives rho = 0 and tanh(0)/0 = 0/0; the gain's limit there is 1 (use torch.where with a safe rho)",
    ),
    (_iso_length_ignores_o, "o is missing: rho = sqrt(|z|^2 + o), the intrinsic length enters under the square root"),
    (_iso_length_squares_o, "o is already a squared length (decision 1): add o itself, not o**2, to |z|^2"),
    (_iso_length_sqrt_o, "add o itself to |z|^2 (o is a squared length), not its square root"),
    (_iso_length_elementwise, "torch.tanh(z) acts on each coordinate; the isotropic map rescales each whole row by one gain"),
    (_iso_length_not_divided, "tanh(rho) * z is too long: the gain is tanh(rho) / rho"),
)


def check_isotropic_tanh_with_length(fn, *, n_trials: int = 8, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-05 exercise ``isotropic_tanh(z, o)`` (rows of ``z``, intrinsic length ``o``).

    Reference: ``g(rho) z`` with ``g = tanh(rho)/rho``, ``rho = sqrt(|z|^2 + o)``
    (:func:`isodl.topology.isotropic_tanh_gain`). Float64 batches with row
    lengths 0.03 to 30; ``o = 0`` (sometimes with a zero row, where the
    output must be 0) alternates with ``o`` between 0.05 and 3.
    """
    return compare_functions(
        fn,
        _iso_length_reference,
        _iso_length_inputs(),
        name="isotropic_tanh (with intrinsic length)",
        n_trials=n_trials,
        seed=seed,
        rtol=1e-6,
        atol=1e-9,
        hints=ISO_LENGTH_HINTS,
        verbose=verbose,
    )


register_check(check_isotropic_tanh_with_length)


def _rotate_neurons_reference(w_in, b, w_out, q):
    return q.T @ w_in, q.T @ b, w_out @ q


def _rotate_neurons_inputs(gen: torch.Generator):
    n = int(torch.randint(3, 7, (1,), generator=gen))
    m = int(torch.randint(2, 7, (1,), generator=gen))
    p = int(torch.randint(2, 6, (1,), generator=gen))
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    w_in = torch.randn(n, m, generator=gen, dtype=torch.float64)
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    w_out = torch.randn(p, n, generator=gen, dtype=torch.float64)
    return (w_in, b, w_out, q)


def _rotate_neurons_q_not_transposed(got, expected, inputs) -> bool:
    w_in, b, w_out, q = inputs
    return _matches(got[0], q @ w_in)


def _rotate_neurons_out_side(got, expected, inputs) -> bool:
    w_in, b, w_out, q = inputs
    return _matches(got[2], w_out @ q.T)


def _rotate_neurons_bias(got, expected, inputs) -> bool:
    w_in, b, w_out, q = inputs
    return _matches(got[1], b) or _matches(got[1], q @ b)


ROTATE_NEURONS_HINTS = (
    (_rotate_neurons_q_not_transposed, "the new pre-activation is Q^T z, so the incoming weights become Q^T W_in (transpose Q)"),
    (_rotate_neurons_bias, "the bias lives in the same space as z: it becomes Q^T b"),
    (_rotate_neurons_out_side, "the next layer must undo the rotation: W_out (Q Q^T) = (W_out Q) Q^T, so W_out becomes W_out Q"),
)


def check_rotate_neurons(fn, *, n_trials: int = 5, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-06 exercise ``rotate_neurons(w_in, b, w_out, q)`` -> ``(q^T w_in, q^T b, w_out q)``.

    The rotation the library applies in :meth:`isodl.topology.IsotropicMLP.rotate_layer`
    (psi terms aside), on random float64 shapes and orthogonal ``q``.
    """
    return compare_functions(
        fn,
        _rotate_neurons_reference,
        _rotate_neurons_inputs,
        name="rotate_neurons",
        n_trials=n_trials,
        seed=seed,
        rtol=1e-10,
        atol=1e-12,
        hints=ROTATE_NEURONS_HINTS,
        verbose=verbose,
    )


register_check(check_rotate_neurons)


def _remove_last_neuron_reference(w_in, b, w_out, psi, o):
    b_star = b[-1]
    w_star = w_out[:, -1]
    return w_in[:-1], b[:-1], w_out[:, :-1], psi + b_star * w_star, float(o + b_star**2)


def _remove_last_neuron_inputs(gen: torch.Generator):
    n = int(torch.randint(3, 7, (1,), generator=gen))
    m = int(torch.randint(2, 6, (1,), generator=gen))
    p = int(torch.randint(2, 6, (1,), generator=gen))
    w_in = torch.randn(n, m, generator=gen, dtype=torch.float64)
    w_in[-1] = 0.0  # a neuron with zero singular value, as after diagonalising
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    w_out = torch.randn(p, n, generator=gen, dtype=torch.float64)
    psi = torch.randn(p, generator=gen, dtype=torch.float64)
    o = float(torch.rand((), generator=gen, dtype=torch.float64))
    return (w_in, b, w_out, psi, o)


def _rln_no_o(got, expected, inputs) -> bool:
    return abs(float(got[4]) - inputs[4]) < 1e-12


def _rln_o_not_squared(got, expected, inputs) -> bool:
    b = inputs[1]
    return abs(float(got[4]) - (inputs[4] + float(b[-1]))) < 1e-9 or abs(float(got[4]) - (inputs[4] + abs(float(b[-1])))) < 1e-9


def _rln_no_psi(got, expected, inputs) -> bool:
    return _matches(got[3], inputs[3])


def _rln_psi_row(got, expected, inputs) -> bool:
    w_in, b, w_out, psi, o = inputs
    return got[3].shape == psi.shape and not _matches(got[3], expected[3])


REMOVE_LAST_NEURON_HINTS = (
    (_rln_no_o, "o must absorb the removed neuron's share of |z|^2: o + b*^2"),
    (_rln_o_not_squared, "o is a squared length: add b*^2, not b*"),
    (_rln_no_psi, "psi must take over the neuron's constant output: psi + b* W_out[:, -1]"),
    (_rln_psi_row, "the neuron's outgoing weights are a column of W_out (W_out[:, -1]), scaled by its bias b* = b[-1]"),
)


def check_remove_last_neuron(fn, *, n_trials: int = 5, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-07 exercise ``remove_last_neuron(w_in, b, w_out, psi, o)``.

    Expected: ``(w_in[:-1], b[:-1], w_out[:, :-1], psi + b[-1] * w_out[:, -1], o + b[-1]**2)``,
    the compensated removal of :meth:`isodl.topology.IsotropicMLP.neurodegeneration`.
    """
    return compare_functions(
        fn,
        _remove_last_neuron_reference,
        _remove_last_neuron_inputs,
        name="remove_last_neuron",
        n_trials=n_trials,
        seed=seed,
        rtol=1e-10,
        atol=1e-12,
        hints=REMOVE_LAST_NEURON_HINTS,
        verbose=verbose,
    )


register_check(check_remove_last_neuron)


def _diagonal_savings_reference(widths, layers):
    from . import topology

    return topology.expected_nonzero_reduction(list(widths), list(layers))


def _diagonal_savings_inputs():
    calls = [0]

    def make_inputs(gen: torch.Generator):
        trial = calls[0]
        calls[0] += 1
        n_hidden = int(torch.randint(2, 7, (1,), generator=gen))
        if trial == 0:
            widths = [int(torch.randint(3, 9, (1,), generator=gen))] + [6] * n_hidden + [3]  # square hidden layers
        else:
            widths = [int(v) for v in torch.randint(2, 12, (n_hidden + 2,), generator=gen)]
        start = 1 + trial % 2 if n_hidden >= 3 else 1
        layers = list(range(start, n_hidden, 2))
        return (widths, layers)

    return make_inputs


def _ds_square_only(got, expected, inputs) -> bool:
    widths, layers = inputs
    return int(got) == sum(widths[k + 1] ** 2 - widths[k + 1] for k in layers)


def _ds_index_shift(got, expected, inputs) -> bool:
    widths, layers = inputs
    return int(got) == sum(widths[k] * widths[k - 1] - min(widths[k], widths[k - 1]) for k in layers)


def _ds_counts_remaining(got, expected, inputs) -> bool:
    widths, layers = inputs
    return int(got) == sum(min(widths[k], widths[k + 1]) for k in layers)


DIAGONAL_SAVINGS_HINTS = (
    (_ds_counts_remaining, "return how many weights become zero (n_out * n_in - min(n_out, n_in) per layer), not how many remain"),
    (_ds_square_only, "hidden widths differ: W_k has shape widths[k+1] x widths[k], so it saves widths[k+1] * widths[k] - min of the two"),
    (_ds_index_shift, "W_k maps widths[k] to widths[k+1] (it reads hidden layer k-1, whose width is widths[k])"),
)


def check_diagonal_savings(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-08 exercise ``diagonal_savings(widths, layers)`` against
    :func:`isodl.topology.expected_nonzero_reduction` on random widths (square and not)."""
    return compare_functions(
        fn,
        _diagonal_savings_reference,
        _diagonal_savings_inputs(),
        name="diagonal_savings",
        n_trials=n_trials,
        seed=seed,
        hints=DIAGONAL_SAVINGS_HINTS,
        verbose=verbose,
    )


register_check(check_diagonal_savings)

# --- end of checks for notebooks 05-08


# --- checks for notebook 04 (PPPM; reference: isodl.pppm.privileged_plane_projection)


def _plane_points_reference(z, i, j, epsilon):
    from . import pppm

    basis = torch.eye(z.shape[1], dtype=z.dtype)
    res = pppm.privileged_plane_projection(z, basis[[i, j]], epsilon, "comb")
    return res.points  # one plane, samples in order


def _plane_points_inputs():
    calls = [0]
    epsilons = (0.8, 0.6, 0.9, 0.0, 0.7)

    def make_inputs(gen: torch.Generator):
        trial = calls[0]
        calls[0] += 1
        n = int(torch.randint(3, 7, (1,), generator=gen))
        rows = int(torch.randint(20, 40, (1,), generator=gen))
        scale = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 2 - 1)  # 0.1 .. 10
        z = torch.randn(rows, n, generator=gen, dtype=torch.float64) * scale
        i, j = (int(v) for v in torch.randperm(n, generator=gen)[:2])
        z[0] = 0.0
        z[0, i], z[0, j] = 3.0, -4.0  # exactly in the plane, radius 5
        if trial % 2 == 1:
            z[1] = 0.0  # a zero row: kept only when epsilon <= 0
        eps = epsilons[trial % len(epsilons)]
        return (z, i, j, eps)

    return make_inputs


def _pp_normalised(got, expected, inputs) -> bool:
    z, i, j, eps = inputs
    norms = torch.linalg.vector_norm(z, dim=1)
    keep = (torch.hypot(z[:, i], z[:, j]) >= eps * norms) & (norms > 0)
    return _matches(got, z[keep][:, [i, j]] / norms[keep, None])


def _pp_swapped(got, expected, inputs) -> bool:
    return tuple(got.shape) == tuple(expected.shape) and _matches(got, expected[:, [1, 0]])


def _pp_strict(got, expected, inputs) -> bool:
    return tuple(got.shape) != tuple(expected.shape) and got.shape[0] < expected.shape[0]


def _pp_wrong_shape(got, expected, inputs) -> bool:
    return got.ndim != 2 or got.shape[1] != 2


PLANE_POINTS_HINTS = (
    (_pp_wrong_shape, "return the kept points as a [M, 2] tensor: column 0 along b_i (z[:, i]), column 1 along b_j (z[:, j])"),
    (_pp_swapped, "the first coordinate is along b_i and the second along b_j: (u, v) = (z[:, i], z[:, j])"),
    (_pp_normalised, "keep the raw coordinates (radii carry meaning); normalise only to decide which samples to keep"),
    (_pp_strict, "too few points: keep a sample when sqrt(u^2 + v^2) / |z| >= epsilon (the boundary counts), and compare the in-plane length with the whole vector's length"),
)


def check_plane_points(fn, *, n_trials: int = 5, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-04 exercise ``plane_points(z, i, j, epsilon)`` against :func:`isodl.pppm.privileged_plane_projection`.

    One plane of the standard basis: the raw ``(z_i, z_j)`` of every sample whose
    in-plane fraction ``sqrt(z_i^2 + z_j^2) / |z|`` is at least ``epsilon``, in sample order.
    Trials include a sample exactly in the plane and one on the boundary.
    """
    return compare_functions(
        fn,
        _plane_points_reference,
        _plane_points_inputs(),
        name="plane_points",
        n_trials=n_trials,
        seed=seed,
        hints=PLANE_POINTS_HINTS,
        verbose=verbose,
    )


register_check(check_plane_points)

# --- end of checks for notebook 04


# --- checks for notebook 03 (grandmother directions; references in isodl.representations)


def _top_k_purity_reference(scores, labels, k):
    from . import representations

    top = torch.argsort(scores, descending=True, stable=True)[:k]
    return representations.class_purity(labels[top])


def _top_k_purity_inputs(gen: torch.Generator):
    """Distinct float64 scores [N] that favour one class, int64 labels [N] and k, with a unique top class.

    The favoured class gets a moderate score boost, so the top k usually but
    not always lead with it, the k lowest scores lead with another class and
    the whole set is close to balanced. Draws are repeated until the most
    common class among the top k is unique (no tie to break) and all scores
    are distinct (no tie in the ranking).
    """
    n = int(torch.randint(30, 81, (1,), generator=gen))
    n_classes = int(torch.randint(3, 7, (1,), generator=gen))
    k = int(torch.randint(5, 16, (1,), generator=gen))
    while True:
        labels = torch.randint(0, n_classes, (n,), generator=gen)
        favoured = int(torch.randint(0, n_classes, (1,), generator=gen))
        scores = torch.randn(n, generator=gen, dtype=torch.float64) + 1.2 * (labels == favoured).to(torch.float64)
        top = torch.argsort(scores, descending=True)[:k]
        counts = torch.bincount(labels[top], minlength=n_classes)
        if int((counts == counts.max()).sum()) == 1 and torch.unique(scores).numel() == n:
            return (scores, labels, k)


def _tkp_pair(got):
    """``(share, class)`` of a learner's output as Python numbers (raises if it is not a pair)."""
    share, cls = got
    return float(share), int(cls)


def _tkp_same(got, target) -> bool:
    share, cls = _tkp_pair(got)
    return abs(share - float(target[0])) <= 1e-6 and cls == int(target[1])


def _tkp_not_a_pair(got, expected, inputs) -> bool:
    return not isinstance(got, (tuple, list)) or len(got) != 2


def _tkp_count(got, expected, inputs) -> bool:
    share, cls = _tkp_pair(got)
    return abs(share - expected[0] * inputs[2]) <= 1e-6 and abs(share - expected[0]) > 1e-6


def _tkp_smallest(got, expected, inputs) -> bool:
    from . import representations

    scores, labels, k = inputs
    return _tkp_same(got, representations.class_purity(labels[torch.argsort(scores)[:k]]))


def _tkp_k_plus_one(got, expected, inputs) -> bool:
    from . import representations

    scores, labels, k = inputs
    return _tkp_same(got, representations.class_purity(labels[torch.argsort(scores, descending=True)[: k + 1]]))


def _tkp_all_samples(got, expected, inputs) -> bool:
    from . import representations

    return _tkp_same(got, representations.class_purity(inputs[1]))


def _tkp_divided_by_n(got, expected, inputs) -> bool:
    scores, labels, k = inputs
    share, cls = _tkp_pair(got)
    return abs(share - expected[0] * k / labels.numel()) <= 1e-6


def _tkp_class_of_top_sample(got, expected, inputs) -> bool:
    scores, labels, k = inputs
    share, cls = _tkp_pair(got)
    return abs(share - float(expected[0])) <= 1e-6 and cls != int(expected[1]) and cls == int(labels[torch.argmax(scores)])


TOP_K_PURITY_HINTS = (
    (_tkp_not_a_pair, "return two values, the share and the class: `return share, cls`"),
    (_tkp_count, "return the share of the top class (its count divided by k), not the count"),
    (_tkp_smallest, "take the k samples with the LARGEST scores (sort in descending order, or use torch.topk)"),
    (_tkp_k_plus_one, "take exactly k samples: scores.argsort(descending=True)[:k] has k entries"),
    (_tkp_all_samples, "count the classes among the top k samples only, not among all samples"),
    (_tkp_divided_by_n, "divide the count by k (the size of the top set), not by the number of samples"),
    (
        _tkp_class_of_top_sample,
        "the class to return is the most common class among the k samples (torch.bincount, then argmax), "
        "not the class of the single highest-scoring sample",
    ),
)


def check_top_k_purity(fn, *, n_trials: int = 8, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-03 exercise ``top_k_purity(scores, labels, k)``.

    Expected: ``(share, cls)``, the most common class ``cls`` among the ``k``
    samples with the largest ``scores`` and its share of those ``k``, i.e.
    :func:`isodl.representations.class_purity` of ``labels[top k]``. The
    random inputs have distinct scores and a unique most common class, so no
    tie has to be broken; scores favour one class moderately, so taking the
    k smallest scores, k + 1 samples or all samples gives another answer.
    """
    return compare_functions(
        fn,
        _top_k_purity_reference,
        _top_k_purity_inputs,
        name="top_k_purity",
        n_trials=n_trials,
        seed=seed,
        hints=TOP_K_PURITY_HINTS,
        verbose=verbose,
    )


register_check(check_top_k_purity)

# --- end of checks for notebook 03

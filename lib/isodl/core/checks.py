"""Notebook 00: the exercise check for ``unit_rows``.

Exercise checks: compare a learner's function with the library's reference.

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
1. Write the reference in the library (for example ``isodl.core.ops.unit_rows``).
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

import torch

from isodl.core import ops
from isodl.exercises import CheckResult, compare_functions, matches, register_check

__all__ = ["UNIT_ROWS_HINTS", "check_unit_rows"]


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


def _is_column_normalised(got, expected, inputs) -> bool:
    x = inputs[0]
    norm = torch.linalg.vector_norm(x, dim=0, keepdim=True)
    cols = x / torch.where(norm > 0, norm, torch.ones_like(norm))
    nonzero = ~(x == 0).all(dim=-1)  # compare where the rows are not zero (zero rows may be NaN)
    return matches(got[nonzero], cols[nonzero])


def _is_divided_by_squared_norm(got, expected, inputs) -> bool:
    x = inputs[0]
    sq = (x * x).sum(dim=-1, keepdim=True)
    target = x / torch.where(sq > 0, sq, torch.ones_like(sq))
    nonzero = ~(x == 0).all(dim=-1)
    return matches(got[nonzero], target[nonzero])


UNIT_ROWS_HINTS = (
    (
        _zero_rows_not_finite,
        "a zero row has norm 0: divide only where the norm is positive and leave zero rows as zeros",
    ),
    (_is_column_normalised, "normalise each row (dim=-1), not each column"),
    (_is_divided_by_squared_norm, "divide by the norm, not the squared norm"),
)


def check_unit_rows(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-00 exercise ``unit_rows(x)`` against :func:`isodl.core.ops.unit_rows`.

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

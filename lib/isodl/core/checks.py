"""Notebook 00: the exercise check for ``unit_rows``.

:func:`check_unit_rows` compares the learner's ``unit_rows(x)`` with the
reference :func:`isodl.core.ops.unit_rows` on random inputs (rows of very
different lengths, some of them zero); :data:`UNIT_ROWS_HINTS` recognise the
usual mistakes (zero rows turned into NaN, columns normalised instead of rows,
a division by the squared norm). The check cell of notebook 00::

    from isodl.core import checks
    checks.check_unit_rows(unit_rows)

It is the complete example of the framework in :mod:`isodl.exercises`, which
holds the comparison (:func:`isodl.exercises.compare_functions`), the registry
(:func:`isodl.exercises.register_check`) and the recipe for a new check.
"""

from __future__ import annotations

import torch

from isodl.core import ops
from isodl.exercises import CheckResult, exercise_check, matches

__all__ = ["UNIT_ROWS_HINTS", "check_unit_rows"]


# --------------------------------------------------------------------------- notebook 00


def _unit_rows_inputs(gen: torch.Generator, trial: int):
    """Inputs for :func:`check_unit_rows`; odd trials contain zero rows."""
    rows = int(torch.randint(2, 7, (1,), generator=gen))
    cols = int(torch.randint(2, 6, (1,), generator=gen))
    magnitudes = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 6 - 3)  # 1e-3 .. 1e3
    x = torch.randn(rows, cols, generator=gen, dtype=torch.float64) * magnitudes
    if trial % 2 == 1:
        n_zero = int(torch.randint(1, rows, (1,), generator=gen))  # at least one non-zero row left
        zero = torch.randperm(rows, generator=gen)[:n_zero]
        x[zero] = 0.0
    return (x,)


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


@exercise_check(ops.unit_rows, _unit_rows_inputs, hints=UNIT_ROWS_HINTS)
def check_unit_rows(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-00 exercise ``unit_rows(x)`` against :func:`isodl.core.ops.unit_rows`.

    The inputs are float64 matrices with 2 to 6 rows and 2 to 5 columns, each
    row scaled by a random magnitude between 1e-3 and 1e3; every second trial
    contains one or more all-zero rows, which must stay zero.
    """

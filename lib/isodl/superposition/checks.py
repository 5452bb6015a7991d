"""Notebook 14: exercise checks (per-feature dimensionality; the dimensionality of a regular polygon, derived).

* :func:`check_feature_dimensionality` compares the learner's
  ``feature_dimensionality(W)`` (``W`` of shape ``[m, F]``) with
  :func:`isodl.superposition.metrics.feature_dimensionality`;
* :func:`check_polygon_dimensionality` compares the learner's closed form
  ``polygon_dimensionality(k)`` with
  :func:`isodl.superposition.metrics.polygon_dimensionality`.

The check cell::

    from isodl.superposition import checks
    checks.check_feature_dimensionality(feature_dimensionality)
"""

from __future__ import annotations

import torch

from isodl.exercises import CheckResult, exercise_check, matches

__all__ = [
    "FEATURE_DIMENSIONALITY_HINTS",
    "check_feature_dimensionality",
    "POLYGON_DIMENSIONALITY_HINTS",
    "check_polygon_dimensionality",
]


def _feature_dimensionality_reference(W):
    from isodl.superposition import metrics

    return metrics.feature_dimensionality(W)


def _feature_dimensionality_inputs(gen: torch.Generator, trial: int):
    """``W`` ``[m, F]`` in float64; odd trials hold a zero column, trial 0 an antipodal pair."""
    m = int(torch.randint(1, 5, (1,), generator=gen))
    f = int(torch.randint(2, 9, (1,), generator=gen))
    W = torch.randn(m, f, generator=gen, dtype=torch.float64)
    if trial == 0:
        W[:, 1] = -W[:, 0]
    if trial % 2 == 1:
        W[:, int(torch.randint(0, f, (1,), generator=gen))] = 0.0
    return (W,)


def _dim_parts(inputs):
    (W,) = inputs
    norms = torch.linalg.vector_norm(W, dim=0)
    unit = W / torch.where(norms > 0, norms, torch.ones_like(norms))
    overlap = unit.T @ W
    return W, norms, overlap


def _dim_without_self(got, expected, inputs) -> bool:
    W, norms, overlap = _dim_parts(inputs)
    inter = (overlap**2).sum(-1) - norms**2
    return matches(got[norms > 0], (norms**2 / inter)[norms > 0])


def _dim_not_normalised(got, expected, inputs) -> bool:
    W, norms, _ = _dim_parts(inputs)
    denom = ((W.T @ W) ** 2).sum(-1)
    return matches(got[norms > 0], (norms**2 / denom)[norms > 0])


def _dim_nan_at_zero(got, expected, inputs) -> bool:
    _, norms, _ = _dim_parts(inputs)
    return bool((norms == 0).any()) and bool(torch.isnan(got[norms == 0]).any())


FEATURE_DIMENSIONALITY_HINTS = [
    (
        _dim_without_self,
        "the sum over j runs over every feature, j = i included: that term is ||W_i||^2, so D_i is at most 1",
    ),
    (
        _dim_not_normalised,
        "project on the unit vector W^_i = W_i / ||W_i||, not on W_i itself: (W^_i . W_j)^2, not (W_i . W_j)^2",
    ),
    (
        _dim_nan_at_zero,
        "a zero column (a feature that is not represented) has dimensionality 0, not NaN: guard the 0/0",
    ),
    (
        lambda got, expected, inputs: tuple(got.shape) == (inputs[0].shape[0],) != tuple(expected.shape),
        "return one value per feature (per column of W), not one per hidden dimension",
    ),
]


@exercise_check(_feature_dimensionality_reference, _feature_dimensionality_inputs, hints=FEATURE_DIMENSIONALITY_HINTS)
def check_feature_dimensionality(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-14 exercise ``feature_dimensionality(W)`` against :func:`isodl.superposition.metrics.feature_dimensionality`.

    Trials: random ``[m, F]`` weights, an antipodal pair (trial 0) and zero columns (odd trials).
    """


def _polygon_reference(k):
    from isodl.superposition import metrics

    return metrics.polygon_dimensionality(k)


def _polygon_inputs(gen: torch.Generator, trial: int):
    """``k``: 1, 2, 3 and 5 in the first trials, then random in 4..16."""
    first = (1, 2, 3, 5)
    return (first[trial] if trial < len(first) else int(torch.randint(4, 17, (1,), generator=gen)),)


def _as_number(got):
    return float(got) if not isinstance(got, torch.Tensor) else float(got.reshape(-1)[0])


POLYGON_DIMENSIONALITY_HINTS = [
    (
        lambda got, expected, inputs: inputs[0] >= 3 and abs(_as_number(got) - 1 / inputs[0]) < 1e-9,
        "1/k would need every other feature to interfere fully; the k squared cosines cos^2(2 pi j / k) add up to k/2",
    ),
    (
        lambda got, expected, inputs: inputs[0] == 2 and abs(_as_number(got) - 1.0) < 1e-9,
        "two features at angle pi point in opposite directions: (W^_1 . W_2)^2 = 1, so each gets 1/2",
    ),
    (
        lambda got, expected, inputs: inputs[0] == 1 and abs(_as_number(got) - 2.0) < 1e-9,
        "a single feature has a dimension of its own: D = 1 (the formula 2/k holds from k = 3 on)",
    ),
]


@exercise_check(_polygon_reference, _polygon_inputs, hints=POLYGON_DIMENSIONALITY_HINTS)
def check_polygon_dimensionality(fn, *, n_trials: int = 8, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-14 exercise ``polygon_dimensionality(k)`` (the derived closed form) against the library's."""

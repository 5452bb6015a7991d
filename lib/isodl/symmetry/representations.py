"""Notebooks 03-04 (03, 04): summaries of representations (angular entropy, c4, SRM harmonic, purity, rank correlation).

Scalar summaries of representations: clustering, alignment and selectivity.

Used by notebooks 03 (alignment follows the basis) and 04 (quantised
representations). Each metric reduces a picture the notebooks also draw (a
PPPM cloud, an SRM curve, a set of top images) to one number that can be
asserted and compared across seeds.

* :func:`angular_entropy`: normalised entropy of in-plane angles (1 = uniform,
  lower = clustered at a few angles); the spec's clustering measure for PPPM.
* :func:`c4`: ``mean cos(4 phi)``: +1 when the angles sit on the axes,
  -1 on the diagonals, near 0 without four-fold structure.
* :func:`srm_enrichment` and :func:`curve_modulation`: SRM over its isotropic
  baseline ``C_n(epsilon)``, and the relative swing ``(max - min) / mean`` of
  a (mean) SRM curve (0 for a flat curve, whatever its level).
* :func:`srm_harmonic`: the four-fold harmonic ``sum SRM cos(4 theta) / sum SRM``
  of a mean SRM curve: negative when the cones on the diagonals hold more
  than those on the basis vectors (anti-aligned), positive when aligned, near 0
  when the curve has no structure locked to the basis (notebook 03's summary).
* :func:`top_along`, :func:`class_purity`, :func:`direction_purity`,
  :func:`chance_purity`: the "grandmother direction" test: do the samples
  that project most strongly on a direction mostly share one class?
  :func:`random_directions` gives the random directions to compare with.
* :func:`pppm_metrics` and :func:`rank_correlation`: notebook 04's summary of
  one PPPM run (entropy, c4, kept points against the isotropic expectation)
  and Spearman's rank correlation with a permutation p-value.

Empty inputs give ``nan`` for the angle statistics (an empty set of angles has
no entropy); everything else that is malformed raises an error naming the
argument.
"""

from __future__ import annotations

import math

import torch

from isodl.core.validate import check_int, check_tensor
from isodl.symmetry import srm as _srm

__all__ = [
    "angular_entropy",
    "c4",
    "srm_enrichment",
    "curve_modulation",
    "srm_harmonic",
    "top_along",
    "class_purity",
    "direction_purity",
    "chance_purity",
    "random_directions",
    "pppm_metrics",
    "rank_correlation",
]


def _angles(angles) -> torch.Tensor:
    a = check_tensor("angles", angles, ndim=1, floating=True, finite=True)
    return a.to(torch.float64)


def angular_entropy(angles, bins: int = 72) -> float:
    """Normalised entropy ``H / log(bins)`` of the angles' histogram over ``bins`` equal arcs of the circle.

    1 for angles spread evenly round the circle, 0 when they all fall in one
    bin. ``nan`` when there are no angles. Angles are taken modulo ``2 pi``.
    """
    a = _angles(angles)
    bins = check_int("bins", bins, minimum=2)
    if a.numel() == 0:
        return float("nan")
    idx = torch.floor(torch.remainder(a, 2.0 * math.pi) / (2.0 * math.pi) * bins).to(torch.int64).clamp(0, bins - 1)
    p = torch.bincount(idx, minlength=bins).to(torch.float64)
    p = p / p.sum()
    p = p[p > 0]
    return float(-(p * p.log()).sum() / math.log(bins))


def c4(angles) -> float:
    """``mean cos(4 phi)``: +1 on the axes, -1 on the diagonals, ~0 without four-fold order; ``nan`` if empty."""
    a = _angles(angles)
    if a.numel() == 0:
        return float("nan")
    return float(torch.cos(4.0 * a).mean())


def srm_enrichment(values, n_dim: int, epsilon: float) -> torch.Tensor:
    """SRM values divided by the isotropic baseline ``C_n(epsilon)`` (:func:`isodl.symmetry.srm.cap_fraction`).

    ``values`` is any tensor of SRM fractions (an :class:`~isodl.symmetry.srm.SRMResult`'s
    ``values`` or its mean curve). 1 means "as many activations in the cone as
    an isotropic cloud would put there".
    """
    v = check_tensor("values", values, floating=True, finite=True)
    base = _srm.cap_fraction(n_dim, epsilon)
    if base <= 0.0:
        raise ValueError(
            f"the isotropic baseline C_{n_dim}({epsilon:g}) is 0 in double precision; "
            "lower epsilon to compare against it"
        )
    return v.to(torch.float64) / base


def curve_modulation(curve) -> float:
    """Relative swing of a curve: ``(max - min) / mean`` (0 for a flat curve; ``nan`` if the mean is 0)."""
    c = check_tensor("curve", curve, ndim=1, floating=True, finite=True).to(torch.float64)
    if c.numel() == 0:
        raise ValueError("curve must hold at least one value")
    mean = float(c.mean())
    if mean == 0.0:
        return float("nan")
    return float((c.max() - c.min()) / abs(mean))


def srm_harmonic(curve, angles, order: int = 4) -> float:
    """``sum_theta curve(theta) cos(order theta) / sum_theta curve(theta)`` over a uniform angle grid.

    In [-1, 1]. With ``order = 4`` and an orthonormal basis: +1 when every
    counted sample sits in the cones on ``+-b_i, +-b_j``, -1 when they all sit
    on the diagonals, about 0 for a flat curve or structure not locked to the
    basis. Planes of a random basis add with random phases and average out in a
    mean curve, which is why this summary tells a privileged basis from another
    one. ``nan`` when the curve is zero everywhere (no sample in any cone).
    """
    c = check_tensor("curve", curve, ndim=1, floating=True, finite=True).to(torch.float64)
    a = check_tensor("angles", angles, ndim=1, floating=True, finite=True).to(torch.float64)
    if c.shape != a.shape:
        raise ValueError(f"curve and angles must have the same length, got {c.shape[0]} and {a.shape[0]}")
    order = check_int("order", order, minimum=0)
    total = float(c.sum())
    if c.numel() == 0 or total == 0.0:
        return float("nan")
    return float((c * torch.cos(order * a)).sum() / total)


def top_along(activations, direction, k: int) -> torch.Tensor:
    """Indices of the ``k`` rows of ``activations`` with the largest projection on ``direction`` (largest first)."""
    a = check_tensor("activations", activations, ndim=2, floating=True, finite=True)
    d = check_tensor("direction", direction, ndim=1, floating=True, finite=True)
    if d.shape[0] != a.shape[1]:
        raise ValueError(
            f"dimension mismatch: activations have {a.shape[1]} columns but direction has {d.shape[0]} entries"
        )
    k = check_int("k", k, minimum=1, maximum=a.shape[0])
    norm = float(torch.linalg.vector_norm(d))
    if norm == 0.0:
        raise ValueError("direction is the zero vector; it has no orientation to project on")
    scores = a.to(torch.float64) @ (d.to(torch.float64) / norm)
    return torch.argsort(scores, descending=True, stable=True)[:k]


def _labels(labels, n: int | None = None) -> torch.Tensor:
    y = check_tensor("labels", labels, ndim=1)
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor of class indices, got dtype {y.dtype}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"labels must have one entry per activation row ({n}), got {y.shape[0]}")
    if y.numel() and int(y.min()) < 0:
        raise ValueError("labels must be non-negative class indices")
    return y.to(torch.int64)


def class_purity(labels) -> tuple[float, int]:
    """``(share, class)`` of the most common class among ``labels`` (e.g. the labels of a top-k set)."""
    y = _labels(labels)
    if y.numel() == 0:
        raise ValueError("labels is empty; purity needs at least one sample")
    counts = torch.bincount(y)
    top = int(torch.argmax(counts))
    return float(counts[top]) / y.numel(), top


def direction_purity(activations, labels, directions, k: int = 50) -> torch.Tensor:
    """Class purity of the top-``k`` samples along each row of ``directions``: ``[D]`` (float64)."""
    a = check_tensor("activations", activations, ndim=2, floating=True, finite=True)
    y = _labels(labels, a.shape[0])
    dirs = check_tensor("directions", directions, ndim=2, floating=True, finite=True)
    if dirs.shape[1] != a.shape[1]:
        raise ValueError(
            f"dimension mismatch: activations have {a.shape[1]} columns but directions have {dirs.shape[1]}"
        )
    return torch.tensor([class_purity(y[top_along(a, d, k)])[0] for d in dirs], dtype=torch.float64)


def chance_purity(labels, k: int = 50, n_draws: int = 2000, seed: int = 0) -> float:
    """Mean purity of ``k`` samples drawn at random without replacement: the chance level of :func:`direction_purity`.

    With 10 balanced classes this is about 0.2 for ``k = 50``, not 0.1: the
    most common class in a small random set is over-represented by luck.
    """
    y = _labels(labels)
    k = check_int("k", k, minimum=1, maximum=max(1, y.numel()))
    n_draws = check_int("n_draws", n_draws, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    if y.numel() == 0:
        raise ValueError("labels is empty; purity needs at least one sample")
    gen = torch.Generator().manual_seed(seed)
    n_classes = int(y.max()) + 1
    idx = torch.rand(n_draws, y.numel(), generator=gen).argsort(dim=1)[:, :k]
    counts = torch.nn.functional.one_hot(y[idx], n_classes).sum(dim=1)
    return float(counts.max(dim=1).values.double().mean() / k)


def random_directions(n_directions: int, n_dim: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[n_directions, n_dim]`` unit vectors drawn uniformly from the sphere (seeded)."""
    n_directions = check_int("n_directions", n_directions, minimum=1)
    n_dim = check_int("n_dim", n_dim, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(n_directions, n_dim, generator=gen, dtype=torch.float64)
    return (d / torch.linalg.vector_norm(d, dim=1, keepdim=True)).to(dtype)


def pppm_metrics(result) -> dict:
    """The quantisation summary of one PPPM run (notebook 04): a dict of plain floats.

    ``entropy`` (:func:`angular_entropy` of the in-plane angles; ``nan`` without
    points), ``c4`` (:func:`c4`), ``points`` (kept count), ``expected`` (the
    isotropic expectation ``N P (1 - epsilon^2)^((n - 2) / 2)``) and ``ratio``
    (``points / expected``). ``result`` is an :class:`isodl.symmetry.pppm.PPPMResult`.
    """
    from isodl.symmetry.pppm import PPPMResult

    if not isinstance(result, PPPMResult):
        raise TypeError(f"result must be an isodl.symmetry.pppm.PPPMResult, got {type(result).__name__}")
    angles = result.angles
    return {
        "entropy": angular_entropy(angles),
        "c4": c4(angles),
        "points": float(len(result)),
        "expected": float(result.expected),
        "ratio": float(result.count_ratio),
    }


def _ranks(v: torch.Tensor) -> torch.Tensor:
    """Average ranks (ties share the mean of their ranks), 0-based, float64."""
    order = torch.argsort(v, stable=True)
    r = torch.empty_like(v, dtype=torch.float64)
    r[order] = torch.arange(v.numel(), dtype=torch.float64)
    uniq, inverse = torch.unique(v, return_inverse=True)
    sums = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inverse, r)
    counts = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(r))
    return (sums / counts)[inverse]


def rank_correlation(x, y, *, n_permutations: int = 5000, seed: int = 0) -> tuple[float, float]:
    """Spearman's rank correlation of ``x`` and ``y`` and a two-sided permutation p-value.

    The p-value is the share of ``n_permutations`` random relabellings (seeded)
    whose ``|rho|`` is at least the observed one, counting the observed
    labelling itself (so it is never 0). Pairs with a ``nan`` are dropped;
    at least 3 pairs must remain.
    """
    a = check_tensor("x", x, ndim=1).to(torch.float64)
    b = check_tensor("y", y, ndim=1).to(torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same length, got {a.shape[0]} and {b.shape[0]}")
    n_permutations = check_int("n_permutations", n_permutations, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    ok = ~(torch.isnan(a) | torch.isnan(b))
    a, b = a[ok], b[ok]
    if a.numel() < 3:
        raise ValueError(f"rank_correlation needs at least 3 pairs without nan, got {a.numel()}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("x and y must be finite (nan pairs are dropped, infinities are not)")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(torch.sqrt((ra * ra).sum() * (rb * rb).sum()))
    if denom == 0.0:
        return float("nan"), 1.0
    rho = float((ra * rb).sum()) / denom
    gen = torch.Generator().manual_seed(seed)
    perms = torch.rand(n_permutations, rb.numel(), generator=gen).argsort(dim=1)
    null = (rb[perms] * ra).sum(dim=1) / denom
    p = (1 + int((null.abs() >= abs(rho) - 1e-12).sum())) / (n_permutations + 1)
    return rho, p

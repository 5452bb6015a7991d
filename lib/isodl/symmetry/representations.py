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
* Nulls and diagnostics (notebooks 03 and 04): :func:`unit_diagnostics`
  (per-unit mean, sd and stuck units), :func:`moment_matched_gaussian`,
  :func:`rotated_copies`, :func:`uniform_entropy_null` (entropy of a finite
  uniform sample), :func:`quantisation_nulls` (PPPM entropy and c4 beside all
  three nulls), :func:`beyond_null` (the comparison every claim is asserted
  with), :func:`excess_kurtosis` with :func:`kurtosis_rotated_null` (the
  standard per-coordinate alignment measure), :func:`partial_rank_correlation`
  :func:`mean_and_se` and :func:`mean_difference_test` (a permutation test).
* Basis-free clustering (notebook 04): :func:`kmeans` (k-means++ and Lloyd
  steps, restarts, explicit generator), :func:`kmeans_inertia` (of a whitened
  cloud), :func:`kmeans_nulls` (inertia over that of moment-matched Gaussian
  clouds: about 1 without clusters, small with them), :func:`snap_to_centres`
  (a graded positive control built from a latent) and :func:`live_subspace`
  (the live units of a latent in any basis).
* :func:`label_permutation_test` (notebook 03): a statistic of labelled data
  against the same statistic with the labels shuffled;
  :func:`stratified_difference_test`: ``mean(a) - mean(b)`` with the a/b
  labels permuted only within each stratum (e.g. within one training seed).

Empty inputs give ``nan`` for the angle statistics (an empty set of angles has
no entropy); everything else that is malformed raises an error naming the
argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from isodl.core.activations import random_orthogonal
from isodl.core.validate import check_choice, check_float, check_generator, check_int, check_tensor
from isodl.symmetry import srm as _srm

__all__ = [
    "angular_entropy",
    "harmonic_nulls",
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
    "UnitDiagnostics",
    "unit_diagnostics",
    "moment_matched_gaussian",
    "rotated_copies",
    "uniform_entropy_null",
    "quantisation_nulls",
    "beyond_null",
    "excess_kurtosis",
    "kurtosis_rotated_null",
    "partial_rank_correlation",
    "mean_and_se",
    "mean_difference_test",
    "kmeans",
    "kmeans_inertia",
    "kmeans_nulls",
    "snap_to_centres",
    "live_subspace",
    "label_permutation_test",
    "stratified_difference_test",
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


# --------------------------------------------------------------------------- diagnostics and nulls


@dataclass
class UnitDiagnostics:
    """Per-unit statistics of a latent in a basis (see :func:`unit_diagnostics`).

    * ``mean``, ``sd``: ``[K]`` mean and standard deviation of each coordinate ``c_k = z . b_k``;
    * ``majority``: ``[K]`` share of the samples on the more common side of 0;
    * ``stuck``: ``[K]`` bool, ``majority > threshold``: the unit never (or almost never)
      crosses 0, so the nonlinearity treats every sample alike there (tanh: close to one of
      ``+-1`` when ``|mean|`` is large; leaky ReLU: always on one side of its kink);
    * ``live``: ``~stuck``; ``n_stuck``, ``n_live``: their counts.
    """

    mean: torch.Tensor
    sd: torch.Tensor
    majority: torch.Tensor
    stuck: torch.Tensor
    threshold: float

    @property
    def live(self) -> torch.Tensor:
        return ~self.stuck

    @property
    def n_stuck(self) -> int:
        return int(self.stuck.sum())

    @property
    def n_live(self) -> int:
        return int(self.live.sum())

    def table(self) -> str:
        """One line per unit: index, mean, sd, majority share and a mark for stuck units."""
        lines = [f"{'unit':>5}{'mean':>9}{'sd':>8}{'same sign':>11}"]
        for k in range(self.mean.numel()):
            mark = "  stuck" if bool(self.stuck[k]) else ""
            lines.append(
                f"{k:>5}{float(self.mean[k]):>+9.2f}{float(self.sd[k]):>8.2f}{float(self.majority[k]):>10.1%}{mark}"
            )
        return "\n".join(lines)


def _latent(latent, name: str = "latent") -> torch.Tensor:
    z = check_tensor(name, latent, ndim=2, floating=True, finite=True).to(torch.float64)
    if z.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples (rows), got {z.shape[0]}")
    return z


def unit_diagnostics(latent, basis=None, threshold: float = 0.99) -> UnitDiagnostics:
    """Mean, sd and sign balance of every coordinate of ``latent`` ``[N, n]`` in ``basis`` (``[K, n]``, default I).

    A unit is *stuck* when more than ``threshold`` of the samples have the same
    sign on it. Such units carry almost no sample-to-sample information through
    a saturating or piecewise-linear activation, and a large constant offset on
    them makes PPPM pictures look clustered (the same few constants seen in
    every plane that contains them) without any quantisation.
    """
    z = _latent(latent)
    threshold = check_float("threshold", threshold, minimum=0.5, maximum=1.0)
    if basis is not None:
        b = _srm.unit_basis(basis, z.shape[1])
        z = z @ b.T
    pos = (z > 0).to(torch.float64).mean(dim=0)
    majority = torch.maximum(pos, 1.0 - pos)
    return UnitDiagnostics(z.mean(dim=0), z.std(dim=0), majority, majority > threshold, float(threshold))


def moment_matched_gaussian(latent, n_samples: int | None = None, *, generator: torch.Generator | None = None):
    """Samples of the Gaussian with the same mean vector and covariance matrix as ``latent`` (float64).

    The null of "no structure beyond the first two moments": whatever a
    summary finds in ``latent`` that it also finds in this cloud is explained
    by the mean and the covariance alone (offsets, stuck units, correlations),
    not by clustering. ``generator`` (a ``torch.Generator``) fixes the draw.
    """
    z = _latent(latent)
    n_samples = z.shape[0] if n_samples is None else check_int("n_samples", n_samples, minimum=1)
    generator = check_generator(generator)
    mu = z.mean(dim=0)
    cov = torch.cov(z.T).reshape(z.shape[1], z.shape[1])
    evals, evecs = torch.linalg.eigh(cov)
    root = evecs * evals.clamp_min(0.0).sqrt()
    w = torch.randn(n_samples, z.shape[1], generator=generator, dtype=torch.float64)
    return mu + w @ root.T


def rotated_copies(latent, n_copies: int, *, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """``n_copies`` copies ``latent @ R`` of the cloud, each with its own Haar-random rotation ``R`` (float64).

    A rotation keeps every length and every angle between samples, so any
    clustering survives it; only the cloud's orientation to the basis is
    random. A summary that is about the basis must differ between the cloud
    and its rotated copies.
    """
    z = _latent(latent)
    n_copies = check_int("n_copies", n_copies, minimum=1)
    generator = check_generator(generator)
    seed = generator if generator is not None else torch.Generator().manual_seed(0)
    return [z @ random_orthogonal(z.shape[1], seed=seed) for _ in range(n_copies)]


def harmonic_nulls(
    latent,
    basis,
    epsilon: float,
    n_angles: int,
    *,
    n_rotated: int,
    n_gauss: int,
    order: int = 4,
    generator: torch.Generator | None = None,
) -> tuple[float, list[float], list[float]]:
    """The SRM harmonic of a cloud in ``basis`` beside the same harmonic on its two nulls (notebook 03's headline).

    Returns ``(own, rotated, gauss)``: :func:`srm_harmonic` of order ``order`` of the mean SRM curve of ``latent``,
    then of each of ``n_rotated`` :func:`rotated_copies` (same cloud, random orientation: what the basis explains),
    then of each of ``n_gauss`` :func:`moment_matched_gaussian` draws (same mean and covariance: what correlated
    units explain without any four-fold order). The rotated copies are drawn from ``generator`` first, then the
    Gaussians.
    """
    z = _latent(latent)
    n_rotated = check_int("n_rotated", n_rotated, minimum=1)
    n_gauss = check_int("n_gauss", n_gauss, minimum=1)
    generator = check_generator(generator)

    def harmonic(cloud):
        res = _srm.spotlight_resonance(cloud, basis, epsilon, n_angles)
        return srm_harmonic(res.mean(), res.angles, order=order)

    own = harmonic(z)
    rotated = [harmonic(c) for c in rotated_copies(z, n_rotated, generator=generator)]
    gauss = [harmonic(moment_matched_gaussian(z, generator=generator)) for _ in range(n_gauss)]
    return own, rotated, gauss


def uniform_entropy_null(
    n_points: int, bins: int = 72, n_draws: int = 200, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[n_draws]`` angular entropies of ``n_points`` angles drawn uniformly on the circle.

    The entropy of a finite sample is biased low: 36 evenly random angles in
    72 bins give about 0.77, not 1. A kept-point cloud must be compared with
    this null at its own count. Empty when ``n_points`` is 0.
    """
    n_points = check_int("n_points", n_points, minimum=0)
    bins = check_int("bins", bins, minimum=2)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    generator = check_generator(generator)
    if n_points == 0:
        return torch.zeros(0, dtype=torch.float64)
    a = torch.rand(n_draws, n_points, generator=generator, dtype=torch.float64) * (2.0 * math.pi)
    return torch.tensor([angular_entropy(row, bins) for row in a], dtype=torch.float64)


def quantisation_nulls(
    latent,
    basis=None,
    epsilon: float = 0.8,
    *,
    n_draws: int = 5,
    n_rotations: int = 20,
    generator: torch.Generator | None = None,
) -> dict:
    """PPPM entropy and ``c4`` of ``latent`` beside the same numbers on its nulls (notebook 04).

    Returns a dict of plain floats and lists:

    * ``entropy``, ``c4``, ``points``: of the latent itself (:func:`pppm_metrics`);
    * ``gauss_entropy``, ``gauss_c4``: ``n_draws`` moment-matched Gaussian clouds
      (:func:`moment_matched_gaussian`);
    * ``rot_entropy``, ``rot_c4``: ``n_rotations`` randomly rotated copies (:func:`rotated_copies`);
    * ``uniform_entropy``: ``n_draws`` sets of uniform angles of the latent's own kept count
      (:func:`uniform_entropy_null`; empty if nothing was kept).
    """
    from isodl.symmetry.pppm import privileged_plane_projection

    z = _latent(latent)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    n_rotations = check_int("n_rotations", n_rotations, minimum=1)
    generator = check_generator(generator)
    if generator is None:
        generator = torch.Generator().manual_seed(0)

    def metrics(x):
        return pppm_metrics(privileged_plane_projection(x, basis, epsilon))

    own = metrics(z)
    gauss = [metrics(moment_matched_gaussian(z, generator=generator)) for _ in range(n_draws)]
    rot = [metrics(x) for x in rotated_copies(z, n_rotations, generator=generator)]
    uni = uniform_entropy_null(int(own["points"]), n_draws=n_draws, generator=generator)
    return {
        "entropy": own["entropy"],
        "c4": own["c4"],
        "points": own["points"],
        "ratio": own["ratio"],
        "gauss_entropy": [g["entropy"] for g in gauss],
        "gauss_c4": [g["c4"] for g in gauss],
        "rot_entropy": [r["entropy"] for r in rot],
        "rot_c4": [r["c4"] for r in rot],
        "uniform_entropy": uni.tolist(),
    }


def beyond_null(statistic: float, null, *, side: str = "less", margin: float = 0.0) -> bool:
    """Whether ``statistic`` lies beyond *every* value of ``null`` by more than ``margin``.

    ``side="less"``: ``statistic < min(null) - margin`` (e.g. an entropy lower
    than every null cloud's); ``"greater"``: ``statistic > max(null) + margin``.
    ``nan`` values in ``null`` are ignored; a ``nan`` statistic or an
    all-``nan`` null gives False (nothing to compare). With ``n`` null draws a
    statistic from the null itself passes with probability ``1 / (n + 1)``
    at ``margin = 0``; the margin makes that rarer still.
    """
    side = check_choice("side", side, ("less", "greater"))
    margin = check_float("margin", margin, minimum=0.0)
    v = torch.as_tensor(null, dtype=torch.float64).reshape(-1)
    v = v[~torch.isnan(v)]
    s = float(statistic)
    if math.isnan(s) or v.numel() == 0:
        return False
    if side == "less":
        return s < float(v.min()) - margin
    return s > float(v.max()) + margin


def excess_kurtosis(latent, basis=None) -> torch.Tensor:
    """``[K]`` excess kurtosis ``E[(c - mu)^4] / sd^4 - 3`` of each coordinate ``c_k = z . b_k`` (default basis I).

    0 for a Gaussian coordinate, positive for heavy tails (mass at 0 and far
    out: a sparse, basis-aligned code), negative for light tails (mass
    pushed to two values, e.g. the corners of a cube, away from the axes).
    Compare the mean over coordinates with the same on randomly rotated copies
    (:func:`kurtosis_rotated_null`): only the difference says anything about the
    basis. A coordinate with zero variance gives ``nan``.
    """
    z = _latent(latent)
    if basis is not None:
        z = z @ _srm.unit_basis(basis, z.shape[1]).T
    c = z - z.mean(dim=0)
    var = (c * c).mean(dim=0)
    k = (c**4).mean(dim=0) / (var * var) - 3.0
    return torch.where(var > 0, k, torch.full_like(k, float("nan")))


def kurtosis_rotated_null(latent, basis=None, n_copies: int = 20, *, generator: torch.Generator | None = None):
    """``[n_copies]`` mean excess kurtosis over coordinates of randomly rotated copies of ``latent``."""
    copies = rotated_copies(latent, n_copies, generator=generator)
    return torch.tensor([float(excess_kurtosis(x, basis).nanmean()) for x in copies], dtype=torch.float64)


def partial_rank_correlation(x, y, control, *, n_permutations: int = 5000, seed: int = 0) -> tuple[float, float]:
    """Spearman correlation of ``x`` and ``y`` with ``control`` held fixed, and a permutation p-value.

    The ranks of ``x`` and of ``y`` are each regressed (least squares, with an
    intercept) on the ranks of ``control``; the result is the correlation of
    the two residuals, so a relation that runs only through ``control`` (e.g.
    the number of live units) gives about 0. The p-value permutes one residual
    (two-sided, counting the observed labelling). ``nan`` rows are dropped;
    at least 4 must remain.
    """
    a = check_tensor("x", x, ndim=1).to(torch.float64)
    b = check_tensor("y", y, ndim=1).to(torch.float64)
    c = check_tensor("control", control, ndim=1).to(torch.float64)
    if not (a.shape == b.shape == c.shape):
        raise ValueError(f"x, y and control must have the same length, got {a.shape[0]}, {b.shape[0]}, {c.shape[0]}")
    ok = ~(torch.isnan(a) | torch.isnan(b) | torch.isnan(c))
    a, b, c = a[ok], b[ok], c[ok]
    if a.numel() < 4:
        raise ValueError(f"partial_rank_correlation needs at least 4 rows without nan, got {a.numel()}")
    design = torch.stack([torch.ones_like(c), _ranks(c)], dim=1)

    def residual(v):
        r = _ranks(v)
        coef = torch.linalg.lstsq(design, r[:, None]).solution
        return r - (design @ coef)[:, 0]

    ra, rb = residual(a), residual(b)
    denom = float(torch.sqrt((ra * ra).sum() * (rb * rb).sum()))
    if denom < 1e-12:
        return float("nan"), 1.0
    rho = float((ra * rb).sum()) / denom
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0, maximum=2**63 - 1))
    n_permutations = check_int("n_permutations", n_permutations, minimum=1)
    perms = torch.rand(n_permutations, rb.numel(), generator=gen).argsort(dim=1)
    null = (rb[perms] * ra).sum(dim=1) / denom
    p = (1 + int((null.abs() >= abs(rho) - 1e-12).sum())) / (n_permutations + 1)
    return rho, p


def mean_and_se(values) -> tuple[float, float]:
    """Mean and standard error ``sd / sqrt(n)`` of a list of numbers (``nan`` entries dropped; se ``nan`` if n < 2)."""
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    v = v[~torch.isnan(v)]
    if v.numel() == 0:
        return float("nan"), float("nan")
    if v.numel() < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(v.std() / math.sqrt(v.numel()))


def mean_difference_test(a, b, *, alternative: str = "two-sided", n_permutations: int = 5000, seed: int = 0):
    """``mean(a) - mean(b)`` and its permutation p-value (the labels a/b shuffled, seeded).

    ``alternative``: ``"greater"`` (is ``a`` larger?), ``"less"`` or
    ``"two-sided"``. The p-value counts the observed labelling, so it is
    never 0. Used for notebook 03's purity comparison: are privileged
    directions purer than random ones?
    """
    x = check_tensor("a", torch.as_tensor(a, dtype=torch.float64), ndim=1, finite=True)
    y = check_tensor("b", torch.as_tensor(b, dtype=torch.float64), ndim=1, finite=True)
    if x.numel() < 2 or y.numel() < 2:
        raise ValueError(f"a and b need at least 2 values each, got {x.numel()} and {y.numel()}")
    alternative = check_choice("alternative", alternative, ("two-sided", "greater", "less"))
    n_permutations = check_int("n_permutations", n_permutations, minimum=1)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0, maximum=2**63 - 1))
    pooled = torch.cat([x, y])
    diff = float(x.mean() - y.mean())
    perms = torch.rand(n_permutations, pooled.numel(), generator=gen).argsort(dim=1)
    shuffled = pooled[perms]
    null = shuffled[:, : x.numel()].mean(dim=1) - shuffled[:, x.numel() :].mean(dim=1)
    tol = 1e-12
    if alternative == "greater":
        hits = int((null >= diff - tol).sum())
    elif alternative == "less":
        hits = int((null <= diff + tol).sum())
    else:
        hits = int((null.abs() >= abs(diff) - tol).sum())
    return diff, (1 + hits) / (n_permutations + 1)


# --------------------------------------------------------------------------- basis-free clustering (k-means)


def _generator_or_default(generator):
    generator = check_generator(generator)
    return torch.Generator().manual_seed(0) if generator is None else generator


def kmeans(points, k: int, *, n_init: int = 4, n_iter: int = 50, generator: torch.Generator | None = None):
    """Lloyd's k-means with k-means++ starts: ``(inertia, labels, centres)`` of the best of ``n_init`` restarts.

    ``points`` ``[N, d]`` (float, finite, ``N >= k``); ``inertia`` is the mean
    squared distance of a point to its centre (per point, so clouds of
    different sizes compare). Deterministic given ``generator`` (a
    ``torch.Generator``; default seed 0). Each step is one vectorised distance
    matrix, so 1,000-odd points in 8-d take milliseconds.
    """
    x = _latent(points, "points")
    k = check_int("k", k, minimum=1)
    if k > x.shape[0]:
        raise ValueError(f"k must be at most the number of points ({x.shape[0]}), got {k}")
    n_init = check_int("n_init", n_init, minimum=1)
    n_iter = check_int("n_iter", n_iter, minimum=1)
    generator = _generator_or_default(generator)
    best = None
    for _ in range(n_init):
        # k-means++: each new centre drawn with probability proportional to the squared distance to the nearest one
        first = int(torch.randint(0, x.shape[0], (1,), generator=generator))
        centres = x[first : first + 1]
        d2 = ((x - centres) ** 2).sum(dim=1)
        for _ in range(1, k):
            weights = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)
            nxt = int(torch.multinomial(weights, 1, generator=generator))
            centres = torch.cat([centres, x[nxt : nxt + 1]])
            d2 = torch.minimum(d2, ((x - x[nxt]) ** 2).sum(dim=1))
        labels = None
        for _ in range(n_iter):
            new = torch.cdist(x, centres).argmin(dim=1)
            if labels is not None and torch.equal(new, labels):
                break
            labels = new
            counts = torch.bincount(labels, minlength=k).to(x.dtype)
            sums = torch.zeros_like(centres).index_add_(0, labels, x)
            empty = counts == 0
            centres = torch.where(empty[:, None], centres, sums / counts.clamp_min(1.0)[:, None])
        inertia = float(((x - centres[labels]) ** 2).sum(dim=1).mean())
        if best is None or inertia < best[0]:
            best = (inertia, labels, centres)
    return best


def _whiten(x: torch.Tensor) -> torch.Tensor:
    """Centre ``x`` and map its covariance to the identity on its non-degenerate directions."""
    c = x - x.mean(dim=0)
    evals, evecs = torch.linalg.eigh(torch.cov(c.T).reshape(x.shape[1], x.shape[1]))
    keep = evals > 1e-10 * max(float(evals.max()), 1e-300)
    if not bool(keep.any()):
        return torch.zeros(x.shape[0], 1, dtype=x.dtype)
    return (c @ evecs[:, keep]) / evals[keep].sqrt()


def kmeans_inertia(
    latent, k: int = 10, *, whiten: bool = True, n_init: int = 4, generator: torch.Generator | None = None
) -> float:
    """k-means inertia (mean squared distance to the nearest of ``k`` centres) of ``latent`` ``[N, n]``.

    With ``whiten=True`` (default) the cloud is first centred and whitened
    (covariance to the identity), so the number does not depend on the basis,
    on offsets or on the units' scales: it measures clustering *beyond* the
    first two moments. A whitened Gaussian in ``d`` dimensions has total
    variance ``d``; ``k`` clusters bring the inertia far below that.
    """
    z = _latent(latent)
    whiten = bool(whiten)
    return kmeans(_whiten(z) if whiten else z, k, n_init=n_init, generator=generator)[0]


def kmeans_nulls(
    latent, k: int = 10, *, n_draws: int = 5, n_init: int = 4, generator: torch.Generator | None = None
) -> dict:
    """k-means inertia of ``latent`` against ``n_draws`` moment-matched Gaussian clouds (notebook 04).

    Returns plain floats and lists: ``inertia`` (of the latent, whitened),
    ``gauss_inertia`` (each Gaussian draw, whitened the same way), ``ratio`` =
    ``inertia / mean(gauss_inertia)`` (about 1 when the latent has no clusters
    beyond its mean and covariance, well below 1 when it has), and
    ``null_ratio``: each draw's inertia over the mean of the draws (the ratio's
    spread under the null). Compare with :func:`beyond_null`
    (``ratio`` below every ``null_ratio``).
    """
    z = _latent(latent)
    k = check_int("k", k, minimum=1)
    n_draws = check_int("n_draws", n_draws, minimum=2)
    generator = _generator_or_default(generator)
    own = kmeans_inertia(z, k, n_init=n_init, generator=generator)
    gauss = [
        kmeans_inertia(moment_matched_gaussian(z, generator=generator), k, n_init=n_init, generator=generator)
        for _ in range(n_draws)
    ]
    m = sum(gauss) / len(gauss)
    return {
        "k": k,
        "inertia": own,
        "gauss_inertia": gauss,
        "ratio": own / m if m > 0 else float("nan"),
        "null_ratio": [g / m if m > 0 else float("nan") for g in gauss],
    }


def snap_to_centres(latent, assignment, noise: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A graded positive control built from ``latent`` ``[N, n]``: a latent that really takes a few values.

    Each sample is replaced by the mean of its group (``assignment``, ``[N]``
    non-negative integer labels, e.g. the digit classes), plus Gaussian noise
    of ``noise`` times each unit's own standard deviation. ``noise = 0`` gives
    exactly one point per group; as ``noise`` grows the clusters blur into a
    continuum, so a clustering test's detection threshold can be read off in
    units of the latent's own spread.
    """
    z = _latent(latent)
    groups = _labels(assignment, z.shape[0])
    noise = check_float("noise", noise, minimum=0.0)
    generator = _generator_or_default(generator)
    n_groups = int(groups.max()) + 1
    counts = torch.bincount(groups, minlength=n_groups).to(z.dtype).clamp_min(1.0)
    means = torch.zeros(n_groups, z.shape[1], dtype=z.dtype).index_add_(0, groups, z) / counts[:, None]
    w = torch.randn(z.shape, generator=generator, dtype=z.dtype)
    return means[groups] + noise * z.std(dim=0) * w


def live_subspace(latent, basis=None, threshold: float = 0.99) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The live part of ``latent`` in ``basis``: ``(coordinates [N, r], basis of the live rows in them or None)``.

    For the standard basis (``basis=None``) this drops the stuck coordinates
    (:func:`unit_diagnostics`) and returns ``(latent[:, live], None)``. For a
    basis with rows ``b_k`` (e.g. a Thomson frame) the live rows span an
    ``r``-dimensional subspace; the latent is expressed in an orthonormal basis
    ``Q`` of that span (``z Q``) and the live rows in the same coordinates
    (``B_live Q``), so PPPM and its nulls can run on the live units in the
    family's own basis. Raises if fewer than 2 units are live.
    """
    z = _latent(latent)
    d = unit_diagnostics(z, basis, threshold)
    if d.n_live < 2:
        raise ValueError(f"latent has {d.n_live} live units in this basis; at least 2 are needed")
    if basis is None:
        return z[:, d.live], None
    b = _srm.unit_basis(basis, z.shape[1])[d.live]
    u, s, _ = torch.linalg.svd(b.T, full_matrices=False)
    q = u[:, s > 1e-8 * float(s.max())]
    return z @ q, b @ q


def label_permutation_test(statistic, labels, *, n_permutations: int = 200, seed: int = 0) -> dict:
    """``statistic(labels)`` against the same function of shuffled labels (a within-run permutation null).

    ``statistic`` is a callable taking ``[N]`` integer labels and returning a
    float (e.g. the mean top-k class purity of some directions); ``labels`` the
    true labels. Returns ``observed``, ``null`` (the list of ``n_permutations``
    values), ``z`` (``(observed - mean(null)) / sd(null)``) and ``p``: the
    one-sided share of null values at least as large as ``observed``, counting
    the observed labelling, so never 0.
    """
    if not callable(statistic):
        raise TypeError(f"statistic must be a callable of the labels, got {type(statistic).__name__}")
    y = _labels(labels)
    n_permutations = check_int("n_permutations", n_permutations, minimum=2)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0, maximum=2**63 - 1))
    observed = float(statistic(y))
    null = torch.tensor(
        [float(statistic(y[torch.randperm(y.numel(), generator=gen)])) for _ in range(n_permutations)],
        dtype=torch.float64,
    )
    sd = float(null.std())
    z = (observed - float(null.mean())) / sd if sd > 0 else float("nan")
    p = (1 + int((null >= observed - 1e-12).sum())) / (n_permutations + 1)
    return {"observed": observed, "null": null.tolist(), "z": z, "p": p}


def stratified_difference_test(
    a_strata, b_strata, *, alternative: str = "two-sided", n_permutations: int = 5000, seed: int = 0
):
    """``mean(a) - mean(b)`` pooled over strata, with a p-value from permuting a/b **within each stratum**.

    ``a_strata`` and ``b_strata`` are lists of equal length (one entry per
    stratum, e.g. per training seed), each entry a list of values. Values
    from one stratum share a network, so they are not exchangeable with other
    strata's; permuting only inside a stratum keeps that structure, which makes
    this the stricter test than :func:`mean_difference_test` on the pooled
    values. Returns ``(difference, p)``; the p-value counts the observed
    labelling, so it is never 0.
    """
    if not isinstance(a_strata, (list, tuple)) or not isinstance(b_strata, (list, tuple)):
        raise TypeError("a_strata and b_strata must be lists of lists of values (one list per stratum)")
    if len(a_strata) != len(b_strata) or not a_strata:
        raise ValueError(
            f"a_strata and b_strata need the same, non-zero number of strata, got {len(a_strata)} and {len(b_strata)}"
        )
    alternative = check_choice("alternative", alternative, ("two-sided", "greater", "less"))
    n_permutations = check_int("n_permutations", n_permutations, minimum=1)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0, maximum=2**63 - 1))
    observed_a = observed_b = 0.0
    null_a = torch.zeros(n_permutations, dtype=torch.float64)
    null_b = torch.zeros(n_permutations, dtype=torch.float64)
    n_a = n_b = 0
    for i, (a, b) in enumerate(zip(a_strata, b_strata)):
        x = check_tensor(f"a_strata[{i}]", torch.as_tensor(a, dtype=torch.float64), ndim=1, finite=True)
        y = check_tensor(f"b_strata[{i}]", torch.as_tensor(b, dtype=torch.float64), ndim=1, finite=True)
        if x.numel() < 1 or y.numel() < 1:
            raise ValueError(f"stratum {i} needs at least one value in each group, got {x.numel()} and {y.numel()}")
        v = torch.cat([x, y])
        observed_a, observed_b = observed_a + float(x.sum()), observed_b + float(y.sum())
        # every permutation of this stratum at once: the first x.numel() of a random order are "a"
        perms = torch.rand(n_permutations, v.numel(), generator=gen).argsort(dim=1)
        picked = v[perms[:, : x.numel()]].sum(dim=1)
        null_a += picked
        null_b += float(v.sum()) - picked
        n_a, n_b = n_a + x.numel(), n_b + y.numel()
    observed = observed_a / n_a - observed_b / n_b
    null = null_a / n_a - null_b / n_b
    tol = 1e-12
    if alternative == "greater":
        hits = int((null >= observed - tol).sum())
    elif alternative == "less":
        hits = int((null <= observed + tol).sum())
    else:
        hits = int((null.abs() >= abs(observed) - tol).sum())
    return observed, (1 + hits) / (n_permutations + 1)

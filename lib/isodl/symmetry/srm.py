"""Notebooks 02-04 (02, 03, 04): the Spotlight Resonance Method (exact in-plane SRM, Thomson bases, cap baseline).

The Spotlight Resonance Method (SRM): how a cloud of activations sits relative to a basis.

Derived in notebook 02 (``notebooks/02_spotlight_resonance.ipynb``); used by
notebooks 03 and 04. Method: G. Bird, "The Spotlight Resonance Method:
Resolving the Alignment of Embedded Activations", arXiv 2505.13471.

The method
----------
Take activation vectors ``a_m`` (rows of an ``[N, n]`` array), a privileged basis
(rows ``b_k`` of a ``[K, n]`` array) and a threshold ``epsilon`` in [-1, 1]. For
each pair of basis vectors ``(b_i, b_j)`` a probe ("spotlight") turns in their
plane, starting at ``b_i``. At each angle ``theta`` SRM counts the fraction of
unit-normalised activations inside the cone of half-angle ``arccos(epsilon)``
around the probe:

    SRM_ij(theta) = (1 / N) * #{ m : a_hat_m . s_ij(theta) >= epsilon }.

Peaks where the probe passes the basis vectors mean the activations align with
the basis; a flat curve at the spherical-cap fraction :func:`cap_fraction` is what
an isotropic distribution gives.

**Sign convention (the course's).** The probe turns from ``b_i`` *towards*
``+b_j``:

    s_ij(theta) = cos(theta) b_i_hat + sin(theta) b_j_perp,
    b_j_perp = (b_j_hat - g b_i_hat) / sqrt(1 - g^2),   g = b_i_hat . b_j_hat,

so for an orthonormal pair ``+b_j`` sits at ``theta = pi / 2``, the usual polar
angle. The author's reference code turns the other way (towards ``-b_j`` first,
``+b_j`` at ``3 pi / 2``); its curves are the mirror image, ``theta -> 2 pi - theta``
(:func:`to_reference_orientation` converts).

**Exact cheap formulation.** The rotated probe never leaves the plane, so
``a_hat . s_ij(theta) = cos(theta) c_i + sin(theta) c_j_perp`` with the projections
``c = A_hat B_hat^T`` computed once: each plane is a rank-2 combination, with
no ``n x n`` rotation matrix. ``method="dense"`` evaluates this on every grid
angle (O(P N A) work, chunked over planes so memory stays bounded).
``method="arcs"`` (the default) solves the inequality for ``theta`` instead:
each sample is inside the cone on one arc of angles, found with ``atan2`` and
``arccos``, and the arcs are summed with a difference array (O(P (N + A)) work).
The arc end points are then checked on the grid with the very same formula
``dense`` uses, so the two methods return identical numbers.

Counting semantics (the reference code's, with the course's decisions):
``>= epsilon``; activation rows are normalised and all-zero rows stay zero (so
they are inside every cone exactly when ``epsilon <= 0``); the grid holds ``A``
distinct angles ``2 pi k / A``; basis rows are normalised inside; pairs of
parallel or antipodal basis vectors span no plane and are skipped (and reported
in ``result.skipped``).

**At the size of real models** (:func:`spotlight_resonance_stream`). A
768-dimensional layer has 589,056 ordered planes; their ``[P, A]`` curves
would not fit in memory. The streaming function sweeps the planes in chunks
of bounded size and keeps only reductions (:class:`SRMSummary`): the mean
curve, each plane's harmonic, extremes and peak, and the curves of the top
planes. For an orthonormal pair the reverse plane's curve is the exact
reflection ``k -> (A / 4 - k) mod A`` of the pair's, so only ``i < j`` is swept.

The projection step (:func:`basis_projections`, :func:`in_plane_coordinates`)
and the argument checks (:func:`check_activations`, :func:`check_epsilon`) are
shared with :mod:`isodl.symmetry.pppm`.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from isodl.core.validate import check_bool, check_choice, check_float, check_int, check_tensor

__all__ = [
    "PAIRS",
    "METHODS",
    "SRMResult",
    "check_activations",
    "check_epsilon",
    "unit_basis",
    "pair_indices",
    "plane_pairs",
    "basis_projections",
    "in_plane_coordinates",
    "srm_angles",
    "cone_count",
    "spotlight_resonance",
    "SCORES",
    "SRMSummary",
    "stream_plane_bytes",
    "srm_harmonics",
    "spotlight_resonance_stream",
    "rotation_matrix_srm",
    "to_reference_orientation",
    "cap_fraction",
    "binomial_std",
    "thomson_energy",
    "thomson_basis",
]

#: Pair modes: "perm" (every ordered pair, K (K - 1) planes) or "comb" (i < j, K (K - 1) / 2).
PAIRS = ("perm", "comb")
#: Evaluation methods of :func:`spotlight_resonance`.
METHODS = ("arcs", "dense")

# Elements per chunk (planes x samples for "arcs", planes x samples x angles for "dense").
_ARC_CHUNK = 1 << 21
_DENSE_CHUNK = 1 << 22


# --------------------------------------------------------------------------- results


class SRMResult(tuple):
    """``(angles, values, pairs)``, unpackable as a tuple, plus ``skipped`` and ``epsilon``.

    * ``angles``: ``[A]`` grid ``2 pi k / A`` (float64);
    * ``values``: ``[P, A]`` fraction inside the cone (signed: in [-1, 1]) for each plane and angle;
    * ``pairs``: ``[P, 2]`` basis indices ``(i, j)`` of each plane (the probe starts at ``b_i``);
    * ``skipped``: ``[S, 2]`` pairs left out because ``b_i`` and ``b_j`` are (anti)parallel.
    """

    def __new__(cls, angles, values, pairs, skipped, epsilon: float, signed: bool):
        obj = super().__new__(cls, (angles, values, pairs))
        obj.skipped = skipped
        obj.epsilon = epsilon
        obj.signed = signed
        return obj

    def __getnewargs__(self):  # so copies and pickles rebuild the extra fields
        return (*self, self.skipped, self.epsilon, self.signed)

    angles = property(lambda self: self[0])
    values = property(lambda self: self[1])
    pairs = property(lambda self: self[2])

    def mean(self) -> torch.Tensor:
        """The curve averaged over planes, ``[A]``."""
        return self.values.mean(dim=0)

    def __repr__(self) -> str:
        kind = "signed " if self.signed else ""
        return (
            f"SRMResult({kind}values of shape {list(self.values.shape)} (planes x angles), "
            f"epsilon={self.epsilon:g}, skipped {self.skipped.shape[0]} pairs)"
        )


# --------------------------------------------------------------------------- validation helpers


def check_activations(activations) -> torch.Tensor:
    """The activations ``[N, n]`` (N >= 1, finite, floating; half precisions as float32), or raise naming them."""
    a = check_tensor("activations", activations, ndim=2, floating=True)
    if a.shape[0] < 1:
        raise ValueError("activations must hold at least one row (one activation vector per row)")
    if not bool(torch.isfinite(a).all()):
        raise ValueError("activations contain NaN or infinite values; SRM needs finite activation vectors")
    if a.dtype not in (torch.float32, torch.float64):  # half precisions: count in float32
        a = a.to(torch.float32)
    return a


def check_epsilon(epsilon) -> float:
    """The cone threshold ``epsilon`` as a float in [-1, 1], or raise naming it."""
    return check_float("epsilon", epsilon, minimum=-1.0, maximum=1.0)


def unit_basis(basis, n: int | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The basis rows normalised to unit length, after checking them (``[K, n]``)."""
    b = check_tensor("basis", basis, ndim=2, floating=True)
    if not bool(torch.isfinite(b).all()):
        raise ValueError("basis contains NaN or infinite values")
    if n is not None and b.shape[1] != n:
        raise ValueError(
            f"dimension mismatch: activations have n = {n} columns but basis has {b.shape[1]} "
            f"(basis must be [K, {n}], one privileged direction per row)"
        )
    b = b.to(dtype)
    norms = torch.linalg.vector_norm(b, dim=1, keepdim=True)
    zero = (norms[:, 0] == 0).nonzero().flatten().tolist()
    if zero:
        raise ValueError(f"basis rows {zero} are zero; every privileged direction needs a non-zero vector")
    return b / norms


def pair_indices(k: int, pairs: str = "perm") -> torch.Tensor:
    """All index pairs ``(i, j)``, ``i != j``, of ``k`` basis vectors: ``[P, 2]`` (int64).

    ``"perm"``: every ordered pair, row-major ``(0, 1), (0, 2), ..., (1, 0), ...``;
    ``"comb"``: ``i < j`` only.
    """
    k = check_int("k", k, minimum=0)
    mode = check_choice("pairs", pairs, PAIRS)
    i, j = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    keep = (i != j) if mode == "perm" else (i < j)
    return torch.stack([i[keep], j[keep]], dim=1)


def _warn_skipped(function: str, skipped: torch.Tensor) -> None:
    """Warn (at the caller of ``function``) that pairs of parallel or antipodal basis vectors span no plane."""
    if skipped.shape[0]:
        shown = ", ".join(f"({i}, {j})" for i, j in skipped[:6].tolist()) + (", ..." if skipped.shape[0] > 6 else "")
        warnings.warn(
            f"{function} skipped {skipped.shape[0]} pair(s) of parallel or antipodal basis vectors "
            f"(they span no plane): {shown}; see result.skipped",
            UserWarning,
            stacklevel=3,
        )


def plane_pairs(
    basis,
    pairs: str = "perm",
    *,
    parallel_tol: float = 1e-6,
    max_planes: int | None = None,
    seed: int = 0,
):
    """The planes SRM sweeps: ``(kept [P, 2], skipped [S, 2], gram [K, K])``.

    Pairs whose unit vectors satisfy ``1 - |b_i . b_j| < parallel_tol`` are
    (anti)parallel: they span no plane and are skipped. ``max_planes`` keeps a
    random subset (seeded by ``seed``, returned in the original order).
    """
    b = unit_basis(basis)
    mode = check_choice("pairs", pairs, PAIRS)
    parallel_tol = check_float("parallel_tol", parallel_tol, minimum=0.0, maximum=1.0)
    if max_planes is not None:
        max_planes = check_int("max_planes", max_planes, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    k = b.shape[0]
    if k < 2:
        raise ValueError(f"basis needs at least two usable vectors to span a plane, got {k} row(s)")
    gram = b @ b.T
    all_pairs = pair_indices(k, mode)
    g = gram[all_pairs[:, 0], all_pairs[:, 1]]
    degenerate = (1.0 - g.abs()) < parallel_tol
    kept, skipped = all_pairs[~degenerate], all_pairs[degenerate]
    if kept.shape[0] == 0:
        raise ValueError(
            "fewer than two usable basis vectors: every pair of basis rows is parallel or antipodal, so no plane is left"
        )
    if max_planes is not None and max_planes < kept.shape[0]:
        gen = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(kept.shape[0], generator=gen)[:max_planes].sort().values
        kept = kept[chosen]
    return kept, skipped, gram


def basis_projections(activations, basis, *, normalise: bool = True):
    """The one projection step shared by SRM and PPPM: ``(c [N, K], unit basis [K, n])``.

    ``c[m, k] = a_m . b_k_hat``, with the activation rows normalised first when
    ``normalise`` (zero rows stay zero), raw otherwise. Computed in the
    activations' dtype.
    """
    from isodl.core.ops import unit_rows

    a = check_activations(activations)
    normalise = check_bool("normalise", normalise)
    b = unit_basis(basis, a.shape[1], torch.float64).to(device=a.device, dtype=a.dtype)
    x = unit_rows(a) if normalise else a
    return x @ b.T, b


def in_plane_coordinates(c: torch.Tensor, gram: torch.Tensor, pairs: torch.Tensor):
    """In-plane coordinates ``(u, v)``, each ``[N, P]``, of the projected samples.

    ``u = c_i`` along ``b_i_hat`` and ``v = (c_j - g c_i) / sqrt(1 - g^2)`` along the
    Gram-Schmidt partner ``b_j_perp`` (``+b_j`` lies at polar angle
    ``arccos(g)`` in the ``(u, v)`` plane). ``c`` comes from
    :func:`basis_projections`, ``gram`` and ``pairs`` from :func:`plane_pairs`.
    """
    pairs = pairs.to(c.device)
    i, j = pairs[:, 0], pairs[:, 1]
    g = gram.to(c.device)[i, j].to(c.dtype)
    s = torch.sqrt(1.0 - g * g)
    u = c[:, i]
    v = (c[:, j] - g * u) / s
    return u, v


def srm_angles(n_angles: int) -> torch.Tensor:
    """The course's angle grid: ``n_angles`` distinct angles ``2 pi k / n_angles`` (float64)."""
    n_angles = check_int("n_angles", n_angles, minimum=2)
    return torch.arange(n_angles, dtype=torch.float64) * (2.0 * math.pi / n_angles)


# --------------------------------------------------------------------------- the cone count


def cone_count(activations, probes, epsilon: float) -> torch.Tensor:
    """Fraction of unit-normalised activations inside the cone around each probe.

    The spotlight function (the spec calls it the cone count): for each probe
    direction ``s`` (a row of ``probes``, ``[A, n]``, or a single ``[n]`` vector),
    ``(1 / N) * #{m : a_hat_m . s >= epsilon}``. Activation rows are normalised
    (zero rows stay zero, so they count exactly when ``epsilon <= 0``); probes
    are used as given (they should be unit vectors). Returns ``[A]`` (or a 0-d
    tensor for a single probe). Derived in notebook 02, where the learner
    writes it as an exercise.
    """
    from isodl.core.ops import unit_rows

    a = check_activations(activations)
    p = check_tensor("probes", probes, ndim=(1, 2), floating=True, finite=True)
    if p.shape[-1] != a.shape[1]:
        raise ValueError(f"dimension mismatch: activations have n = {a.shape[1]} columns, probes have {p.shape[-1]}")
    eps = check_epsilon(epsilon)
    single = p.ndim == 1
    p = p.reshape(-1, a.shape[1]).to(a.dtype)
    dots = unit_rows(a) @ p.T  # [N, A]
    out = (dots >= eps).to(a.dtype).mean(dim=0)
    return out[0] if single else out


# --------------------------------------------------------------------------- counting kernels


def _dense_counts(u, v, cos_t, sin_t, eps: float, signed: bool) -> torch.Tensor:
    """Counts [p, A] by evaluating u cos + v sin on every grid angle (chunked by the caller)."""
    vals = u.T[:, :, None] * cos_t + v.T[:, :, None] * sin_t  # [p, N, A]
    counts = (vals >= eps).sum(dim=1)
    if signed:
        counts = counts - ((-vals) >= eps).sum(dim=1)
    return counts


def _arc_tolerances(dtype: torch.dtype, a: int) -> tuple[float, float]:
    """``(tol_ratio, tol_grid)`` of the arc method's exact end-point check (see :func:`_arc_ends`)."""
    to_grid = a / (2.0 * math.pi)
    machine = torch.finfo(dtype).eps
    tol_ratio = 100.0 * math.sqrt(machine)
    tol_grid = min(0.5, 1000.0 * machine * to_grid * 2.0 * math.pi / math.sqrt(2.0 * tol_ratio))
    return tol_ratio, tol_grid


def _arc_ends(u, v, cos_t, sin_t, eps: float):
    """Per sample (any shape): the arc of grid angles where ``u cos(theta_k) + v sin(theta_k) >= eps``.

    Returns ``(lo, length, zero, near)``: first grid index (may be negative or
    past ``A``; taken modulo ``A``), number of grid points, whether the sample
    has no in-plane part, and whether its end points were checked exactly.

    Each sample with in-plane length rho > 0 and angle phi is inside the cone
    for |theta - phi| <= arccos(eps / rho): one arc of angles. Its first and
    last grid points come from ``ceil`` and ``floor`` in grid units. Where an
    end lies within rounding of a grid point (or the arc is nearly a point or
    the whole circle, where arccos is ill-conditioned), the ends are checked
    with the very formula the dense method uses (same cos/sin tables, same
    arithmetic) and moved by at most one step, so the two methods agree exactly.
    Elementwise: a sample's result does not depend on the other samples.
    """
    a = cos_t.shape[0]
    to_grid = a / (2.0 * math.pi)
    rho = torch.hypot(u, v)
    zero = rho == 0  # no in-plane part: the value is 0 at every angle
    ratio = torch.where(zero, 0.0, eps / rho)
    phi = torch.atan2(v, u).mul_(to_grid)  # in grid units, [-a/2, a/2]
    delta = torch.arccos(ratio.clamp(-1.0, 1.0)).mul_(to_grid)  # [0, a/2]
    lo_f, hi_f = phi - delta, phi + delta
    lo = torch.ceil(lo_f).to(torch.int64)
    hi = torch.floor(hi_f).to(torch.int64)
    # Samples whose end points need the exact check (rare for generic data in
    # float64). Rounding moves an end by about machine-eps / sin(delta) radians;
    # arcs with |ratio| near 1 (sin(delta) near 0) are always checked, and the
    # others when an end lies within a generous multiple of that error of a
    # grid point.
    tol_ratio, tol_grid = _arc_tolerances(u.dtype, a)
    near = ((lo_f - torch.round(lo_f)).abs_() < tol_grid) | ((hi_f - torch.round(hi_f)).abs_() < tol_grid)
    near |= (ratio.abs() - 1.0).abs_() < tol_ratio  # arcs of nearly zero length or nearly the whole circle
    near &= ~zero
    idx = near.nonzero(as_tuple=True)
    if idx[0].numel():
        cos5, sin5 = cos_t.repeat(5), sin_t.repeat(5)
        us, vs = u[idx], v[idx]
        ls, hs = lo[idx] + 2 * a, hi[idx] + 2 * a  # shifted so every table index below is >= 0

        def inside(k):
            return (us * cos5[k] + vs * sin5[k]) >= eps

        # Drop end points that fail the dense test, then add outside neighbours
        # that pass it (unless the arc already covers the whole circle).
        ls = torch.where((ls <= hs) & ~inside(ls), ls + 1, ls)
        hs = torch.where((hs >= ls) & ~inside(hs), hs - 1, hs)
        ls = torch.where((hs - ls + 1 < a) & inside(ls - 1), ls - 1, ls)
        hs = torch.where((hs - ls + 1 < a) & inside(hs + 1), hs + 1, hs)
        lo[idx], hi[idx] = ls - 2 * a, hs - 2 * a
    length = (hi - lo + 1).clamp_(min=0)
    return lo, length, zero, near


def _arc_classes(length, zero, a: int, eps: float):
    """Which samples' arcs cover every angle (``full``) and which only some (``partial``); zero rows count as 0 >= eps."""
    if 0.0 >= eps:
        full = (length >= a) | zero
        return full, ~full & (length > 0)
    full = (length >= a) & ~zero
    return full, ~full & (length > 0) & ~zero


def _arc_counts(u, v, cos_t, sin_t, eps: float) -> torch.Tensor:
    """Counts [p, A] of u cos(theta_k) + v sin(theta_k) >= eps, one arc per sample (``u, v``: [N, p])."""
    n, p = u.shape
    a = cos_t.shape[0]
    lo, length, zero, _ = _arc_ends(u, v, cos_t, sin_t, eps)
    full, partial = _arc_classes(length, zero, a, eps)
    # Difference array on a doubled grid (arcs may wrap past 2 pi), folded afterwards.
    width = 2 * a + 1
    rows, planes = partial.nonzero(as_tuple=True)
    begin = planes * width + torch.remainder(lo[rows, planes], a)
    diff = torch.bincount(begin, minlength=p * width) - torch.bincount(
        begin + length[rows, planes], minlength=p * width
    )
    run = diff.view(p, width).cumsum(dim=1)
    counts = run[:, :a] + run[:, a : 2 * a]
    return counts + full.sum(dim=0)[:, None]


def spotlight_resonance(
    activations,
    basis,
    epsilon: float,
    n_angles: int = 100,
    pairs: str = "perm",
    signed: bool = False,
    *,
    method: str = "arcs",
    max_planes: int | None = None,
    seed: int = 0,
    parallel_tol: float = 1e-6,
) -> SRMResult:
    """Spotlight Resonance Method: the fraction of activations in a cone swept around every basis plane.

    Parameters
    ----------
    activations : tensor or array [N, n]
        One activation vector per row; must be finite. Rows are normalised
        (zero rows stay zero).
    basis : tensor or array [K, n]
        The privileged directions, one per row, any non-zero lengths
        (normalised inside); non-orthogonal and over-complete bases are fine.
    epsilon : float in [-1, 1]
        Cone threshold: counted when ``a_hat . s >= epsilon``; the cone's
        half-angle is ``arccos(epsilon)`` (larger epsilon: narrower cone, finer
        angular resolution).
    n_angles : int >= 2
        Number of probe angles ``A``, on the grid ``2 pi k / A``.
    pairs : "perm" or "comb"
        Ordered pairs (K (K - 1) planes, each swept from both of its vectors)
        or unordered pairs ``i < j``.
    signed : bool
        Count +1 inside the cone around ``s`` and -1 inside the cone around
        ``-s``; values lie in [-1, 1] and vanish for a centrally symmetric cloud.
    method : "arcs" or "dense"
        How the exact in-plane formula is evaluated (identical results): solve
        for the arc of angles per sample (fast), or evaluate every grid angle.
    max_planes : int, optional
        Keep a random (seeded) subset of planes.
    seed : int
        Seed of that subset.
    parallel_tol : float
        Pairs with ``1 - |b_i . b_j| < parallel_tol`` are skipped as (anti)parallel.

    Returns
    -------
    SRMResult
        ``angles, values, pairs = spotlight_resonance(...)``: ``[A]`` angles,
        ``[P, A]`` values (float64) and ``[P, 2]`` basis indices; the result
        also has ``.skipped`` (``[S, 2]`` pairs left out, with a warning when
        there are any) and ``.mean()``.

    Sign convention: the probe starts at ``b_i`` and turns towards ``+b_j``
    (``+b_j`` at ``pi / 2`` for an orthonormal pair); the author's reference code
    turns the other way, ``theta -> 2 pi - theta`` (see
    :func:`to_reference_orientation`).
    """
    a = check_activations(activations)
    eps = check_epsilon(epsilon)
    angles = srm_angles(n_angles)
    mode = check_choice("pairs", pairs, PAIRS)
    signed = check_bool("signed", signed)
    method = check_choice("method", method, METHODS)
    unit_basis(basis, a.shape[1])  # dimension and value checks before anything else
    kept, skipped, gram = plane_pairs(basis, mode, parallel_tol=parallel_tol, max_planes=max_planes, seed=seed)
    _warn_skipped("spotlight_resonance", skipped)
    c, _ = basis_projections(a, basis)
    dtype = a.dtype
    cos_t = torch.cos(angles).to(dtype).to(c.device)  # tables made on the CPU: the same on every device
    sin_t = torch.sin(angles).to(dtype).to(c.device)
    n, num_a, num_p = a.shape[0], angles.shape[0], kept.shape[0]
    counts = torch.empty(num_p, num_a, dtype=torch.int64, device=c.device)
    budget = _ARC_CHUNK if method == "arcs" else _DENSE_CHUNK
    per_plane = n if method == "arcs" else n * num_a
    chunk = max(1, budget // per_plane)
    for start in range(0, num_p, chunk):
        sel = kept[start : start + chunk]
        u, v = in_plane_coordinates(c, gram, sel)
        if method == "dense":
            counts[start : start + chunk] = _dense_counts(u, v, cos_t, sin_t, eps, signed)
        else:
            part = _arc_counts(u, v, cos_t, sin_t, eps)
            if signed:
                part = part - _arc_counts(-u, -v, cos_t, sin_t, eps)
            counts[start : start + chunk] = part
    values = counts.to(torch.float64) / n
    return SRMResult(angles, values, kept, skipped, eps, signed)


# --------------------------------------------------------------------------- streaming reductions

#: Scores that rank planes for :attr:`SRMSummary.top` (see :func:`spotlight_resonance_stream`).
SCORES = ("abs_harmonic", "harmonic", "max", "contrast", "range")

# Default working-memory budget of one chunk of :func:`spotlight_resonance_stream`, in bytes.
_STREAM_BYTES = 1 << 28


def stream_plane_bytes(n_samples: int, n_angles: int) -> int:
    """Working memory one plane of a :func:`spotlight_resonance_stream` chunk may need, in bytes: ``160 N + 64 A``.

    A worst-case count (every sample inside some cone, as when
    ``epsilon <= 0``): the in-plane coordinates, the arc of each sample and
    its index (about 20 numbers of 8 bytes per sample), and the curve, its
    difference array and its summaries (about 8 numbers per angle). For
    ``epsilon > 0`` most samples never reach a cone and are dropped after one
    cheap test, so the real figure is lower.
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    n_angles = check_int("n_angles", n_angles, minimum=1)
    return 160 * n_samples + 64 * n_angles


def srm_harmonics(values, order: int = 4) -> torch.Tensor:
    """The ``order``-th circular harmonic of every curve: ``[..., A]`` -> ``[...]`` (float64).

    ``sum_k v_k cos(order theta_k) / sum_k v_k`` on the grid ``theta_k = 2 pi k / A``:
    the definition of :func:`isodl.symmetry.representations.srm_harmonic`,
    vectorised over planes (equal to it up to rounding). ``nan`` where a
    curve sums to zero. Integer counts are accepted (the ``1 / N`` cancels).
    With ``order = 4`` and an orthonormal basis it is +1 when the counted
    samples sit on the axes, -1 when they sit on the diagonals and about 0
    for a flat curve.
    """
    v = check_tensor("values", values, ndim=(1, 2))
    if v.dtype == torch.bool or v.is_complex():
        raise TypeError(f"values must be real numbers or integer counts, got dtype {v.dtype}")
    order = check_int("order", order, minimum=0)
    table = torch.cos(order * srm_angles(v.shape[-1])).to(v.device)
    return _harmonics(v, table)


def _harmonics(v: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    f = v.to(torch.float64)
    total = f.sum(dim=-1)
    h = (f * table).sum(dim=-1) / total  # row by row, the same however many rows (a matmul is not)
    return torch.where(total == 0, torch.full_like(h, float("nan")), h)


@dataclass
class SRMSummary:
    """What :func:`spotlight_resonance_stream` keeps of an SRM run: reductions, not the ``[P, A]`` curves.

    Per plane (arrays of length ``P``, in the order of ``pairs``, which is the
    row order :func:`spotlight_resonance` would use) the integer counts
    ``N * SRM`` are summarised exactly:

    * ``total``: sum over the angles of the counts; ``max_count``, ``min_count``:
      the curve's largest and smallest count; ``peak_index``: the first grid
      index of the largest count (``peak_angle`` is its angle);
    * ``harmonic``: the ``order``-th circular harmonic (:func:`srm_harmonics`);

    Over planes: ``count_sum`` ``[A]``, the counts summed over every plane
    (exact integers); ``mean`` is the mean curve ``count_sum / (N P)``.

    Kept curves (fractions, float64, ``[k, A]``): ``top_values`` for the
    planes ``top`` (indices into ``pairs``) ranked by ``score`` (largest
    first, ties to the lower index), and ``kept_values`` for the planes
    ``kept`` that were asked for with ``keep_planes``.

    Bookkeeping: ``mirrored`` planes were filled in from their partner by the
    exact reflection (see :func:`spotlight_resonance_stream`);
    ``chunk_planes`` is the bound on curves held at once and
    ``largest_chunk`` the most any chunk held; ``n_chunks`` chunks were run.
    """

    angles: torch.Tensor
    pairs: torch.Tensor
    skipped: torch.Tensor
    epsilon: float
    signed: bool
    n_samples: int
    order: int
    count_sum: torch.Tensor
    total: torch.Tensor
    max_count: torch.Tensor
    min_count: torch.Tensor
    peak_index: torch.Tensor
    harmonic: torch.Tensor
    score: str
    top: torch.Tensor
    top_values: torch.Tensor
    kept: torch.Tensor
    kept_values: torch.Tensor
    mirrored: int
    chunk_planes: int
    largest_chunk: int
    n_chunks: int

    @property
    def n_planes(self) -> int:
        return int(self.pairs.shape[0])

    @property
    def mean(self) -> torch.Tensor:
        """The curve averaged over planes, ``[A]`` (float64): ``SRMResult.mean()`` up to rounding."""
        return self.count_sum.to(torch.float64) / (self.n_samples * self.n_planes)

    @property
    def maximum(self) -> torch.Tensor:
        """Largest value of each plane's curve (a fraction), ``[P]``."""
        return self.max_count.to(torch.float64) / self.n_samples

    @property
    def minimum(self) -> torch.Tensor:
        """Smallest value of each plane's curve (a fraction), ``[P]``."""
        return self.min_count.to(torch.float64) / self.n_samples

    @property
    def contrast(self) -> torch.Tensor:
        """``max / min`` of each plane's curve, ``[P]``: ``inf`` where the minimum is 0, ``nan`` for an all-zero curve."""
        return self.max_count.to(torch.float64) / self.min_count.to(torch.float64)

    @property
    def peak_angle(self) -> torch.Tensor:
        """Angle of each plane's (first) largest value, ``[P]``."""
        return self.angles[self.peak_index]

    @property
    def top_pairs(self) -> torch.Tensor:
        """Basis indices ``(i, j)`` of the top planes, ``[k, 2]``."""
        return self.pairs[self.top.to(self.pairs.device)]

    def __repr__(self) -> str:
        kind = "signed " if self.signed else ""
        return (
            f"SRMSummary({kind}SRM of {self.n_samples} samples over {self.n_planes} planes x "
            f"{self.angles.shape[0]} angles, epsilon={self.epsilon:g}; {self.mirrored} planes mirrored, "
            f"top {self.top.shape[0]} by {self.score}, {self.n_chunks} chunks of <= {self.chunk_planes} planes)"
        )


def _chunk_scores(score: str, total, mx, mn, h) -> torch.Tensor:
    if score == "abs_harmonic":
        s = h.abs()
    elif score == "harmonic":
        s = h
    elif score == "max":
        s = mx.to(torch.float64)
    elif score == "contrast":
        s = mx.to(torch.float64) / mn.to(torch.float64)
    else:  # "range"
        s = (mx - mn).to(torch.float64)
    return torch.where(torch.isnan(s), torch.full_like(s, -math.inf), s)


def _tally(plane, lo, length, zero, p: int, a: int, eps: float) -> torch.Tensor:
    """Counts ``[p, a]`` (int64) from per-sample arcs of :func:`_arc_ends`; ``plane[s]`` is sample s's plane."""
    full, partial = _arc_classes(length, zero, a, eps)
    # Difference array on the circle: +1 where an arc begins, -1 after it ends;
    # an arc that wraps past 2 pi also starts again at index 0.
    width = a + 1
    pl = plane[partial] * width
    begin = torch.remainder(lo[partial], a)
    end = begin + length[partial]
    wraps = end > a
    up = torch.cat([pl + begin, pl[wraps]])
    down = pl + torch.where(wraps, end - a, end)
    size = p * width
    diff = torch.bincount(up, minlength=size) - torch.bincount(down, minlength=size)
    counts = diff.view(p, width)[:, :a].cumsum(dim=1)
    if bool(full.any()):
        counts += torch.bincount(plane[full], minlength=p)[:, None]
    return counts


def _candidates(sparse, i: torch.Tensor, j: torch.Tensor):
    """``(plane, sample)`` pairs with the sample in the list of ``b_i`` or of ``b_j`` (each pair once)."""
    member, found, start, size = sparse

    def ragged(k):
        lengths = size[k]
        plane = torch.repeat_interleave(torch.arange(k.shape[0], device=k.device), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        offset = torch.arange(plane.shape[0], device=k.device) - first[plane]
        return plane, found.index_select(0, start[k].index_select(0, plane) + offset)

    r1, m1 = ragged(i)
    r2, m2 = ragged(j)
    flat = member.view(-1)
    new = (~flat.index_select(0, i.index_select(0, r2) * member.shape[1] + m2)).nonzero().flatten()
    return torch.cat([r1, r2.index_select(0, new)]), torch.cat([m1, m2.index_select(0, new)])


def _plan_mirrors(kept: torch.Tensor, gram: torch.Tensor, k: int, tol: float):
    """``(primary [Q], partner [Q])``: planes to sweep, each with the index of the plane it mirrors (or -1)."""
    i, j = kept[:, 0], kept[:, 1]
    key = i * k + j
    order = torch.argsort(key)
    rev = j * k + i
    pos = torch.searchsorted(key[order], rev).clamp_(max=key.shape[0] - 1)
    partner = order[pos]
    found = key[partner] == rev
    small = (gram[i.to(gram.device), j.to(gram.device)].abs() <= tol).to(kept.device)
    use = found & (i < j) & small
    covered = torch.zeros(kept.shape[0], dtype=torch.bool)
    covered[partner[use]] = True
    primary = (~covered).nonzero().flatten()
    return primary, torch.where(use, partner, torch.full_like(partner, -1))[primary]


def spotlight_resonance_stream(
    activations,
    basis,
    epsilon: float,
    n_angles: int = 100,
    pairs: str = "perm",
    signed: bool = False,
    *,
    order: int = 4,
    top_k: int = 16,
    score: str = "abs_harmonic",
    keep_planes=None,
    chunk_planes: int | None = None,
    max_bytes: int | None = None,
    mirror: bool = True,
    max_planes: int | None = None,
    seed: int = 0,
    parallel_tol: float = 1e-6,
    progress=None,
) -> SRMSummary:
    """SRM reduced while it is computed: mean curve, per-plane summaries and the top planes, in bounded memory.

    The same counts as :func:`spotlight_resonance` (identical integers, plane
    by plane), but the ``[P, A]`` array of curves is never built: planes are
    swept in chunks, and each chunk's curves are reduced to the
    :class:`SRMSummary` fields and dropped. Use it when ``P A`` is large,
    e.g. a 768-dimensional layer has ``P = 589,056`` ordered planes.

    Parameters
    ----------
    activations, basis, epsilon, n_angles, pairs, signed, max_planes, seed, parallel_tol
        As in :func:`spotlight_resonance` (same planes, in the same order).
    order : int >= 0
        Order of the circular harmonic kept per plane (4: axes against diagonals).
    top_k : int >= 0
        How many planes' full curves to keep, ranked by ``score``.
    score : one of :data:`SCORES`
        ``"abs_harmonic"`` (``|harmonic|``, the default), ``"harmonic"``,
        ``"max"`` (largest count), ``"contrast"`` (max / min) or ``"range"``
        (max - min). Ties go to the lower plane index; ``nan`` ranks last.
    keep_planes : int indices into the planes, optional
        Planes whose full curves to keep as well (``kept_values``, rows in
        the order of ``kept``: sorted, each once), e.g. to check a sample of
        planes against :func:`spotlight_resonance`.
    chunk_planes : int >= 1, optional
        **The memory bound**: at most this many plane curves (swept or
        mirrored) exist at any time. Default: ``max_bytes // stream_plane_bytes(N, A)``.
    max_bytes : int, optional
        Working-memory budget of one chunk (default 256 MiB), used to choose
        ``chunk_planes``; give one of the two.
    mirror : bool
        Use the exact reflection between a plane and its reverse (below).
    progress : callable, optional
        Called after each chunk as ``progress(planes_done, planes_total)``.

    Memory: one chunk needs at most about ``chunk_planes * (160 N + 64 A)``
    bytes (:func:`stream_plane_bytes`; far less for ``epsilon > 0``); the
    result holds ``5 P`` numbers (40 bytes a plane), ``A`` counts and
    ``(top_k + len(keep_planes)) A`` curve values; the projections
    ``c = A_hat B_hat^T`` take ``2 N K`` numbers.

    Symmetry. For an orthonormal pair ``s_ji(theta) = cos(theta) b_j + sin(theta) b_i
    = s_ij(pi / 2 - theta)``, so on the grid the curve of ``(j, i)`` at index
    ``k`` is the curve of ``(i, j)`` at ``(A / 4 - k) mod A``. When ``A`` is a
    multiple of 4, both orientations are among the planes and
    ``|b_i . b_j|`` is far below the arcs' rounding tolerance, only ``(i, j)``
    (``i < j``) is swept and ``(j, i)`` is filled in by that reflection. The
    reflection is exact for every sample except those whose arc ends lie
    within rounding of a grid point (the few the arc method checks
    exactly); those samples are recomputed in the ``(j, i)`` orientation, so
    the counts equal the direct computation's. A non-orthogonal pair
    (``s_ji(theta) = s_ij(alpha - theta)``, off the grid) is swept in both
    orientations.

    Tensors stay on the activations' device (the angle tables are made on the
    CPU, as :func:`spotlight_resonance` makes them, and copied there).
    Samples that no cone can reach (in-plane length below ``epsilon``, with a
    margin) are dropped before the arcs are solved; this changes no count.
    """
    a = check_activations(activations)
    eps = check_epsilon(epsilon)
    angles = srm_angles(n_angles)
    mode = check_choice("pairs", pairs, PAIRS)
    signed = check_bool("signed", signed)
    order = check_int("order", order, minimum=0)
    top_k = check_int("top_k", top_k, minimum=0)
    score = check_choice("score", score, SCORES)
    mirror = check_bool("mirror", mirror)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable progress(done, total) or None, got {type(progress).__name__}")
    if chunk_planes is not None and max_bytes is not None:
        raise ValueError("give chunk_planes or max_bytes, not both (chunk_planes is the bound; max_bytes chooses it)")
    n, num_a = a.shape[0], angles.shape[0]
    if chunk_planes is None:
        budget = _STREAM_BYTES if max_bytes is None else check_int("max_bytes", max_bytes, minimum=1)
        chunk_planes = max(1, budget // stream_plane_bytes(n, num_a))
    chunk_planes = check_int("chunk_planes", chunk_planes, minimum=1)
    unit_basis(basis, a.shape[1])  # dimension and value checks before anything else
    kept, skipped, gram = plane_pairs(basis, mode, parallel_tol=parallel_tol, max_planes=max_planes, seed=seed)
    num_p = kept.shape[0]
    if keep_planes is None:
        keep = torch.zeros(0, dtype=torch.int64)
    else:
        if isinstance(keep_planes, (int, list, tuple, range)):
            keep_planes = torch.as_tensor(keep_planes)
        keep = check_tensor("keep_planes", keep_planes, ndim=(0, 1))
        if keep.is_floating_point() or keep.dtype == torch.bool or keep.is_complex():
            raise TypeError(f"keep_planes must hold integer plane indices, got dtype {keep.dtype}")
        keep = torch.unique(keep.reshape(-1).to(kept.device, torch.int64))  # sorted, once each
        bad = keep[(keep < 0) | (keep >= num_p)]
        if bad.numel():
            raise ValueError(f"keep_planes must index the {num_p} planes (0 .. {num_p - 1}), got {bad[:5].tolist()}")
    _warn_skipped("spotlight_resonance_stream", skipped)

    c, _ = basis_projections(a, basis)
    dev, dtype = c.device, c.dtype
    ct = c.T.contiguous()  # [K, N]: one contiguous row per basis vector
    flat_ct = ct.view(-1)
    del c
    gram = gram.to(dev)
    cos_t = torch.cos(angles).to(dtype).to(dev)  # the tables of spotlight_resonance, on the device
    sin_t = torch.sin(angles).to(dtype).to(dev)
    table = torch.cos(order * angles).to(dev)

    # Planes to sweep, each with the plane its reflection fills in (-1: none).
    _, tol_grid = _arc_tolerances(dtype, num_a)
    mirror_tol = 0.01 * tol_grid * 2.0 * math.pi / num_a  # shift of the arc ends, far below the checked band
    if mirror and num_a % 4 == 0 and chunk_planes >= 2:
        primary, partner = _plan_mirrors(kept, gram, ct.shape[0], mirror_tol)
    else:
        primary, partner = torch.arange(num_p), torch.full((num_p,), -1, dtype=torch.int64)
    cost = (1 + (partner >= 0).to(torch.int64)).cumsum(0)

    # Samples no cone can reach: in-plane length below epsilon (margin far above rounding).
    margin = max(1e-6, 1000.0 * torch.finfo(dtype).eps)
    threshold = eps * eps * (1.0 - margin) if eps > 0 else None
    sq = ct * ct if threshold is not None else None
    sparse = None
    if threshold is not None and num_p:
        # A sample reaches a cone of plane (i, j) only if c_i^2 or c_j^2 is at least
        # level = threshold (1 - |g|) / 2 (rho^2 <= (c_i^2 + c_j^2) / (1 - |g|)). When few
        # samples pass that level, list them per basis vector and visit only those.
        gmax = float(gram[kept[:, 0].to(dev), kept[:, 1].to(dev)].abs().max())
        level = threshold * (1.0 - gmax) / 2.0 * (1.0 - margin)
        member = sq >= level  # [K, N]
        sizes = member.sum(dim=1)
        if 2.0 * float(sizes.to(torch.float64).mean()) <= n / 4.0:
            found = member.nonzero(as_tuple=True)[1]  # samples, grouped by basis vector
            sparse = (member, found, sizes.cumsum(0) - sizes, sizes)

    kw = dict(dtype=torch.int64, device=dev)
    count_sum = torch.zeros(num_a, **kw)
    total = torch.zeros(num_p, **kw)
    max_count = torch.zeros(num_p, **kw)
    min_count = torch.zeros(num_p, **kw)
    peak_index = torch.zeros(num_p, **kw)
    harmonic = torch.zeros(num_p, dtype=torch.float64, device=dev)
    keep_slot = torch.full((num_p,), -1, **kw)
    keep_slot[keep.to(dev)] = torch.arange(keep.shape[0], **kw)
    kept_counts = torch.zeros(keep.shape[0], num_a, **kw)
    top = torch.zeros(0, **kw)
    top_score = torch.zeros(0, dtype=torch.float64, device=dev)
    top_counts = torch.zeros(0, num_a, **kw)

    done, n_chunks, largest, start, q = 0, 0, 0, 0, primary.shape[0]
    while start < q:
        base = int(cost[start - 1]) if start else 0
        stop = max(start + 1, int(torch.searchsorted(cost, base + chunk_planes, right=True)))
        plan = primary[start:stop]  # plane bookkeeping lives with the pairs (CPU); the data stays on dev
        prim, part = plan.to(dev), partner[start:stop].to(dev)
        i, j = kept[plan, 0].to(dev), kept[plan, 1].to(dev)
        start = stop
        p = prim.shape[0]
        g = gram[i, j].to(dtype)
        s = torch.sqrt(1.0 - g * g)  # in_plane_coordinates' arithmetic, term by term
        if sparse is not None:
            rows, cols = _candidates(sparse, i, j)
            us = flat_ct.index_select(0, i.index_select(0, rows) * n + cols)
            vs = (flat_ct.index_select(0, j.index_select(0, rows) * n + cols) - g[rows] * us) / s[rows]
            reach = (us * us + vs * vs >= threshold).nonzero().flatten()
            rows, cols = rows.index_select(0, reach), cols.index_select(0, reach)
            us, vs = us.index_select(0, reach), vs.index_select(0, reach)
        elif threshold is not None and not bool(g.any()):
            rows, cols = (sq[i] + sq[j] >= threshold).nonzero(as_tuple=True)
            us = ct[i[rows], cols]
            vs = (ct[j[rows], cols] - g[rows] * us) / s[rows]
        else:
            u_all = ct[i]
            v_all = (ct[j] - g[:, None] * u_all) / s[:, None]
            if threshold is not None:
                rows, cols = (u_all * u_all + v_all * v_all >= threshold).nonzero(as_tuple=True)
                us, vs = u_all[rows, cols], v_all[rows, cols]
            else:
                rows = torch.arange(p, device=dev).repeat_interleave(n)
                cols = torch.arange(n, device=dev).repeat(p)
                us, vs = u_all.reshape(-1), v_all.reshape(-1)
            del u_all, v_all
        mpos = (part >= 0).nonzero().flatten()
        direct = torch.zeros(p, num_a, **kw)
        mirrored = torch.zeros(mpos.shape[0], num_a, **kw)
        for sign in (1, -1) if signed else (1,):
            su, sv = (us, vs) if sign > 0 else (-us, -vs)
            lo, length, zero, near = _arc_ends(su, sv, cos_t, sin_t, eps)
            counts = _tally(rows, lo, length, zero, p, num_a, eps)
            direct += sign * counts
            if mpos.shape[0] == 0:
                continue
            corr = None
            sel = (near & (part[rows] >= 0)).nonzero().flatten()
            if sel.numel():
                # Samples checked exactly: drop their reflected arcs, add their arcs swept from b_j.
                r, m = rows[sel], cols[sel]
                jr, ir = j[r], i[r]
                g2 = gram[jr, ir].to(dtype)
                s2 = torch.sqrt(1.0 - g2 * g2)
                u2 = ct[jr, m]
                v2 = (ct[ir, m] - g2 * u2) / s2
                if sign < 0:
                    u2, v2 = -u2, -v2
                lo2, len2, zero2, _ = _arc_ends(u2, v2, cos_t, sin_t, eps)
                lo_ref = num_a // 4 - lo[sel] - length[sel] + 1
                corr = _tally(r, lo2, len2, zero2, p, num_a, eps) - _tally(
                    r, lo_ref, length[sel], zero[sel], p, num_a, eps
                )
            block = torch.roll(counts.index_select(0, mpos).flip(1), num_a // 4 + 1, 1)  # index k <- (A/4 - k) mod A
            if corr is not None:
                block += corr[mpos]
            mirrored += sign * block
        del us, vs, rows, cols
        curves = torch.cat([direct, mirrored])
        idx = torch.cat([prim, part[mpos]])
        tot = curves.sum(dim=1)
        pk = torch.argmax(curves, dim=1)
        mx = curves.gather(1, pk[:, None])[:, 0]
        mn = curves.amin(dim=1)
        h = _harmonics(curves, table)
        total[idx], max_count[idx], min_count[idx], peak_index[idx], harmonic[idx] = tot, mx, mn, pk, h
        count_sum += curves.sum(dim=0)
        slot = keep_slot[idx]
        want = slot >= 0
        if bool(want.any()):
            kept_counts[slot[want]] = curves[want]
        if top_k:
            cand = torch.cat([top, idx])
            cand_score = torch.cat([top_score, _chunk_scores(score, tot, mx, mn, h)])
            by_index = torch.argsort(cand)
            best = by_index[torch.argsort(-cand_score[by_index], stable=True)][:top_k]
            top_counts = torch.cat([top_counts, curves])[best]
            top, top_score = cand[best], cand_score[best]
        n_chunks += 1
        largest = max(largest, int(curves.shape[0]))
        done += int(curves.shape[0])
        if progress is not None:
            progress(done, num_p)

    return SRMSummary(
        angles=angles.to(dev),
        pairs=kept,
        skipped=skipped,
        epsilon=eps,
        signed=signed,
        n_samples=int(n),
        order=order,
        count_sum=count_sum,
        total=total,
        max_count=max_count,
        min_count=min_count,
        peak_index=peak_index,
        harmonic=harmonic,
        score=score,
        top=top,
        top_values=top_counts.to(torch.float64) / n,
        kept=keep.to(dev),
        kept_values=kept_counts.to(torch.float64) / n,
        mirrored=int((partner >= 0).sum()),
        chunk_planes=int(chunk_planes),
        largest_chunk=int(largest),
        n_chunks=int(n_chunks),
    )


def rotation_matrix_srm(
    activations,
    basis,
    epsilon: float,
    n_angles: int = 100,
    pairs: str = "perm",
    signed: bool = False,
    *,
    parallel_tol: float = 1e-6,
) -> SRMResult:
    """SRM computed the slow, literal way: a full ``n x n`` rotation matrix for every plane and angle.

    Written for notebook 02 and ``benchmarks/bench_srm.py`` as the reference
    the fast method is checked and timed against. It follows the cost
    structure of the author's reference code (in NumPy): for each plane it
    eigendecomposes the rotation generator, builds ``A`` rotation matrices
    ``R(theta) = U diag(exp(i theta mu)) U^H`` and contracts activations,
    matrices and the first basis vector in one unoptimised ``einsum``
    (``O(N A n^2)`` per plane). Unlike the reference code it eigendecomposes
    the Hermitian matrix ``i G`` (unit-speed generator
    ``G = (b_j b_i^T - b_i b_j^T) / sin(alpha)``), whose eigenvectors are
    orthonormal, so every matrix is a true rotation even for non-orthogonal
    pairs. Uses the course's orientation and semantics; same output as
    :func:`spotlight_resonance`.
    """
    from isodl.core.ops import unit_rows

    a = check_activations(activations)
    eps = check_epsilon(epsilon)
    angles = srm_angles(n_angles)
    mode = check_choice("pairs", pairs, PAIRS)
    signed = check_bool("signed", signed)
    b = unit_basis(basis, a.shape[1]).numpy()
    kept, skipped, _ = plane_pairs(basis, mode, parallel_tol=parallel_tol)
    x = unit_rows(a.to(torch.float64)).numpy()
    theta = angles.numpy()
    values = np.empty((kept.shape[0], theta.shape[0]))
    for row, (i, j) in enumerate(kept.tolist()):
        g = float(b[i] @ b[j])
        gen = (np.outer(b[j], b[i]) - np.outer(b[i], b[j])) / math.sqrt(1.0 - g * g)
        mu, vecs = np.linalg.eigh(1j * gen)  # i G is Hermitian: real mu, unitary vecs; G = -i (i G)
        phase = np.exp(-1j * theta[:, None] * mu[None, :])  # exp(theta G) has eigenvalues exp(-i theta mu)
        rot = np.einsum("ik,ak,jk->aij", vecs, phase, vecs.conj()).real  # [A, n, n]
        dots = np.einsum("mi,aij,j->ma", x, rot, b[i])  # [N, A], unoptimised like the reference
        count = (dots >= eps).sum(axis=0)
        if signed:
            count = count - (-dots >= eps).sum(axis=0)
        values[row] = count / x.shape[0]
    return SRMResult(angles, torch.from_numpy(values), kept, skipped, eps, signed)


def to_reference_orientation(values) -> torch.Tensor:
    """Re-order SRM curves ``[..., A]`` from the course's sweep to the author's (``theta -> 2 pi - theta``).

    The course's probe turns from ``b_i`` towards ``+b_j``; the author's
    reference code turns towards ``-b_j``. On the grid ``2 pi k / A`` the mirror
    maps index ``k`` to ``(A - k) mod A``. Applying it twice gives the input back.
    """
    v = check_tensor("values", values, ndim=(1, 2))
    a = v.shape[-1]
    idx = torch.remainder(-torch.arange(a), a)
    return v[..., idx]


# --------------------------------------------------------------------------- isotropic baseline


def cap_fraction(n: int, epsilon: float) -> float:
    """``C_n(epsilon)``: the fraction of the unit sphere in ``n`` dimensions with ``x . s >= epsilon``.

    The flat SRM level of any isotropic distribution (every plane, every angle):
    ``C_n(eps) = 1/2 I_{1 - eps^2}((n - 1)/2, 1/2)`` for ``eps >= 0`` (a regularised
    incomplete beta function) and ``1 - C_n(-eps)`` for ``eps < 0``. For
    ``n = 2`` it is ``arccos(eps) / pi``.
    """
    from scipy.special import betainc

    n = check_int("n", n, minimum=2)
    eps = check_epsilon(epsilon)
    e = abs(eps)
    upper = 0.5 * float(betainc((n - 1) / 2.0, 0.5, 1.0 - e * e))
    return upper if eps >= 0 else 1.0 - upper


def binomial_std(fraction: float, n_samples: int) -> float:
    """Standard deviation of a fraction estimated from ``n_samples`` independent draws: ``sqrt(p (1 - p) / N)``."""
    p = check_float("fraction", fraction, minimum=0.0, maximum=1.0)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    return math.sqrt(p * (1.0 - p) / n_samples)


# --------------------------------------------------------------------------- Thomson bases


def thomson_energy(points) -> float:
    """Coulomb energy ``sum_{i < j} 1 / |b_i - b_j|`` of unit vectors (rows, normalised first)."""
    b = unit_basis(points)
    d2 = (2.0 - 2.0 * (b @ b.T)).clamp_min(0.0)
    iu = torch.triu_indices(b.shape[0], b.shape[0], 1)
    return float(d2[iu[0], iu[1]].rsqrt().sum())


def _tangent_force(x: torch.Tensor):
    """Minus the gradient of the Coulomb energy projected onto each point's tangent space, and the full force's size."""
    d2 = (2.0 - 2.0 * (x @ x.T)).clamp_min(1e-300)
    inv3 = d2**-1.5
    inv3.fill_diagonal_(0.0)
    force = x * inv3.sum(dim=1, keepdim=True) - inv3 @ x
    size = float(torch.linalg.vector_norm(force, dim=1).mean())
    return force - (force * x).sum(dim=1, keepdim=True) * x, size


@functools.lru_cache(maxsize=32)
def _thomson(k: int, n: int, seed: int, max_iter: int, tol: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(k, n, generator=gen, dtype=torch.float64)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True)
    force, size = _tangent_force(x)
    lr = 1e-2 / k
    for _ in range(max_iter):
        # Converged when the tangential (energy-lowering) part of the force is a
        # tiny fraction of the whole force, most of which pushes along the radius.
        if float(torch.linalg.vector_norm(force, dim=1).max()) <= tol * size:
            break
        new = x + lr * force
        new = new / torch.linalg.vector_norm(new, dim=1, keepdim=True)
        new_force, size = _tangent_force(new)
        # Barzilai-Borwein step on the sphere: s = step taken, y = change of the gradient.
        s = new - x
        y = force - new_force
        sy = float((s * y).sum())
        lr = min(float((s * s).sum()) / sy, 1.0) if sy > 0 else min(2.0 * lr, 1.0)
        x, force = new, new_force
    return x


def thomson_basis(
    k: int, n: int, seed: int = 0, *, max_iter: int = 2000, tol: float = 1e-13, dtype=torch.float64
) -> torch.Tensor:
    """``k`` unit vectors in ``n`` dimensions that (locally) minimise the Coulomb energy, ``[k, n]``.

    The Thomson problem on the sphere ``S^(n-1)``: points repel with energy
    ``sum_{i<j} 1 / |b_i - b_j|`` (the plain Coulomb energy, the course's
    decision). Solved by projected gradient descent with Barzilai-Borwein steps
    from a seeded random start, renormalising every step; the same ``seed``
    gives the same basis (results are cached). Known minimisers it recovers:

    * ``k <= n + 1``: a regular simplex, all pairwise cosines ``-1 / (k - 1)``
      (``-1 / n`` for ``k = n + 1``);
    * ``k = 2 n``: the cross-polytope, ``n`` antipodal pairs of a rotated
      orthonormal frame (SRM skips the antipodal pairs);
    * larger ``k``: an irregular, nearly tight frame (a local minimum, which
      depends on the seed).

    Stops when the largest tangential force falls below ``tol`` times the mean
    size of the whole force, or after ``max_iter`` steps.
    """
    k = check_int("k", k, minimum=1)
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    max_iter = check_int("max_iter", max_iter, minimum=0)
    tol = check_float("tol", tol, minimum=0.0)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype such as torch.float64, got {dtype!r}")
    if n == 1 and k > 2:
        raise ValueError(f"in n = 1 dimension there are only two unit vectors, so k must be <= 2, got {k}")
    return _thomson(k, n, seed, max_iter, tol).clone().to(dtype)

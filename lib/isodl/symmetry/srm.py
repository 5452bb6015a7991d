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

The projection step (:func:`basis_projections`, :func:`in_plane_coordinates`)
and the argument checks (:func:`check_activations`, :func:`check_epsilon`) are
shared with :mod:`isodl.symmetry.pppm`.
"""

from __future__ import annotations

import functools
import math
import warnings

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
    b = unit_basis(basis, a.shape[1], torch.float64).to(a.dtype)
    x = unit_rows(a) if normalise else a
    return x @ b.T, b


def in_plane_coordinates(c: torch.Tensor, gram: torch.Tensor, pairs: torch.Tensor):
    """In-plane coordinates ``(u, v)``, each ``[N, P]``, of the projected samples.

    ``u = c_i`` along ``b_i_hat`` and ``v = (c_j - g c_i) / sqrt(1 - g^2)`` along the
    Gram-Schmidt partner ``b_j_perp`` (``+b_j`` lies at polar angle
    ``arccos(g)`` in the ``(u, v)`` plane). ``c`` comes from
    :func:`basis_projections`, ``gram`` and ``pairs`` from :func:`plane_pairs`.
    """
    i, j = pairs[:, 0], pairs[:, 1]
    g = gram[i, j].to(c.dtype)
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


def _arc_counts(u, v, cos_t, sin_t, eps: float) -> torch.Tensor:
    """Counts [p, A] of u cos(theta_k) + v sin(theta_k) >= eps, one arc per sample.

    Each sample with in-plane length rho > 0 and angle phi is inside the cone
    for |theta - phi| <= arccos(eps / rho): one arc of angles. Its first and
    last grid points come from ``ceil`` and ``floor`` in grid units. Where an
    end lies within rounding of a grid point (or the arc is nearly a point or
    the whole circle, where arccos is ill-conditioned), the ends are checked
    with the very formula the dense method uses (same cos/sin tables, same
    arithmetic) and moved by at most one step, so the two methods agree exactly.
    """
    n, p = u.shape
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
    machine = torch.finfo(u.dtype).eps
    tol_ratio = 100.0 * math.sqrt(machine)
    tol_grid = min(0.5, 1000.0 * machine * to_grid * 2.0 * math.pi / math.sqrt(2.0 * tol_ratio))
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
    if 0.0 >= eps:
        full = (length >= a) | zero
        partial = ~full & (length > 0)
    else:
        full = (length >= a) & ~zero
        partial = ~full & (length > 0) & ~zero
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
    if skipped.shape[0]:
        shown = ", ".join(f"({i}, {j})" for i, j in skipped[:6].tolist()) + (", ..." if skipped.shape[0] > 6 else "")
        warnings.warn(
            f"spotlight_resonance skipped {skipped.shape[0]} pair(s) of parallel or antipodal basis vectors "
            f"(they span no plane): {shown}; see result.skipped",
            UserWarning,
            stacklevel=2,
        )
    c, _ = basis_projections(a, basis)
    dtype = a.dtype
    cos_t = torch.cos(angles).to(dtype)
    sin_t = torch.sin(angles).to(dtype)
    n, num_a, num_p = a.shape[0], angles.shape[0], kept.shape[0]
    counts = torch.empty(num_p, num_a, dtype=torch.int64)
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

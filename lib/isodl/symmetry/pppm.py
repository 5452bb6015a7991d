"""Notebook 04: the Privileged Plane Projection Method (PPPM) and its isotropic null.

The Privileged Plane Projective Method (PPPM): the activation points near each privileged plane.

Derived in notebook 04 (``notebooks/04_quantised_representations.ipynb``).
Method: G. Bird, "Emergence of Quantised Representations Isolated to
Anisotropic Functions", arXiv 2507.12070; the name follows the author's
reference repository (the paper's exact spelling is not verified here).

SRM (:mod:`isodl.symmetry.srm`) summarises each privileged plane by an angular
*density*. PPPM shows the *points* instead:

1. for every plane ``(b_i, b_j)`` of the basis (ordered pairs by default),
   build the orthonormal in-plane axes ``e_1 = b_i_hat`` and
   ``e_2 = (b_j_hat - g e_1) / sqrt(1 - g^2)`` (Gram-Schmidt, ``g = b_i_hat . b_j_hat``);
   pairs of parallel or antipodal vectors span no plane and are skipped;
2. project the *raw* activations (not normalised: radii carry meaning):
   ``u = x . e_1``, ``v = x . e_2``;
3. keep a sample when its angle to the plane is at most ``arccos(epsilon)``:
   ``sqrt(u^2 + v^2) / |x| >= epsilon``;
4. pool the kept ``(u, v)`` of all planes into one 2-D cloud.

The projection step (``c = X B_hat^T`` and the Gram-Schmidt partner
coordinate) is :func:`isodl.symmetry.srm.basis_projections` and
:func:`isodl.symmetry.srm.in_plane_coordinates`, shared with SRM.

Isotropic null. For an isotropic distribution the squared in-plane fraction
``|P x_hat|^2`` follows Beta(1, (n - 2) / 2), so each plane keeps a fraction
``(1 - epsilon^2)^((n - 2) / 2)`` of the samples and ``N P`` sample-plane
pairs keep ``N P (1 - epsilon^2)^((n - 2) / 2)`` points on average
(:func:`isotropic_expected_count`). More points than that means the cloud
crowds onto the privileged planes; fewer means it avoids them.

Density images (:func:`pppm_density`). The kept points are smoothed with a
Gaussian kernel whose width is a fixed fraction (default 0.02) of the plot
extent ``M`` (the author's code used ``0.2 / M``, which shrinks as ``M``
grows; the course's choice is stated in notebook 04). The *volume
normalisation* divides by the density of an isotropic reference cloud put
through the same steps: random directions with the data's own radii, the same
basis, ``epsilon`` and pair mode, the same kernel and grid. The reference is
floored before dividing so empty regions do not blow up. The precise recipe
of the paper is not known; this one is the course's reconstruction.

For large bases :func:`pppm_density(stream=True)` bins the kept points chunk by
chunk of planes instead of pooling them (the same image, bounded memory).

Conventions: ``epsilon`` in [-1, 1]; an all-zero activation row has no
direction, its in-plane fraction is taken as 0, so it is kept only when
``epsilon <= 0`` (as SRM counts zero rows only then).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from isodl.core.validate import check_bool, check_choice, check_float, check_int, check_tensor
from isodl.symmetry import srm

__all__ = [
    "PPPMResult",
    "privileged_plane_projection",
    "isotropic_keep_fraction",
    "isotropic_expected_count",
    "isotropic_reference_cloud",
    "density_image",
    "PPPMDensity",
    "pppm_density",
    "PPPMTally",
]

# Elements (samples x planes) handled per chunk, so memory stays bounded for big bases.
_CHUNK = 1 << 22


class _CountsAgainstIsotropic:
    """What :class:`PPPMResult` and :class:`PPPMTally` share: counts set against the isotropic expectation."""

    @property
    def n_planes(self) -> int:
        return int(self.pairs.shape[0])

    @property
    def expected(self) -> float:
        """The number of points an isotropic cloud of the same size would give (:func:`isotropic_expected_count`)."""
        return isotropic_expected_count(self.n_samples, self.n_dim, self.n_planes, self.epsilon)

    @property
    def count_ratio(self) -> float:
        """Kept points over the isotropic expectation (1 for isotropic data)."""
        exp = self.expected
        return float("inf") if exp == 0 else len(self) / exp


@dataclass
class PPPMResult(_CountsAgainstIsotropic):
    """The pooled in-plane points of a PPPM run.

    * ``points``: ``[M, 2]`` kept ``(u, v)`` coordinates (``u`` along ``b_i``,
      ``v`` along the Gram-Schmidt partner of ``b_j``), in the activations' dtype;
    * ``plane``: ``[M]`` index into ``pairs`` of the plane each point came from;
    * ``sample``: ``[M]`` row of the activation each point came from;
    * ``pairs``: ``[P, 2]`` the planes used; ``skipped``: ``[S, 2]`` (anti)parallel pairs left out;
    * ``n_samples``, ``n_dim``, ``epsilon``: what was analysed.
    """

    points: torch.Tensor
    plane: torch.Tensor
    sample: torch.Tensor
    pairs: torch.Tensor
    skipped: torch.Tensor
    n_samples: int
    n_dim: int
    epsilon: float

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def angles(self) -> torch.Tensor:
        """In-plane polar angle ``atan2(v, u)`` of every kept point, in (-pi, pi]."""
        return torch.atan2(self.points[:, 1], self.points[:, 0])

    @property
    def radii(self) -> torch.Tensor:
        """In-plane radius ``sqrt(u^2 + v^2)`` of every kept point."""
        return torch.hypot(self.points[:, 0], self.points[:, 1])

    def __repr__(self) -> str:
        return (
            f"PPPMResult({len(self)} points from {self.n_samples} samples x {self.n_planes} planes, "
            f"n={self.n_dim}, epsilon={self.epsilon:g}; isotropic expectation {self.expected:.1f})"
        )


def privileged_plane_projection(
    activations,
    basis=None,
    epsilon: float = 0.8,
    pairs: str = "perm",
    *,
    max_planes: int | None = None,
    seed: int = 0,
    parallel_tol: float = 1e-6,
) -> PPPMResult:
    """Project the activations into every privileged plane and keep those close to it.

    Parameters
    ----------
    activations : ``[N, n]`` floating tensor or array (raw activations, one per row).
    basis : ``[K, n]`` privileged directions, one per row (normalised inside);
        ``None`` means the standard basis of ``R^n``.
    epsilon : float in [-1, 1]
        Keep a sample for a plane when ``|in-plane part| / |x| >= epsilon``,
        i.e. its angle to the plane is at most ``arccos(epsilon)``.
    pairs : ``"perm"`` (every ordered pair, ``K (K - 1)`` planes, the default) or
        ``"comb"`` (``i < j``). In ``"perm"`` mode an orthonormal basis gives
        every plane twice with its axes swapped, so the pooled cloud is
        symmetric about the line ``u = v``.
    max_planes, seed : keep a seeded random subset of the planes.
    parallel_tol : pairs with ``1 - |g| < parallel_tol`` are skipped.

    Returns
    -------
    :class:`PPPMResult`
    """
    a = srm.check_activations(activations)
    eps = srm.check_epsilon(epsilon)
    n = a.shape[1]
    if basis is None:
        basis = torch.eye(n, dtype=torch.float64)
    kept_pairs, skipped, gram = srm.plane_pairs(
        basis, pairs, parallel_tol=parallel_tol, max_planes=max_planes, seed=seed
    )
    c, _ = srm.basis_projections(a, basis, normalise=False)
    norms = _row_norms(a)
    zero = norms == 0
    norms_safe = torch.where(zero, torch.ones_like(norms), norms)
    n_samples = a.shape[0]
    chunk = max(1, _CHUNK // max(n_samples, 1))
    pts, planes, samples = [], [], []
    for start, rows, cols, u, v in _kept_points(c, gram, kept_pairs, norms_safe, zero, eps, chunk):
        # order by plane, then sample: the pooled list reads plane by plane
        order = torch.argsort(cols * n_samples + rows, stable=True)
        rows, cols = rows[order], cols[order]
        pts.append(torch.stack([u[order], v[order]], dim=1))
        planes.append(cols + start)
        samples.append(rows)
    return PPPMResult(
        points=torch.cat(pts) if pts else torch.zeros(0, 2, dtype=a.dtype),
        plane=torch.cat(planes) if planes else torch.zeros(0, dtype=torch.int64),
        sample=torch.cat(samples) if samples else torch.zeros(0, dtype=torch.int64),
        pairs=kept_pairs,
        skipped=skipped,
        n_samples=int(n_samples),
        n_dim=int(n),
        epsilon=eps,
    )


def _kept_points(c, gram, kept_pairs, norms_safe, zero, eps: float, chunk: int):
    """Per chunk of at most ``chunk`` planes: ``(start, rows, cols, u, v)`` of the kept (sample, plane) pairs.

    ``rows`` are samples, ``cols`` planes of the chunk (row-major order, as
    ``nonzero`` gives them), ``u, v`` their in-plane coordinates.
    """
    for start in range(0, kept_pairs.shape[0], chunk):
        block = kept_pairs[start : start + chunk]
        u, v = srm.in_plane_coordinates(c, gram, block)  # [N, p] each
        frac = torch.hypot(u, v) / norms_safe[:, None]  # hypot: no overflow at 1e30 in float32
        frac = torch.where(zero[:, None], torch.zeros_like(frac), frac)
        rows, cols = (frac >= eps).nonzero(as_tuple=True)
        yield start, rows, cols, u[rows, cols], v[rows, cols]


def isotropic_keep_fraction(n_dim: int, epsilon: float) -> float:
    """Fraction of isotropic samples PPPM keeps per plane: ``(1 - epsilon^2)^((n - 2) / 2)``.

    ``|P x_hat|^2`` of a random direction in ``R^n`` follows Beta(1, (n - 2) / 2),
    whose upper tail at ``epsilon^2`` is ``(1 - epsilon^2)^((n - 2) / 2)``. Every
    sample is kept when ``epsilon <= 0`` and, for ``n = 2``, every sample lies in
    the plane.
    """
    n = check_int("n_dim", n_dim, minimum=2)
    eps = check_float("epsilon", epsilon, minimum=-1.0, maximum=1.0)
    if eps <= 0.0 or n == 2:
        return 1.0
    return float((1.0 - eps * eps) ** ((n - 2) / 2.0))


def isotropic_expected_count(n_samples: int, n_dim: int, n_planes: int, epsilon: float) -> float:
    """Expected number of PPPM points for an isotropic cloud: ``N P (1 - epsilon^2)^((n - 2) / 2)``."""
    n_samples = check_int("n_samples", n_samples, minimum=0)
    n_planes = check_int("n_planes", n_planes, minimum=0)
    return n_samples * n_planes * isotropic_keep_fraction(n_dim, epsilon)


def isotropic_reference_cloud(activations, n_samples: int | None = None, seed: int = 0) -> torch.Tensor:
    """Random directions carrying the data's own radii: the volume normaliser's input.

    Each of the ``n_samples`` rows (default: as many as ``activations``) is a
    uniformly random unit vector in ``R^n`` times the norm of a randomly drawn
    activation row, so the reference has the data's radius distribution and
    no preferred direction.
    """
    a = srm.check_activations(activations)
    if n_samples is None:
        n_samples = a.shape[0]
    n_samples = check_int("n_samples", n_samples, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(n_samples, a.shape[1], generator=gen, dtype=torch.float64)
    d = d / torch.linalg.vector_norm(d, dim=1, keepdim=True)
    radii = _row_norms(a.to(torch.float64))
    pick = torch.randint(0, a.shape[0], (n_samples,), generator=gen)
    return (d * radii[pick, None]).to(a.dtype)


def _row_norms(a: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each row without overflow or underflow (rows rescaled by their largest entry)."""
    m = a.abs().amax(dim=1)
    m_safe = torch.where(m > 0, m, torch.ones_like(m))
    return m * torch.linalg.vector_norm(a / m_safe[:, None], dim=1)


def _gaussian_kernel_1d(sigma_px: float, dtype) -> torch.Tensor:
    half = max(1, int(math.ceil(4.0 * sigma_px)))
    x = torch.arange(-half, half + 1, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    return k / k.sum()


def density_image(
    points,
    extent: float | None = None,
    *,
    resolution: int = 160,
    bandwidth: float = 0.02,
) -> tuple[torch.Tensor, float]:
    """A smoothed 2-D density of ``points`` on a ``resolution x resolution`` grid over ``[-M, M]^2``.

    ``extent`` is ``M`` (default: the largest absolute coordinate, or 1 for an
    empty or all-zero cloud). The kernel is a Gaussian whose standard deviation
    is ``bandwidth * M`` (the course's choice, see the module docstring); points
    are binned on the grid and the histogram is blurred, so the cost is
    ``O(M + resolution^2)``. Points outside the extent are dropped.

    Returns ``(image, M)``: ``image[r, c]`` is the kernel mass per point at row
    ``r`` (vertical axis, ``v`` increasing with ``r``) and column ``c`` (``u``),
    so ``imshow(image, origin="lower", extent=[-M, M, -M, M])`` draws it the right
    way up. The image sums to the fraction of points inside the extent.
    """
    p = check_tensor("points", points, ndim=2, floating=True, finite=True)
    if p.shape[1] != 2:
        raise ValueError(f"points must have shape [M, 2] (in-plane u, v), got {list(p.shape)}")
    res = check_int("resolution", resolution, minimum=8)
    bw = check_float("bandwidth", bandwidth, minimum=0.0, strict_minimum=True)
    p = p.to(torch.float64)
    if extent is None:
        m = float(p.abs().max()) if p.shape[0] else 0.0
        extent = m if m > 0 else 1.0
    m = check_float("extent", extent, minimum=0.0, strict_minimum=True)
    img = torch.zeros(res, res, dtype=torch.float64, device=p.device)
    if p.shape[0]:
        img = _bin_points(p, m, res).to(torch.float64).reshape(res, res) / p.shape[0]
    return _blur(img, m, res, bw), m


def _bin_points(p: torch.Tensor, m: float, res: int) -> torch.Tensor:
    """Histogram ``[res * res]`` (int64) of float64 points ``[M, 2]`` on the grid over ``[-m, m]^2``; outside points dropped."""
    # pixel index of each point: column from u, row from v (origin lower)
    idx = torch.floor((p + m) / (2.0 * m) * res).to(torch.int64)
    idx = torch.where(idx == res, idx - 1, idx)  # the upper edge belongs to the last pixel
    inside = ((idx >= 0) & (idx < res)).all(dim=1)
    idx = idx[inside]
    flat = idx[:, 1] * res + idx[:, 0]
    return torch.bincount(flat, minlength=res * res)


def _blur(img: torch.Tensor, m: float, res: int, bw: float) -> torch.Tensor:
    """The Gaussian blur of :func:`density_image` (standard deviation ``bw * m``)."""
    sigma_px = bw * m / (2.0 * m / res)
    k = _gaussian_kernel_1d(sigma_px, torch.float64).to(img.device)
    pad = k.shape[0] // 2
    x = img[None, None]
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (pad, pad, 0, 0)), k.view(1, 1, 1, -1))
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 0, pad, pad)), k.view(1, 1, -1, 1))
    return x[0, 0]


@dataclass
class PPPMDensity:
    """A PPPM density image with its volume normalisation (see :func:`pppm_density`).

    * ``raw``: density of the data's kept points per analysed sample;
    * ``reference``: the same for the isotropic reference cloud (``None`` if not normalised);
    * ``image``: what to draw: ``raw / (reference + floor)`` when normalised,
      else ``raw`` scaled to a maximum of 1;
    * ``extent``: ``M`` of the grid ``[-M, M]^2``; ``result``: the data's :class:`PPPMResult`
      (a :class:`PPPMTally`, without the points, from :func:`pppm_density(stream=True)`).
    """

    image: torch.Tensor
    raw: torch.Tensor
    reference: torch.Tensor | None
    extent: float
    result: PPPMResult | PPPMTally
    normalised: bool
    floor: float = field(default=0.0)

    @property
    def imshow_extent(self) -> list[float]:
        m = self.extent
        return [-m, m, -m, m]


def pppm_density(
    activations,
    basis=None,
    epsilon: float = 0.8,
    pairs: str = "perm",
    *,
    normalise_volume: bool = True,
    extent: float | None = None,
    resolution: int = 160,
    bandwidth: float = 0.02,
    floor: float = 0.05,
    n_reference: int | None = None,
    seed: int = 0,
    stream: bool = False,
    chunk_planes: int | None = None,
    max_bytes: int | None = None,
    progress=None,
) -> PPPMDensity:
    """PPPM points of ``activations`` as a density image, volume-normalised against an isotropic cloud.

    The density is counted *per analysed sample* (kernel mass summed over kept
    points, divided by ``N``), so data and reference are on the same scale even
    when the reference has more samples. With ``normalise_volume`` the image is
    ``raw / (reference + floor * max(reference))``: about 1 where the data is as
    dense as an isotropic cloud with the same radii, above 1 where it crowds,
    and near 0 where it is empty. ``n_reference`` defaults to ``max(N, 20000)``
    samples; ``seed`` fixes the reference cloud. Other arguments as in
    :func:`privileged_plane_projection` and :func:`density_image`.

    ``stream=True`` bins the points chunk by chunk of planes and never keeps
    them, for layers with many planes: the image, ``raw`` and ``reference``
    are the same, ``result`` is then a :class:`PPPMTally` (counts, no points);
    ``chunk_planes``, ``max_bytes`` and ``progress`` bound and report that
    sweep (see :func:`_density_streamed`). They are ignored when ``stream`` is
    False.
    """
    if check_bool("stream", stream):
        return _density_streamed(
            activations, basis, epsilon, pairs, normalise_volume, extent, resolution, bandwidth, floor,
            n_reference, seed, chunk_planes, max_bytes, progress,
        )  # fmt: skip
    a = srm.check_activations(activations)
    normalise_volume = check_bool("normalise_volume", normalise_volume)
    floor = check_float("floor", floor, minimum=0.0, strict_minimum=True)
    pairs = check_choice("pairs", pairs, srm.PAIRS)
    result = privileged_plane_projection(a, basis, epsilon, pairs)
    if extent is None:
        m = float(result.points.abs().max()) if len(result) else 0.0
        extent = m if m > 0 else 1.0
    per_point, m = density_image(result.points, extent, resolution=resolution, bandwidth=bandwidth)
    raw = per_point * (len(result) / result.n_samples)
    if not normalise_volume:
        top = float(raw.max())
        return PPPMDensity(raw / top if top > 0 else raw, raw, None, m, result, False)
    if n_reference is None:
        n_reference = max(a.shape[0], 20000)
    ref_cloud = isotropic_reference_cloud(a, n_reference, seed)
    ref_result = privileged_plane_projection(ref_cloud, basis, epsilon, pairs)
    ref_per_point, _ = density_image(ref_result.points, m, resolution=resolution, bandwidth=bandwidth)
    ref = ref_per_point * (len(ref_result) / ref_result.n_samples)
    ref_floor = floor * float(ref.max()) if float(ref.max()) > 0 else floor
    image = raw / (ref + ref_floor)
    return PPPMDensity(image, raw, ref, m, result, True, ref_floor)


# --------------------------------------------------------------------------- streaming densities

# Default working-memory budget of one chunk of :func:`pppm_density(stream=True)`, in bytes.
_STREAM_BYTES = 1 << 28


@dataclass
class PPPMTally(_CountsAgainstIsotropic):
    """What :func:`pppm_density(stream=True)` keeps of a PPPM run: the counts, not the points.

    ``n_points`` kept (sample, plane) pairs from ``n_samples`` samples over
    the planes ``pairs`` (``skipped``: (anti)parallel pairs left out), in
    ``n_dim`` dimensions at ``epsilon``; ``chunk_planes`` is the bound on
    planes per chunk, ``largest_chunk`` the most any chunk held, ``n_chunks``
    the number of chunks (per pass over the planes). Same ``len``,
    ``expected`` and ``count_ratio`` as :class:`PPPMResult`.
    """

    n_points: int
    pairs: torch.Tensor
    skipped: torch.Tensor
    n_samples: int
    n_dim: int
    epsilon: float
    chunk_planes: int
    largest_chunk: int
    n_chunks: int

    def __len__(self) -> int:
        return int(self.n_points)


def _stream_histogram(a, basis, eps, pairs, extent, res, chunk, progress):
    """``(histogram [res * res] int64 or None, extent, tally)``: one pass to find the extent if needed, one to bin."""
    n = a.shape[1]
    if basis is None:
        basis = torch.eye(n, dtype=torch.float64)
    kept_pairs, skipped, gram = srm.plane_pairs(basis, pairs)
    c, _ = srm.basis_projections(a, basis, normalise=False)
    norms = _row_norms(a)
    zero = norms == 0
    norms_safe = torch.where(zero, torch.ones_like(norms), norms)
    largest, n_chunks = 0, 0

    def chunks():
        nonlocal largest, n_chunks
        n_chunks = 0
        for start, _, _, u, v in _kept_points(c, gram, kept_pairs, norms_safe, zero, eps, chunk):
            n_chunks += 1
            largest = max(largest, min(chunk, kept_pairs.shape[0] - start))
            yield start, u, v

    if extent is None:  # first pass: the largest coordinate of any kept point
        m = 0.0
        for _, u, v in chunks():
            if u.numel():
                m = max(m, float(torch.maximum(u.abs().max(), v.abs().max()).to(torch.float64)))
        extent = m if m > 0 else 1.0
    m = check_float("extent", extent, minimum=0.0, strict_minimum=True)
    hist = torch.zeros(res * res, dtype=torch.int64, device=c.device)
    n_points = 0
    for start, u, v in chunks():
        n_points += int(u.shape[0])
        if u.numel():
            hist += _bin_points(torch.stack([u, v], dim=1).to(torch.float64), m, res)
        if progress is not None:
            progress(min(start + chunk, kept_pairs.shape[0]), kept_pairs.shape[0])
    tally = PPPMTally(
        n_points=n_points,
        pairs=kept_pairs,
        skipped=skipped,
        n_samples=int(a.shape[0]),
        n_dim=int(n),
        epsilon=eps,
        chunk_planes=int(chunk),
        largest_chunk=int(largest),
        n_chunks=int(n_chunks),
    )
    return hist, m, tally


def _density_from_histogram(hist, n_points: int, n_samples: int, m: float, res: int, bw: float):
    """Per-sample density of binned points: :func:`density_image` times ``n_points / n_samples``, term by term."""
    img = torch.zeros(res, res, dtype=torch.float64, device=hist.device)
    if n_points:
        img = hist.to(torch.float64).reshape(res, res) / n_points
    return _blur(img, m, res, bw) * (n_points / n_samples)


def _density_streamed(
    activations, basis, epsilon, pairs, normalise_volume, extent, resolution, bandwidth, floor, n_reference, seed,
    chunk_planes, max_bytes, progress,
) -> PPPMDensity:  # fmt: skip
    """``pppm_density(..., stream=True)``: the image is binned chunk by chunk of planes, no point kept.

    Equal to :func:`pppm_density` with the same arguments (the same kept
    points fall in the same pixels; the histogram counts are identical
    integers), but memory does not grow with the number of kept points.
    ``result`` is a :class:`PPPMTally` (counts, no points).

    **Memory bound**: at most ``chunk_planes`` planes are projected at once,
    which takes about ``chunk_planes * 64 N`` bytes (``u``, ``v``, the kept
    fraction and the kept points of ``N`` samples); the default chooses
    ``chunk_planes = max_bytes // (64 N)`` with ``max_bytes`` = 256 MiB (give
    one of the two). Plus the projections (``N K`` numbers) and the
    ``resolution^2`` histogram.

    When ``extent`` is ``None`` the planes are swept twice: once to find the
    largest kept coordinate ``M``, once to bin. ``progress(planes_done,
    planes_total)`` is called after each chunk of the binning pass (data
    first, then the reference). Other arguments as in :func:`pppm_density`.
    """
    a = srm.check_activations(activations)
    eps = srm.check_epsilon(epsilon)
    normalise_volume = check_bool("normalise_volume", normalise_volume)
    floor = check_float("floor", floor, minimum=0.0, strict_minimum=True)
    pairs = check_choice("pairs", pairs, srm.PAIRS)
    res = check_int("resolution", resolution, minimum=8)
    bw = check_float("bandwidth", bandwidth, minimum=0.0, strict_minimum=True)
    if extent is not None:
        extent = check_float("extent", extent, minimum=0.0, strict_minimum=True)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable progress(done, total) or None, got {type(progress).__name__}")
    if chunk_planes is not None and max_bytes is not None:
        raise ValueError("give chunk_planes or max_bytes, not both (chunk_planes is the bound; max_bytes chooses it)")
    if chunk_planes is None:
        budget = _STREAM_BYTES if max_bytes is None else check_int("max_bytes", max_bytes, minimum=1)
        chunk_planes = max(1, budget // (64 * a.shape[0]))
    chunk = check_int("chunk_planes", chunk_planes, minimum=1)
    hist, m, tally = _stream_histogram(a, basis, eps, pairs, extent, res, chunk, progress)
    raw = _density_from_histogram(hist, tally.n_points, tally.n_samples, m, res, bw)
    if not normalise_volume:
        top = float(raw.max())
        return PPPMDensity(raw / top if top > 0 else raw, raw, None, m, tally, False)
    if n_reference is None:
        n_reference = max(a.shape[0], 20000)
    ref_cloud = isotropic_reference_cloud(a, n_reference, seed).to(a.device)
    ref_hist, _, ref_tally = _stream_histogram(ref_cloud, basis, eps, pairs, m, res, chunk, progress)
    ref = _density_from_histogram(ref_hist, ref_tally.n_points, ref_tally.n_samples, m, res, bw)
    ref_floor = floor * float(ref.max()) if float(ref.max()) > 0 else floor
    image = raw / (ref + ref_floor)
    return PPPMDensity(image, raw, ref, m, tally, True, ref_floor)

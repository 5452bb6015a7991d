"""Notebook 14: the geometry of superposition, measured on the weights ``W`` (``[..., m, F]``) of toy models.

Column ``W_i`` is feature ``i``'s direction in the ``m``-dimensional hidden
space. The quantities of Elhage et al. (2022, arXiv 2209.10652), written out:

* :func:`feature_norms` ``||W_i||`` (about 1: represented, about 0: ignored);
* :func:`interference` ``sum_{j != i} (W^_i . W_j)^2``: how much feature ``i``
  shares its direction with the others (0: a dimension of its own);
* :func:`features_represented`: how many ``||W_i||`` exceed a threshold (0.5);
* :func:`dimensions_per_feature` ``m / ||W||_F^2``;
* :func:`feature_dimensionality` ``D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2``
  (1: its own dimension; 1/2: an antipodal pair; 2/5: a pentagon, ...);
  :func:`polygon_dimensionality` is its closed form for ``k`` features on a
  regular polygon and :func:`regular_polygon` builds one;
* :func:`nearest_preferred` the distance of each ``D_i`` to the preferred values.

For the variant with a privileged hidden basis: :func:`basis_alignment`
(how much of each feature's weight sits on a single neuron, 1/m..1),
:func:`neuron_monosemanticity` (how much of each neuron's weight one feature
holds), :func:`coordinate_kurtosis` of hidden activations, and
:func:`rotate_hidden` for the rotated null (:func:`rotated_alignment_null` averages the
alignment over many rotations of each instance, so the null adds no noise of its own). :func:`recovered_features` is the
functional test (does feature ``i`` alone come back as itself?) and
:func:`output_rank` the dimension of the span of a set of outputs.

Every function accepts any number of leading (instance) dimensions.
"""

from __future__ import annotations

import math

import torch

from isodl.core.validate import check_float, check_int, check_tensor

__all__ = [
    "PREFERRED_DIMENSIONALITIES",
    "check_weights",
    "gram",
    "feature_norms",
    "interference",
    "features_represented",
    "dimensions_per_feature",
    "feature_dimensionality",
    "polygon_dimensionality",
    "regular_polygon",
    "nearest_preferred",
    "basis_alignment",
    "neuron_monosemanticity",
    "coordinate_kurtosis",
    "rotate_hidden",
    "rotated_alignment_null",
    "preferred_share",
    "recovered_features",
    "output_rank",
]

#: Values of D_i that uniform polytopes give (as listed in the paper): 1 (own dimension), 3/4 (tetrahedron),
#: 2/3 (triangle), 1/2 (antipodal pair), 2/5 (pentagon), 3/8 (square antiprism), 1/3.
PREFERRED_DIMENSIONALITIES = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8, 1 / 3)


def check_weights(W, name: str = "W") -> torch.Tensor:
    """``W`` as a finite floating tensor with at least 2 dimensions ``[..., m, F]``, or raise naming it."""
    w = check_tensor(name, W, floating=True, finite=True)
    if w.ndim < 2:
        raise ValueError(
            f"{name} must have shape [..., m, F] (hidden dimensions x features), got shape {tuple(w.shape)}"
        )
    return w


def _unit_columns(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    norms = torch.linalg.vector_norm(w, dim=-2, keepdim=True)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    return w / safe, norms.squeeze(-2)


def gram(W) -> torch.Tensor:
    """``W^T W``, ``[..., F, F]``: entry ``(i, j)`` is ``W_i . W_j``."""
    w = check_weights(W)
    return w.transpose(-1, -2) @ w


def feature_norms(W) -> torch.Tensor:
    """``||W_i||`` for every feature, ``[..., F]``."""
    return torch.linalg.vector_norm(check_weights(W), dim=-2)


def interference(W) -> torch.Tensor:
    """``sum_{j != i} (W^_i . W_j)^2`` for every feature, ``[..., F]`` (0 for a zero column)."""
    w = check_weights(W)
    unit, _ = _unit_columns(w)
    overlap = unit.transpose(-1, -2) @ w  # [..., F, F]: W^_i . W_j
    sq = overlap**2
    return sq.sum(-1) - torch.diagonal(sq, dim1=-2, dim2=-1)


def features_represented(W, threshold: float = 0.5) -> torch.Tensor:
    """How many features have ``||W_i|| > threshold``, ``[...]`` (int64)."""
    threshold = check_float("threshold", threshold, minimum=0.0)
    return (feature_norms(W) > threshold).sum(-1)


def dimensions_per_feature(W) -> torch.Tensor:
    """``m / ||W||_F^2``, ``[...]``: 1 when each represented feature has a dimension, less in superposition.

    ``inf`` for an all-zero ``W`` (no feature takes any dimension).
    """
    w = check_weights(W)
    fro = (w**2).sum((-2, -1))
    m = w.shape[-2]
    return torch.where(fro > 0, m / torch.where(fro > 0, fro, torch.ones_like(fro)), torch.full_like(fro, math.inf))


def feature_dimensionality(W) -> torch.Tensor:
    """``D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2`` for every feature, ``[..., F]``; 0 for a zero column.

    The sum runs over every ``j`` including ``i``, so ``D_i = ||W_i||^2 / (||W_i||^2 +`` interference``)``
    lies in [0, 1]: 1 for a feature with a dimension of its own, 1/2 for each of an antipodal pair.
    """
    w = check_weights(W)
    unit, norms = _unit_columns(w)
    denom = ((unit.transpose(-1, -2) @ w) ** 2).sum(-1)
    ok = denom > 0
    return torch.where(ok, norms**2 / torch.where(ok, denom, torch.ones_like(denom)), torch.zeros_like(denom))


def polygon_dimensionality(k: int) -> float:
    """Closed form of :func:`feature_dimensionality` for ``k`` equal features on a regular polygon in a plane.

    1 for one feature, 1/2 for an antipodal pair (``k = 2``), ``2 / k`` for ``k >= 3``
    (the squared cosines ``cos^2(2 pi j / k)`` sum to ``k / 2``).
    """
    k = check_int("k", k, minimum=1)
    if k == 1:
        return 1.0
    if k == 2:
        return 0.5
    return 2.0 / k


def regular_polygon(k: int, m: int = 2, *, length: float = 1.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``W`` of shape ``[m, k]``: ``k`` features of length ``length`` at angles ``2 pi j / k`` in the first plane.

    ``k = 2`` gives an antipodal pair; ``m = 1`` with ``k = 2`` gives ``[[1, -1]]``.
    """
    k = check_int("k", k, minimum=1)
    m = check_int("m", m, minimum=1)
    length = check_float("length", length, minimum=0.0)
    angles = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    w = torch.zeros(m, k, dtype=torch.float64)
    if m == 1:
        if k > 2:
            raise ValueError(f"k must be 1 or 2 when m = 1 (a polygon needs a plane), got k = {k}")
        w[0] = torch.cos(angles)
    else:
        w[0], w[1] = torch.cos(angles), torch.sin(angles)
    return (length * w).to(dtype)


def nearest_preferred(D, values=PREFERRED_DIMENSIONALITIES) -> torch.Tensor:
    """``min_v |D_i - v|`` over the preferred values, same shape as ``D``."""
    d = check_tensor("D", D, floating=True, finite=True)
    v = torch.as_tensor(values, dtype=d.dtype)
    if v.ndim != 1 or v.numel() == 0:
        raise ValueError("values must be a non-empty list of numbers")
    return (d[..., None] - v).abs().amin(-1)


def basis_alignment(W) -> torch.Tensor:
    """``sum_i max_k W_ki^2 / ||W||_F^2``, ``[...]``: the share of the weight that sits on each feature's top neuron.

    1 when every feature is carried by a single neuron (monosemantic features), ``1/m`` at the least (every
    feature spread evenly over the ``m`` neurons); ``nan`` for an all-zero ``W``.
    """
    w = check_weights(W)
    sq = w**2
    total = sq.sum((-2, -1))
    top = sq.amax(-2).sum(-1)
    return torch.where(total > 0, top / torch.where(total > 0, total, torch.ones_like(total)), torch.nan)


def neuron_monosemanticity(W) -> torch.Tensor:
    """``max_i W_ki^2 / sum_i W_ki^2`` for every neuron ``k``, ``[..., m]``: 1 = one feature only; ``nan`` for a zero row."""
    sq = check_weights(W) ** 2
    total = sq.sum(-1)
    return torch.where(total > 0, sq.amax(-1) / torch.where(total > 0, total, torch.ones_like(total)), torch.nan)


def coordinate_kurtosis(h) -> torch.Tensor:
    """Kurtosis ``E[(h_k - mu)^4] / Var^2`` of every coordinate over the samples, ``h`` of shape ``[..., B, m]``.

    3 for a Gaussian, large for a sparse (rarely active) coordinate. Returns ``[..., m]``;
    ``nan`` for a coordinate that never varies.
    """
    a = check_tensor("h", h, floating=True, finite=True)
    if a.ndim < 2 or a.shape[-2] < 2:
        raise ValueError(f"h must have shape [..., B, m] with B >= 2 samples, got shape {tuple(a.shape)}")
    a = a.to(torch.float64)
    c = a - a.mean(-2, keepdim=True)
    var = (c**2).mean(-2)
    fourth = (c**4).mean(-2)
    ok = var > 1e-300
    return torch.where(ok, fourth / torch.where(ok, var, torch.ones_like(var)) ** 2, torch.nan)


def rotate_hidden(W, generator: torch.Generator) -> torch.Tensor:
    """``Q W`` with a Haar-random ``m x m`` rotation ``Q`` per instance: the rotated null for hidden-basis measures."""
    w = check_weights(W)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    m = w.shape[-2]
    lead = w.shape[:-2]
    g = torch.randn(*lead, m, m, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    return (q.to(w.dtype) @ w).contiguous()


def rotated_alignment_null(W, generator: torch.Generator, n_rotations: int = 200) -> torch.Tensor:
    """Mean of :func:`basis_alignment` of ``Q W`` over ``n_rotations`` Haar-random rotations per instance, ``[...]``.

    The expected alignment of the same basis-free geometry (the Gram matrix of ``W``) in a random basis.
    Averaging over many rotations removes the noise a single rotated copy would add to the comparison.
    """
    w = check_weights(W)
    n_rotations = check_int("n_rotations", n_rotations, minimum=1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    rotated = rotate_hidden(w.to(torch.float64).expand(n_rotations, *w.shape), generator)
    return basis_alignment(rotated).mean(0).to(w.dtype)


def preferred_share(D, values, tolerance: float = 0.02) -> float:
    """The share of the dimensionalities ``D`` (any shape, all counted) within ``tolerance`` of one of ``values``.

    Compare the share at the preferred values with the share at placebo values (numbers no
    geometry prefers) to tell a real preference from a dense cloud of values nearby.
    """
    d = check_tensor("D", D, floating=True, finite=True)
    tolerance = check_float("tolerance", tolerance, minimum=0.0, strict_minimum=True)
    if d.numel() == 0:
        raise ValueError("D must hold at least one dimensionality")
    return float((nearest_preferred(d, values) < tolerance).double().mean())


def recovered_features(responses, tolerance: float = 0.1) -> torch.Tensor:
    """How many features come back as themselves: ``||r_i - e_i||^2 < tolerance``, ``[...]`` (int64).

    ``responses`` is ``[..., F, F]`` with row ``i`` the change of the output when
    feature ``i`` alone goes from 0 to 1 (``x'(e_i) - x'(0)``). If every output
    of a model lies in a subspace of dimension ``d``, at most ``d / (1 - tolerance)``
    features can pass (notebook 14 derives this).
    """
    r = check_tensor("responses", responses, floating=True, finite=True)
    if r.ndim < 2 or r.shape[-1] != r.shape[-2]:
        raise ValueError(f"responses must have shape [..., F, F], got shape {tuple(r.shape)}")
    tolerance = check_float("tolerance", tolerance, minimum=0.0, strict_minimum=True)
    eye = torch.eye(r.shape[-1], dtype=r.dtype)
    return (((r - eye) ** 2).sum(-1) < tolerance).sum(-1)


def output_rank(outputs, rtol: float = 1e-5) -> torch.Tensor:
    """Numerical rank of a set of outputs ``[..., B, F]``: singular values above ``rtol`` times the largest, ``[...]``."""
    o = check_tensor("outputs", outputs, floating=True, finite=True)
    if o.ndim < 2:
        raise ValueError(f"outputs must have shape [..., B, F], got shape {tuple(o.shape)}")
    rtol = check_float("rtol", rtol, minimum=0.0, strict_minimum=True)
    sv = torch.linalg.svdvals(o.to(torch.float64))
    top = sv[..., :1]
    return (sv > rtol * torch.where(top > 0, top, torch.ones_like(top))).sum(-1) * (top[..., 0] > 0)

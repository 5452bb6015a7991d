"""Notebooks 01-07, 09 (01, 02, 03, 04, 05, 06, 07, 09): elementwise and isotropic activation functions, their Jacobians, random orthogonal and permutation matrices.

Elementwise and isotropic activation functions, and tools to measure their symmetry
(:func:`equivariance_error`, :func:`random_orthogonal`, :func:`random_permutation`,
:func:`random_signed_permutation`). Derived in notebook 01
(``notebooks/01_symmetry_of_activations.ipynb``); used directly by notebooks 02-04
and, through :mod:`isodl.topology.network`, by notebooks 05-09.

Two families
------------
**Elementwise** (anisotropic) maps apply a scalar function ``sigma`` to each
coordinate of a *privileged basis*. In the standard basis this is the usual
``sigma(x)``. In a basis with unit rows ``b_1 .. b_K`` (a ``[K, n]`` matrix
``B``, ``K >= n``) it is

    f_B(x) = (n / K) * B^T sigma(B x),

which equals the ordinary elementwise map when ``B = I``. The factor ``n / K``
keeps the size of the output comparable for over-complete bases: for the tight
Thomson frames of notebook 02 (``B^T B = (K / n) I``) it makes ``f_B`` the
pseudo-inverse form ``B^+ sigma(B x)``. The normalisation is the course's choice
(the papers' exact one is not known). Such a map is equivariant only to the
discrete group of orthogonal maps that permute the basis vectors (and, for an
odd ``sigma`` such as tanh, flip their signs).

**Isotropic** maps act on the length of a vector and keep its direction:

    f(x) = sigma(rho) * x / rho,    rho = sqrt(|x|^2 + o),

with the optional *intrinsic length* ``o >= 0`` (a squared length, as in the
author's code for the adaptive-topology paper; ``o = 0`` gives the plain
``sigma(|x|) x / |x|``). Because ``|Rx| = |x|`` for every orthogonal ``R``,
``f(Rx) = R f(x)``: the whole continuous group O(n) is a symmetry and no
direction is privileged.

Numerics
--------
Every isotropic map here is written as ``h(rho) * x`` with the gain
``h(rho) = sigma(rho) / rho``, computed so that values and gradients are finite
for every finite input, in float32 and float64. There is one implementation,
used by every model of the course (the autoencoders of notebooks 03-04, the
isotropic MLP of notebooks 05-09), with two paths that give the same values to
rounding:

* **the plain path** (almost every batch): the squared length
  ``s = |x|^2 + o`` is a sum of squares, one pass over ``x``, and the gain is a
  function of ``s``. Lengths so small that their squares underflow are
  harmless: every gain is flat there (``h -> h(0)``) to far below rounding.
  Whether the plain path may be used is one cheap check per call: the largest
  ``s`` of the batch must be finite (a single reduction over one number per
  vector, no branching per element);
* **the guarded path**, taken for the whole call when that check fails (a
  length beyond about ``1e19`` in float32 or ``1e154`` in float64, an infinite
  or NaN entry, inside ``torch.func.vmap``): the length is computed after
  scaling by the largest entry, so norms such as ``1e30`` do not overflow
  (``(1e30)**2`` is infinite in float32), and zero vectors are handled apart.

On both paths the 0/0 of ``tanh(rho) / rho`` near the origin is replaced by
its Taylor series for ``rho < 1e-3`` (exact to float64 rounding there), at
``x = 0`` (with ``o = 0``) the output is ``h(0) * x``, the limit, whose
gradient is the Jacobian ``h(0) I`` at the origin (``I`` for tanh), and every
branch uses the "double where" pattern, so the branch that is not taken never
feeds NaN into a gradient. Both paths are plain tensor operations, so
gradients of any order (and forward-mode derivatives) are the exact ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from isodl.core.ops import unit_rows
from isodl.core.validate import check_choice, check_float, check_int, check_tensor

__all__ = [
    "ELEMENTWISE_ACTIVATIONS",
    "ISOTROPIC_ACTIVATIONS",
    "scalar_activation",
    "scalar_derivative",
    "elementwise",
    "elementwise_jacobian",
    "isotropic",
    "isotropic_tanh",
    "isotropic_relu",
    "isotropic_leaky_relu",
    "isotropic_gelu",
    "isotropic_gain",
    "isotropic_jacobian",
    "BasisActivation",
    "IsotropicActivation",
    "IsotropicTanh",
    "random_orthogonal",
    "random_permutation",
    "random_signed_permutation",
    "equivariance_error",
]

#: Scalar functions usable elementwise (in the standard basis or in any basis).
ELEMENTWISE_ACTIVATIONS = ("tanh", "relu", "leaky_relu", "gelu", "sigmoid", "identity")

#: Radial functions usable in the isotropic form sigma(rho) x / rho.
ISOTROPIC_ACTIVATIONS = ("tanh", "relu", "leaky_relu", "gelu", "identity")

# Below this length, tanh(rho) / rho is replaced by its Taylor series in rho^2.
_SMALL_RHO = 1e-3
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# --------------------------------------------------------------------------- argument helpers


def _as_input(name: str, x):
    """``(tensor, was_numpy)`` for a floating tensor or NumPy array with >= 1 dimension."""
    was_numpy = isinstance(x, np.ndarray)
    if was_numpy:
        if x.dtype.kind != "f":
            raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}")
        if any(s < 0 for s in x.strides):
            x = x.copy()
    t = check_tensor(name, x, floating=True)
    if t.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension (a vector or a batch of vectors), got a 0-d value")
    return t, was_numpy


def _out(t: torch.Tensor, was_numpy: bool):
    return t.detach().numpy() if was_numpy else t


def _check_dim(dim, ndim: int, shape) -> int:
    dim = check_int("dim", dim)
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim must be between {-ndim} and {ndim - 1} for x of shape {tuple(shape)}, got {dim}")
    return dim % ndim


def _check_o(o, like: torch.Tensor):
    """The intrinsic length: a float >= 0 or a 0-d tensor >= 0 (which may carry a gradient)."""
    if isinstance(o, torch.Tensor):
        if o.numel() != 1:
            raise ValueError(
                f"o must be a single number (a float or a 0-d tensor), got a tensor of shape {tuple(o.shape)}"
            )
        if not o.is_floating_point():
            raise TypeError(f"o must be a floating-point number, got dtype {o.dtype}")
        value = float(o.detach())
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"o (the intrinsic length, a squared length) must be finite and >= 0, got {value}")
        if o.ndim != 0:
            o = o.reshape(())
        if o.dtype != like.dtype:  # only when needed: each extra operation is a node in the autograd graph
            o = o.to(like.dtype)
        return o, value
    value = check_float("o", o, minimum=0.0)
    return value, value


def _check_negative_slope(negative_slope) -> float:
    return check_float("negative_slope", negative_slope, minimum=0.0, maximum=1.0)


# --------------------------------------------------------------------------- scalar functions


def scalar_activation(name: str, negative_slope: float = 0.01) -> Callable[[torch.Tensor], torch.Tensor]:
    """The scalar function ``sigma`` called ``name`` (one of :data:`ELEMENTWISE_ACTIVATIONS`).

    ``gelu`` is the exact ``t * Phi(t)`` (``Phi`` the standard normal CDF);
    ``leaky_relu`` uses ``negative_slope`` (default 0.01) for ``t < 0``.
    """
    name = check_choice("activation", name, ELEMENTWISE_ACTIVATIONS)
    alpha = _check_negative_slope(negative_slope)
    if name == "tanh":
        return torch.tanh
    if name == "relu":
        return torch.relu
    if name == "leaky_relu":
        return lambda t: torch.nn.functional.leaky_relu(t, alpha)
    if name == "gelu":
        return lambda t: t * 0.5 * (1.0 + torch.erf(t / _SQRT2))
    if name == "sigmoid":
        return torch.sigmoid
    return lambda t: t


def scalar_derivative(name: str, negative_slope: float = 0.01) -> Callable[[torch.Tensor], torch.Tensor]:
    """The derivative ``sigma'`` of :func:`scalar_activation` (ReLU's is taken as 0 at 0)."""
    name = check_choice("activation", name, ELEMENTWISE_ACTIVATIONS)
    alpha = _check_negative_slope(negative_slope)
    if name == "tanh":
        return lambda t: 1.0 - torch.tanh(t) ** 2
    if name == "relu":
        return lambda t: (t > 0).to(t.dtype)
    if name == "leaky_relu":
        return lambda t: torch.where(t > 0, torch.ones_like(t), torch.full_like(t, alpha))
    if name == "gelu":
        return lambda t: 0.5 * (1.0 + torch.erf(t / _SQRT2)) + t * _INV_SQRT_2PI * torch.exp(-0.5 * t * t)
    if name == "sigmoid":
        return lambda t: torch.sigmoid(t) * (1.0 - torch.sigmoid(t))
    return lambda t: torch.ones_like(t)


# --------------------------------------------------------------------------- elementwise maps


def _unit_basis(basis, n: int, like: torch.Tensor) -> torch.Tensor:
    b = check_tensor("basis", basis, ndim=2, floating=True, finite=True)
    if b.shape[1] != n:
        raise ValueError(
            f"basis must have one row per privileged direction and {n} columns (the dimension of x), "
            f"got shape {list(b.shape)}"
        )
    if b.shape[0] < n:
        raise ValueError(f"basis must have at least n = {n} rows (K >= n) to span the space, got {b.shape[0]}")
    b = b.to(device=like.device, dtype=like.dtype)
    norms = torch.linalg.vector_norm(b, dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("basis has a zero row; every privileged direction needs a non-zero vector")
    return b / norms


def elementwise(x, activation: str = "tanh", basis=None, *, negative_slope: float = 0.01, dim: int = -1):
    """Apply ``sigma`` coordinate by coordinate in the standard basis or in a privileged ``basis``.

    ``basis=None`` gives the ordinary ``sigma(x)``. A ``[K, n]`` basis (``K >= n``,
    rows normalised inside) gives ``f_B(x) = (n / K) B^T sigma(B x)`` applied to
    each vector along ``dim``; for ``B = I`` this is again ``sigma(x)``.
    Derived in notebook 01.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        Floating-point input; the vectors lie along ``dim`` (default: the last axis).
    activation : str
        One of :data:`ELEMENTWISE_ACTIVATIONS`.
    basis : tensor or array of shape [K, n], optional
        The privileged directions, one per row (any non-zero lengths).
    negative_slope : float
        Slope of ``leaky_relu`` for negative inputs.
    dim : int
        The axis holding the vectors.

    Returns
    -------
    Same type, shape and dtype as ``x``.
    """
    t, was_numpy = _as_input("x", x)
    sigma = scalar_activation(activation, negative_slope)
    if basis is None:
        return _out(sigma(t), was_numpy)
    d = _check_dim(dim, t.ndim, t.shape)
    moved = t.movedim(d, -1)
    n = moved.shape[-1]
    b = _unit_basis(basis, n, moved)
    k = b.shape[0]
    y = (n / k) * (sigma(moved @ b.T) @ b)
    return _out(y.movedim(-1, d), was_numpy)


def elementwise_jacobian(x, activation: str = "tanh", basis=None, *, negative_slope: float = 0.01):
    """The Jacobian of :func:`elementwise` at each vector of ``x`` (``[..., n]`` -> ``[..., n, n]``).

    ``J_B(x) = (n / K) B^T diag(sigma'(B x)) B``; for the standard basis it is
    ``diag(sigma'(x))``. Its eigenvectors are fixed to the basis (exactly the
    basis vectors when ``B`` is orthonormal) whatever ``x`` is.
    """
    t, was_numpy = _as_input("x", x)
    dsigma = scalar_derivative(activation, negative_slope)
    n = t.shape[-1]
    if basis is None:
        return _out(torch.diag_embed(dsigma(t)), was_numpy)
    b = _unit_basis(basis, n, t)
    k = b.shape[0]
    d = dsigma(t @ b.T)  # [..., K]
    jac = (n / k) * torch.einsum("ki,...k,kj->...ij", b, d, b)
    return _out(jac, was_numpy)


# --------------------------------------------------------------------------- isotropic maps


def _length(x: torch.Tensor, o, o_value: float, dim: int) -> torch.Tensor:
    """rho = sqrt(|x|^2 + o) along ``dim`` (keepdim), without overflow or underflow.

    The caller guarantees rho > 0 for every vector (zero vectors with o = 0 are
    replaced before the call), so the square root's gradient is finite.
    """
    m = x.detach().abs().amax(dim=dim, keepdim=True)
    m_safe = torch.where(m > 0, m, torch.ones_like(m))
    u = x / m_safe  # entries in [-1, 1]
    q = (u * u).sum(dim=dim, keepdim=True)
    r_est = m * q.detach().sqrt()
    big = torch.clamp(r_est, min=math.sqrt(o_value))  # max(|x|, sqrt(o)) <= rho, detached
    big = torch.where(big > 0, big, torch.ones_like(big))
    ratio = m_safe / big
    if o_value == 0.0:
        return big * torch.sqrt(ratio * ratio * q)
    root_o = torch.sqrt(o) if isinstance(o, torch.Tensor) else math.sqrt(o)
    inner = root_o / big  # <= 1; (sqrt(o) / big)^2 cannot underflow the way o / big^2 can
    return big * torch.sqrt(ratio * ratio * q + inner * inner)


def _gain(rho: torch.Tensor, activation: str, radius: float, alpha: float) -> torch.Tensor:
    """h(rho) = sigma(rho) / rho for rho > 0, with safe branches (see the module docstring)."""
    if activation == "identity":
        return torch.ones_like(rho)
    if activation == "tanh":
        small = rho.detach() < _SMALL_RHO
        rs = torch.where(small, rho, torch.zeros_like(rho))
        s = rs * rs
        h_small = 1.0 - s / 3.0 + 2.0 * s * s / 15.0 - 17.0 * s * s * s / 315.0
        rl = torch.where(small, torch.ones_like(rho), rho)
        return torch.where(small, h_small, torch.tanh(rl) / rl)
    if activation == "gelu":  # GELU(rho) / rho = Phi(rho)
        return 0.5 * (1.0 + torch.erf(rho / _SQRT2))
    # Shifted-radius ReLU and its leaky variant: sigma(rho) = max(rho - R, 0) (+ alpha * min(rho, R)).
    low = alpha if activation == "leaky_relu" else 0.0
    if radius == 0.0:
        return torch.ones_like(rho)
    above = rho.detach() > radius
    rl = torch.where(above, rho, torch.full_like(rho, 2.0 * radius))
    return torch.where(above, 1.0 - (1.0 - low) * radius / rl, torch.full_like(rho, low))


def _gain_at_zero(activation: str, radius: float, alpha: float) -> float:
    if activation in ("tanh", "identity"):
        return 1.0
    if activation == "gelu":
        return 0.5
    if radius == 0.0:
        return 1.0
    return alpha if activation == "leaky_relu" else 0.0


def _squared_length(x: torch.Tensor, o, o_value: float, dim: int) -> torch.Tensor:
    """s = |x|^2 + o along ``dim`` (keepdim) as a plain sum of squares: one pass over ``x``.

    ``o`` is left out when it is 0, as on the guarded path (so a 0-d tensor
    ``o = 0`` receives no gradient on either path).
    """
    s = (x * x).sum(dim=dim, keepdim=True)
    return s + o if o_value != 0.0 else s


def _plain_path_ok(s: torch.Tensor, activation: str, radius: float) -> bool:
    """True when the squared lengths ``s`` of the batch allow the plain path (see the module docstring).

    One reduction and one read of a single number: the largest ``s`` must be
    finite (this also rejects NaN). The shifted-radius ReLUs also need
    ``radius^2`` to be a finite number of the input's dtype. Inside
    ``torch.func`` transforms such as ``vmap`` a tensor cannot be read, and the
    guarded path (which needs no read) is used.
    """
    if s.numel() == 0:
        return False
    limit = torch.finfo(s.dtype).max
    if activation in ("relu", "leaky_relu") and not radius * radius <= limit:
        return False
    try:
        largest = float(s.detach().amax())
    except RuntimeError:  # a batched tensor inside torch.func.vmap cannot be read
        return False
    return largest <= limit


def _gain_of_square(s: torch.Tensor, activation: str, radius: float, alpha: float) -> torch.Tensor:
    """h = sigma(rho) / rho as a function of the squared length ``s = rho^2 >= 0`` (finite, may be 0).

    The branches of :func:`_gain`, written in ``s`` with as few operations as
    possible (this is the hot path of every isotropic model). A branch that is
    not taken gets a harmless stand-in (``s = 1``), so no NaN or infinity
    reaches a gradient; at ``s = 0`` the result is :func:`_gain_at_zero`. For
    tanh the series ``1 - s/3 + 2 s^2/15`` is used below ``s = 1e-6``: its
    error, ``17 s^3 / 315 < 6e-20``, is below float64 rounding of a number
    near 1.
    """
    if activation == "identity":
        return torch.ones_like(s)
    if activation == "tanh":
        small = s < _SMALL_RHO * _SMALL_RHO
        rho = torch.sqrt(torch.where(small, 1.0, s))
        return torch.where(small, 1.0 - s / 3.0 + (2.0 / 15.0) * s * s, torch.tanh(rho) / rho)
    if activation == "gelu":  # GELU(rho) / rho = Phi(rho), Phi(0) = 1/2; sqrt's slope is infinite at 0
        positive = s > 0
        rho = torch.sqrt(torch.where(positive, s, 1.0))
        return torch.where(positive, 0.5 * (1.0 + torch.erf(rho / _SQRT2)), 0.5)
    low = alpha if activation == "leaky_relu" else 0.0
    if radius == 0.0:
        return torch.ones_like(s)
    above = s > radius * radius
    rho = torch.sqrt(torch.where(above, s, 1.0))
    return torch.where(above, 1.0 - (1.0 - low) * radius / rho, low)


def _plain_gain(t: torch.Tensor, act: str, d: int, o_t, o_value: float, radius: float, alpha: float):
    """The gain ``h`` (keepdim) on the plain path, or ``None`` when this batch needs the guarded path."""
    s = _squared_length(t, o_t, o_value, d)
    if not _plain_path_ok(s, act, radius):
        return None
    return _gain_of_square(s, act, radius, alpha)


def _guarded_isotropic(t: torch.Tensor, act: str, d: int, o_t, o_value: float, radius: float, alpha: float):
    """:func:`isotropic` on the guarded path: scaled lengths and zero vectors handled apart."""
    zero = (t.detach() == 0).all(dim=d, keepdim=True) & (o_value == 0.0)
    safe = torch.where(zero, torch.ones_like(t), t)
    h = _gain(_length(safe, o_t, o_value, d), act, radius, alpha)
    return torch.where(zero, _gain_at_zero(act, radius, alpha) * t, h * safe)


def _guarded_gain(t: torch.Tensor, act: str, d: int, o_t, o_value: float, radius: float, alpha: float):
    """:func:`isotropic_gain` on the guarded path."""
    zero = (t.detach() == 0).all(dim=d, keepdim=True) & (o_value == 0.0)
    safe = torch.where(zero, torch.ones_like(t), t)
    h = _gain(_length(safe, o_t, o_value, d), act, radius, alpha)
    return torch.where(zero, torch.full_like(h, _gain_at_zero(act, radius, alpha)), h)


def _isotropic_parts(x, activation, o, radius, negative_slope, dim):
    t, was_numpy = _as_input("x", x)
    act = check_choice("activation", activation, ISOTROPIC_ACTIVATIONS)
    d = _check_dim(dim, t.ndim, t.shape)
    o_t, o_value = _check_o(o, t)
    radius = check_float("radius", radius, minimum=0.0)
    alpha = _check_negative_slope(negative_slope)
    return t, was_numpy, act, d, o_t, o_value, radius, alpha


def isotropic(
    x,
    activation: str = "tanh",
    *,
    o=0.0,
    radius: float = 1.0,
    negative_slope: float = 0.01,
    dim: int = -1,
):
    """The isotropic map ``f(x) = sigma(rho) x / rho`` with ``rho = sqrt(|x|^2 + o)``.

    Derived in notebook 01. ``f(R x) = R f(x)`` for every orthogonal ``R``.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        Floating-point input; each vector along ``dim`` is one object (its
        length is taken over that axis).
    activation : str
        The radial function ``sigma`` (one of :data:`ISOTROPIC_ACTIVATIONS`):

        * ``"tanh"``: ``tanh(rho)``; the output length is below 1;
        * ``"relu"``: the shifted-radius ReLU ``max(rho - R, 0)``, zero inside
          the ball of radius ``R = radius`` (the course's version of the
          author's unchecked isotropic ReLU);
        * ``"leaky_relu"``: ``max(rho - R, 0) + negative_slope * min(rho, R)``,
          continuous at ``rho = R`` and 0 at the origin;
        * ``"gelu"``: ``GELU(rho)``, so the gain is ``Phi(rho)``;
        * ``"identity"``: ``rho`` (``f(x) = x``).
    o : float or 0-d tensor, >= 0
        The intrinsic length, a *squared* length added under the root. A 0-d
        tensor may carry a gradient (see :class:`IsotropicActivation`).
    radius : float, >= 0
        ``R`` of the shifted-radius ReLU variants (ignored otherwise).
    negative_slope : float in [0, 1]
        The inner slope of ``leaky_relu``.
    dim : int
        The axis holding the vectors.

    Returns
    -------
    Same type, shape and dtype as ``x``. Finite values and gradients for every
    finite input, including ``x = 0`` and lengths ``1e-30`` or ``1e30``.
    """
    t, was_numpy, act, d, o_t, o_value, radius, alpha = _isotropic_parts(x, activation, o, radius, negative_slope, dim)
    h = _plain_gain(t, act, d, o_t, o_value, radius, alpha)
    out = h * t if h is not None else _guarded_isotropic(t, act, d, o_t, o_value, radius, alpha)
    return _out(out, was_numpy)


def isotropic_tanh(x, o=0.0, dim: int = -1):
    """Isotropic tanh, ``tanh(rho) x / rho`` with ``rho = sqrt(|x|^2 + o)``; finite at the origin.

    The isotropic counterpart of tanh used in the papers (the author's
    ``IsotropicTanh`` with the intrinsic length of the adaptive-topology code).
    Its output is shorter than 1, it equals ``x`` to first order near 0, and its
    Jacobian's eigenvalues lie in (0, 1] (it is 1-Lipschitz). Derived in
    notebook 01, where the learner writes it as an exercise. See :func:`isotropic`.
    """
    return isotropic(x, "tanh", o=o, dim=dim)


def isotropic_relu(x, radius: float = 1.0, o=0.0, dim: int = -1):
    """The shifted-radius isotropic ReLU ``max(rho - radius, 0) x / rho``; zero inside the ball."""
    return isotropic(x, "relu", o=o, radius=radius, dim=dim)


def isotropic_leaky_relu(x, radius: float = 1.0, negative_slope: float = 0.01, o=0.0, dim: int = -1):
    """``(max(rho - R, 0) + negative_slope * min(rho, R)) x / rho``: slope ``negative_slope`` inside the ball."""
    return isotropic(x, "leaky_relu", o=o, radius=radius, negative_slope=negative_slope, dim=dim)


def isotropic_gelu(x, o=0.0, dim: int = -1):
    """Isotropic GELU, ``GELU(rho) x / rho = Phi(rho) x``."""
    return isotropic(x, "gelu", o=o, dim=dim)


def isotropic_gain(
    x, activation: str = "tanh", *, o=0.0, radius: float = 1.0, negative_slope: float = 0.01, dim: int = -1
):
    """The scalar gain ``h(rho) = sigma(rho) / rho`` of each vector, so that ``isotropic(x) = h * x``.

    For a network that needs the gain itself, not only the mapped vector (the
    isotropic MLP of notebooks 05-09 multiplies its psi vectors by it). The
    same implementation as :func:`isotropic`, with the same guarantees:
    finite values and gradients (also with respect to a tensor ``o``) for every
    finite input, ``h(0)`` at the origin (1 for tanh, 1/2 for gelu).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        Floating-point input; each vector along ``dim`` is one object.
    activation, o, radius, negative_slope, dim
        As for :func:`isotropic`.

    Returns
    -------
    Same type and dtype as ``x``, with size 1 along ``dim`` (kept, so that
    ``h * x`` broadcasts).
    """
    t, was_numpy, act, d, o_t, o_value, radius, alpha = _isotropic_parts(x, activation, o, radius, negative_slope, dim)
    h = _plain_gain(t, act, d, o_t, o_value, radius, alpha)
    if h is None:
        h = _guarded_gain(t, act, d, o_t, o_value, radius, alpha)
    return _out(h, was_numpy)


def isotropic_jacobian(x, activation: str = "tanh", *, o=0.0, radius: float = 1.0, negative_slope: float = 0.01):
    """Closed-form Jacobian of :func:`isotropic` at each vector of ``x`` (``[..., n]`` -> ``[..., n, n]``).

    With ``r = |x|``, ``x_hat = x / r`` and the gain ``h(rho) = sigma(rho) / rho``,

        J(x) = h(rho) I + h'(rho) (r^2 / rho) x_hat x_hat^T.

    Its eigenvectors move with ``x``: every direction orthogonal to ``x`` has
    eigenvalue ``h(rho)`` (tangential), and ``x_hat`` itself has
    ``h(rho) + h'(rho) r^2 / rho`` (radial). For tanh with ``o = 0`` these are
    ``tanh(r) / r`` and ``sech(r)^2``, both in (0, 1]. At ``x = 0`` (with
    ``o = 0``), ``J = h(0) I``. Derived in notebook 01.
    """
    t, was_numpy = _as_input("x", x)
    t, _, act, _, o_t, o_value, radius, alpha = _isotropic_parts(t, activation, o, radius, negative_slope, -1)
    if isinstance(o_t, torch.Tensor):
        o_t = o_t.detach()
    t = t.detach()
    zero = (t == 0).all(dim=-1, keepdim=True) & (o_value == 0.0)
    safe = torch.where(zero, torch.ones_like(t), t)
    rho = _length(safe, o_t, o_value, -1)
    xhat = unit_rows(safe)
    m = safe.abs().amax(-1, keepdim=True)
    m = torch.where(m > 0, m, torch.ones_like(m))
    r = m * torch.linalg.vector_norm(safe / m, dim=-1, keepdim=True)
    ratio = r / rho
    h = _gain(rho, act, radius, alpha)
    if act == "identity":
        k = torch.zeros_like(rho)
    elif act == "tanh":
        small = rho < _SMALL_RHO
        s = torch.where(small, rho, torch.zeros_like(rho)) ** 2
        dh_ds = -1.0 / 3.0 + 4.0 * s / 15.0 - 51.0 * s * s / 315.0
        k_small = 2.0 * dh_ds * r * r  # h'(rho)/rho = 2 dh/ds
        rl = torch.where(small, torch.ones_like(rho), rho)
        sech2 = 1.0 - torch.tanh(rl) ** 2
        k_large = (sech2 - torch.tanh(rl) / rl) * ratio * ratio  # h'(rho) rho * (r/rho)^2
        k = torch.where(small, k_small, k_large)
    elif act == "gelu":  # h = Phi(rho), h' = phi(rho)
        k = _INV_SQRT_2PI * torch.exp(-0.5 * rho * rho) * r * ratio
    else:
        low = alpha if act == "leaky_relu" else 0.0
        above = rho > radius
        rl = torch.where(above, rho, torch.ones_like(rho))
        k = torch.where(above, (1.0 - low) * radius / rl * ratio * ratio, torch.zeros_like(rho))
    k = torch.where(zero, torch.zeros_like(k), k)
    h = torch.where(zero, torch.full_like(h, _gain_at_zero(act, radius, alpha)), h)
    eye = torch.eye(t.shape[-1], dtype=t.dtype, device=t.device)
    jac = h[..., None] * eye + k[..., None] * xhat[..., :, None] * xhat[..., None, :]
    return _out(jac, was_numpy)


# --------------------------------------------------------------------------- modules


class BasisActivation(nn.Module):
    """``nn.Module`` form of :func:`elementwise`: ``sigma`` applied in a fixed privileged basis.

    ``BasisActivation("tanh")`` is ``nn.Tanh()``; ``BasisActivation("tanh", Q)``
    applies ``(n / K) Q^T tanh(Q x)`` to the last axis. The basis is stored
    (normalised) as a buffer, so it moves with ``.to(device)`` but is not trained.
    """

    def __init__(self, activation: str = "tanh", basis=None, *, negative_slope: float = 0.01):
        super().__init__()
        self.activation = check_choice("activation", activation, ELEMENTWISE_ACTIVATIONS)
        self.negative_slope = _check_negative_slope(negative_slope)
        if basis is not None:
            b = check_tensor("basis", basis, ndim=2, floating=True, finite=True)
            b = _unit_basis(b, b.shape[1], b)
            self.register_buffer("basis", b.clone())
        else:
            self.basis = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return elementwise(x, self.activation, self.basis, negative_slope=self.negative_slope)

    def extra_repr(self) -> str:
        where = (
            "standard basis"
            if self.basis is None
            else f"basis of {self.basis.shape[0]} rows in {self.basis.shape[1]}-d"
        )
        return f"{self.activation}, {where}"


class IsotropicActivation(nn.Module):
    """``nn.Module`` form of :func:`isotropic`, acting on the last axis.

    ``learn_o=True`` makes the intrinsic length trainable as ``o = exp(log_o)``
    (always positive; it then needs an initial ``o > 0``, e.g. 1e-6 as in the
    author's experiments). Otherwise ``o`` is a fixed number.
    """

    def __init__(
        self,
        activation: str = "tanh",
        *,
        o: float = 0.0,
        learn_o: bool = False,
        radius: float = 1.0,
        negative_slope: float = 0.01,
    ):
        super().__init__()
        self.activation = check_choice("activation", activation, ISOTROPIC_ACTIVATIONS)
        o = check_float("o", o, minimum=0.0)
        if not isinstance(learn_o, (bool, np.bool_)):
            raise TypeError(f"learn_o must be True or False, got {learn_o!r}")
        self.radius = check_float("radius", radius, minimum=0.0)
        self.negative_slope = _check_negative_slope(negative_slope)
        self.learn_o = bool(learn_o)
        if self.learn_o:
            if o <= 0:
                raise ValueError(f"o must be > 0 when learn_o=True (it is stored as log o), got {o}")
            self.log_o = nn.Parameter(torch.tensor(math.log(o), dtype=torch.get_default_dtype()))
        else:
            self.o_fixed = o

    @property
    def o(self):
        """The intrinsic length in use (a tensor when trainable, else a float)."""
        return self.log_o.exp() if self.learn_o else self.o_fixed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.o
        if isinstance(o, torch.Tensor):
            o = o.to(x.dtype)
        return isotropic(x, self.activation, o=o, radius=self.radius, negative_slope=self.negative_slope)

    def extra_repr(self) -> str:
        o = f"o=exp(log_o)={float(self.o.detach()):.3g} (trainable)" if self.learn_o else f"o={self.o_fixed:g}"
        return f"{self.activation}, {o}"


class IsotropicTanh(IsotropicActivation):
    """``nn.Module`` form of :func:`isotropic_tanh` (optionally with a trainable intrinsic length)."""

    def __init__(self, o: float = 0.0, learn_o: bool = False):
        super().__init__("tanh", o=o, learn_o=learn_o)


# --------------------------------------------------------------------------- symmetry tools


def _generator(seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    return torch.Generator().manual_seed(seed)


def _dtype(dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype such as torch.float64, got {dtype!r}")
    return dtype


def random_orthogonal(n: int, seed=0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A random ``n x n`` orthogonal matrix, uniform (Haar) over O(n).

    QR decomposition of a Gaussian matrix, with the signs of ``R``'s diagonal
    moved into ``Q`` so the distribution is uniform. ``seed`` is an int or a
    ``torch.Generator``; the same seed gives the same matrix.
    """
    n = check_int("n", n, minimum=1)
    gen = _generator(seed)
    g = torch.randn(n, n, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    signs = torch.sign(torch.diagonal(r))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return (q * signs).to(_dtype(dtype))


def random_permutation(n: int, seed=0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A random ``n x n`` permutation matrix ``P`` (``(P x)_i = x_{pi(i)}``)."""
    n = check_int("n", n, minimum=1)
    perm = torch.randperm(n, generator=_generator(seed))
    return torch.eye(n, dtype=_dtype(dtype))[perm]


def random_signed_permutation(n: int, seed=0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A random ``n x n`` signed permutation matrix (the hyperoctahedral group: permute, then flip signs)."""
    n = check_int("n", n, minimum=1)
    gen = _generator(seed)
    perm = torch.randperm(n, generator=gen)
    signs = torch.randint(0, 2, (n,), generator=gen).to(_dtype(dtype)) * 2 - 1
    return signs[:, None] * torch.eye(n, dtype=_dtype(dtype))[perm]


def equivariance_error(fn: Callable, transform, x) -> float:
    """How far ``fn`` is from commuting with the linear map ``transform``: ``max_i |f(G x_i) - G f(x_i)|``.

    ``x`` is a batch of row vectors ``[N, n]`` and ``transform`` an ``[n, n]``
    matrix ``G``; ``fn`` maps ``[N, n]`` to ``[N, n]``. Returns the largest
    Euclidean distance over the batch, 0 (to rounding) when ``f`` is
    equivariant to ``G``.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function mapping [N, n] to [N, n], got {type(fn).__name__}")
    x = check_tensor("x", x, ndim=2, floating=True, finite=True)
    n = x.shape[1]
    g = check_tensor("transform", transform, shape=[n, n], floating=True, finite=True).to(x.dtype)
    with torch.no_grad():
        lhs = torch.as_tensor(fn(x @ g.T))
        rhs = torch.as_tensor(fn(x)) @ g.T
    if lhs.shape != x.shape or rhs.shape != x.shape:
        raise ValueError(f"fn must return an array of the input's shape {list(x.shape)}, got {list(lhs.shape)}")
    return float(torch.linalg.vector_norm((lhs - rhs).to(torch.float64), dim=1).max())

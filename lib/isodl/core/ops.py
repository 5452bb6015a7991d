"""Notebooks 00-07, 09 (00, 01, 02, 03, 04, 05, 06, 07, 09): small tensor operations, such as unit rows.

Small numerical building blocks shared by the notebooks. Each function here is
derived step by step in a notebook first (the notebook says which), then
imported from :mod:`isodl.core.ops` wherever it is needed, so the course uses one
tested version instead of many copies: :func:`unit_rows` is notebook 00's
exercise and normalises rows for :mod:`isodl.core.activations` (notebooks 01-09)
and :mod:`isodl.symmetry.srm` (notebooks 02-04).
"""

from __future__ import annotations

import numpy as np
import torch

from isodl.core.validate import check_int, check_tensor

__all__ = ["unit_rows"]


def unit_rows(x, dim: int = -1):
    """Scale every vector along ``dim`` to unit Euclidean length.

    ``unit_rows(x)`` returns ``x / ||x||`` row by row (``dim=-1``, the last
    axis). It is derived in notebook 00 (``notebooks/00_start_here.ipynb``),
    where the learner writes it as an exercise, and reused by later notebooks;
    for example the Spotlight Resonance Method normalises activation rows this
    way before measuring their angles to the probe directions.

    Two details make it safe on any input:

    * **Zero vectors stay exactly zero.** A zero row has no direction; dividing
      it by its norm would give ``0 / 0 = NaN``. Only rows with a positive norm
      are divided.
    * **No overflow or underflow.** Each row is first divided by its largest
      absolute entry, so the squares summed by the norm lie in ``[0, 1]``. The
      result is finite for rows whose entries are as small as ``1e-30`` or as
      large as ``1e30``, in float32 as well as float64 (a plain
      ``x / x.norm()`` returns zeros or NaN there in float32, because
      ``(1e-30)**2`` underflows to 0 and ``(1e30)**2`` overflows to inf).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        Floating-point input with at least one dimension. Rows containing NaN
        or infinity give NaN rows (they have no direction either).
    dim : int
        The axis whose vectors are normalised (negative values count from the
        end). Default ``-1``.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        A new array of the same type, shape and dtype as ``x``; a NumPy input
        gives a NumPy output. Gradients flow through it for tensors.

    Examples
    --------
    >>> unit_rows(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[0.6000, 0.8000],
            [0.0000, 0.0000]])
    """
    was_numpy = isinstance(x, np.ndarray)
    if was_numpy:
        if x.dtype.kind != "f":
            raise TypeError(f"x must be a floating-point array, got dtype {x.dtype}")
        if x.dtype not in (np.float16, np.float32, np.float64):
            raise TypeError(f"x must be float16, float32 or float64, got dtype {x.dtype}")
        if any(s < 0 for s in x.strides):  # torch cannot view negative strides
            x = x.copy()
    t = check_tensor("x", x, floating=True)
    if t.ndim < 1:
        raise ValueError(
            f"x must have at least 1 dimension (a vector or a batch of vectors), got a 0-d value {t.item()!r}"
        )
    dim = check_int("dim", dim)
    if not -t.ndim <= dim < t.ndim:
        raise ValueError(f"dim must be between {-t.ndim} and {t.ndim - 1} for x of shape {tuple(t.shape)}, got {dim}")

    if t.shape[dim] == 0:  # vectors of length 0: nothing to scale
        out = t.clone()
    else:
        # Largest absolute entry of each vector. The result is invariant to this
        # scale, so it needs no gradient of its own (detach keeps backward exact
        # and cheap).
        scale = t.detach().abs().amax(dim=dim, keepdim=True)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        scaled = t / scale  # entries in [-1, 1]; zero rows stay zero
        norm = torch.linalg.vector_norm(scaled, dim=dim, keepdim=True)
        out = scaled / torch.where(norm > 0, norm, torch.ones_like(norm))
    return out.detach().numpy() if was_numpy else out

"""Notebooks 10-12 (10, 11, 12): the affine divergence, one SGD step measured exactly, mini-batch kernels.

The Affine Divergence: how one SGD step moves activations. Notebooks 10
(``10_affine_divergence.ipynb``) and 11
(``11_normalisation_from_first_principles.ipynb``) derive everything here
(notebook 12 reuses the self-share curve);
the layers that correct the divergence are in :mod:`isodl.normalisation.layers`.

The one-step identity
---------------------
For one sample ``x`` and ``z = W x + b`` with ``g = dL/dz``, one plain SGD step
(rate ``lr``) moves the activation by exactly::

    dz = -lr * (|x|^2 + 1) * g

while steepest descent *in activation space* would move it by ``-lr * g``. The
sample-dependent factor ``|x|^2 + 1`` is the *divergence factor* (G. Bird,
"The Affine Divergence", arXiv 2512.22247, states the result; the derivation
and every numerical check here are the course's). With a mini-batch the step
is ``dz_m = -(lr/B) sum_n K_nm g_n`` with the kernel ``K = X~ X~^T``
(``x~ = [x; 1]``); the factor is its diagonal, the rest is cross-sample
interference.

What is in this module
----------------------
* Measurements: :func:`one_step` (the ratio ``|dz| / (lr |dL/dz|)`` after one
  real SGD step, for any layer; a :class:`OneStep`), :func:`conv_position_step`
  and :func:`token_step` (the gradient at one position or token; a
  :class:`LocalStep`).
* Predictions: :func:`minibatch_kernel`, :func:`predicted_minibatch_step`,
  :func:`self_term_share`, :func:`self_share_curve`, :func:`patch_matrix`,
  :func:`patch_sq_norms`, :func:`conv_kernel`, :func:`value_path_kernel`; the
  one-sample factor itself is :func:`isodl.normalisation.layers.affine_factor`.
* The batch step beside its ideal: :func:`step_alignment` (cosine with the
  ideal step and the self-term's share of the step *norm*, for any kernel and
  gradients), :func:`exact_batch_correction` (the parameter step that moves
  every sample of a batch by exactly its ideal step) and :func:`stack_step`
  (one layer of a deeper network when every layer steps).
* :func:`divergence_data`: the inputs of notebook 10's widget,
  :func:`isodl.normalisation.plots.plot_divergence`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from isodl.core.validate import check_bool, check_choice, check_float, check_int, check_tensor
from isodl.normalisation.layers import as_pair, augment, l2_normalize

__all__ = [
    "OneStep",
    "one_step",
    "LocalStep",
    "conv_position_step",
    "token_step",
    "minibatch_kernel",
    "predicted_minibatch_step",
    "self_term_share",
    "self_share_curve",
    "step_alignment",
    "exact_batch_correction",
    "alignment_curve",
    "step_size_spread_curve",
    "stack_step",
    "patch_matrix",
    "patch_sq_norms",
    "conv_kernel",
    "value_path_kernel",
    "divergence_data",
]


# --------------------------------------------------------------------------- measuring one SGD step


@dataclass
class OneStep:
    """What :func:`one_step` measured.

    ``z`` is the layer's output before the step, ``dz`` the change after it,
    ``grad`` the loss gradient ``dL/dz`` that the step descended (same shape
    as ``z``). The properties reduce over everything but the first (sample)
    dimension.
    """

    z: torch.Tensor
    dz: torch.Tensor
    grad: torch.Tensor
    lr: float
    batch: bool

    @property
    def ratio(self) -> torch.Tensor:
        """Per sample ``|dz| / (lr |dL/dz|)``: 1 for activation-space steepest descent (NaN where the gradient is 0)."""
        dz = self.dz.reshape(self.dz.shape[0], -1)
        g = self.grad.reshape(self.grad.shape[0], -1)
        gn = torch.linalg.vector_norm(g, dim=1)
        out = torch.linalg.vector_norm(dz, dim=1) / (self.lr * gn)
        return torch.where(gn > 0, out, torch.full_like(out, float("nan")))

    @property
    def cosine(self) -> torch.Tensor:
        """Per sample cosine between ``dz`` and ``-dL/dz``: 1 when the step points straight downhill."""
        dz = self.dz.reshape(self.dz.shape[0], -1)
        g = self.grad.reshape(self.grad.shape[0], -1)
        return -(dz * g).sum(dim=1) / (torch.linalg.vector_norm(dz, dim=1) * torch.linalg.vector_norm(g, dim=1))

    @property
    def unit_ratios(self) -> torch.Tensor:
        """``-dz / (lr dL/dz)`` entry by entry (NaN where the gradient is 0): the factor seen by each output unit."""
        safe = torch.where(self.grad != 0, self.grad, torch.ones_like(self.grad))
        out = -self.dz / (self.lr * safe)
        return torch.where(self.grad != 0, out, torch.full_like(out, float("nan")))


def _sgd_step_and_delta(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, lr: float):
    """On a copy of ``layer``: z = layer(x); one SGD step on L = sum(weight * z); return z and z' - z."""
    model = copy.deepcopy(layer)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("layer has no trainable parameters, so an SGD step cannot move its output")
    z = model(x)
    if not isinstance(z, torch.Tensor) or z.shape != weight.shape:
        raise ValueError(f"grad_out must have the shape of layer(x), {tuple(z.shape)}, got {tuple(weight.shape)}")
    grads = torch.autograd.grad((weight * z).sum(), params, allow_unused=True)
    with torch.no_grad():
        for p, gp in zip(params, grads):
            if gp is not None:
                p.sub_(lr * gp)
        z_new = model(x)
    return z.detach(), (z_new - z).detach()


def one_step(layer: nn.Module, x, grad_out=None, *, lr: float = 0.01, batch: bool = False, seed: int = 0) -> OneStep:
    """Take one plain SGD step through ``layer`` and measure how its output moved.

    The loss is linear in the output, ``L = sum_m g_m . z_m``, so its gradient
    is exactly ``g`` (``grad_out``, random N(0, 1) from ``seed`` if ``None``).

    * ``batch=False`` (default): every sample gets *its own* step, from the
      same starting parameters (a fresh copy of ``layer`` each time), as at
      batch size 1. ``OneStep.grad`` is ``g``.
    * ``batch=True``: one step on the mean loss ``(1/B) sum_m g_m . z_m`` over
      the whole batch. ``OneStep.grad`` is then ``dL/dz_m = g_m / B``, so the
      ratio is normalised by ``(lr / B) |g_m|`` (no spurious ``1/B``).

    ``layer`` itself is never changed. Every parameter with
    ``requires_grad=True`` is stepped (freeze the ones you want fixed). For
    layers whose output is linear in their parameters (affine, convolution,
    affine-like, a normaliser followed by a linear map, the attention value
    path) the measured change is exact, not a first-order estimate.
    Notebook 10.
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
    x = check_tensor("x", x, floating=True)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch with samples along dimension 0, got shape {tuple(x.shape)}")
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    batch = check_bool("batch", batch)
    seed = check_int("seed", seed, minimum=0)
    with torch.no_grad():
        z0 = layer(x)
    if grad_out is None:
        gen = torch.Generator().manual_seed(seed)
        g = torch.randn(z0.shape, generator=gen, dtype=torch.float64).to(z0.dtype)
    else:
        g = check_tensor("grad_out", grad_out, floating=True)
        if g.shape != z0.shape:
            raise ValueError(f"grad_out must have the shape of layer(x), {tuple(z0.shape)}, got {tuple(g.shape)}")
        g = g.to(z0.dtype)
    n = x.shape[0]
    if batch:
        z, dz = _sgd_step_and_delta(layer, x, g / n, lr)
        return OneStep(z=z, dz=dz, grad=g / n, lr=lr, batch=True)
    zs, dzs = [], []
    for m in range(n):
        z, dz = _sgd_step_and_delta(layer, x[m : m + 1], g[m : m + 1], lr)
        zs.append(z)
        dzs.append(dz)
    return OneStep(z=torch.cat(zs), dz=torch.cat(dzs), grad=g, lr=lr, batch=False)


@dataclass
class LocalStep:
    """A one-step measurement with the gradient placed at one position (or token) only.

    ``ratio[m]``: ``|dz_q| / (lr |g_q|)`` at that position for sample ``m``.
    ``leak[m, ...]``: at every position ``p``, the signed size of the induced
    step along ``-g_q``, ``-<dz_p, g_q> / (lr |g_q|^2)`` (so ``leak`` at ``q``
    is the ratio). For a convolution ``leak`` is the patch kernel
    ``P_p . P_q + 1``. ``step`` is the full :class:`OneStep`.
    """

    ratio: torch.Tensor
    leak: torch.Tensor
    step: OneStep


def _probe(layer: nn.Module, x, ndim: int, output: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Check ``layer`` and the ``ndim``-D input ``x``; return ``x`` and the layer's output on it (no gradient)."""
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
    x = check_tensor("x", x, ndim=ndim, floating=True)
    with torch.no_grad():
        z = layer(x)
    if z.ndim != ndim:
        raise ValueError(f"layer must return a {ndim}-D output {output}, got shape {tuple(z.shape)}")
    return x, z


def _gradient_at(z: torch.Tensor, where: tuple, seed) -> torch.Tensor:
    """A gradient shaped like ``z``: zero except ``z[where]``, standard normal there (float64 draws from ``seed``)."""
    seed = check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    g = torch.zeros(z.shape, dtype=z.dtype)
    g[where] = torch.randn(g[where].shape, generator=gen, dtype=torch.float64).to(z.dtype)
    return g


def conv_position_step(layer: nn.Module, x, position, *, lr: float = 0.01, seed: int = 0) -> LocalStep:
    """One SGD step per sample through a 2-D convolution-like ``layer`` with the gradient at one output position.

    ``x`` is ``[N, C, H, W]``; ``position = (i, j)`` indexes the layer's output
    ``[N, C_out, H_out, W_out]``. The gradient is random (from ``seed``) over the
    output channels at ``(i, j)`` and zero elsewhere. For ``nn.Conv2d`` the
    ratio is ``|P_q|^2 + 1`` and ``leak`` the map ``P_p . P_q + 1``; for the
    affine-like :class:`~isodl.normalisation.layers.PatchNorm2d` the ratio is 1 and ``leak`` the cosine
    of the augmented patches. Notebook 10.
    """
    x, z = _probe(layer, x, 4, "[N, C, H, W]")
    if not (isinstance(position, (tuple, list)) and len(position) == 2):
        raise TypeError(f"position must be a pair (row, column) of output indices, got {position!r}")
    i = check_int("position[0]", position[0], minimum=0, maximum=z.shape[2] - 1)
    j = check_int("position[1]", position[1], minimum=0, maximum=z.shape[3] - 1)
    g = _gradient_at(z, (slice(None), slice(None), i, j), seed)
    step = one_step(layer, x, g, lr=lr, batch=False)
    gq = g[:, :, i, j]  # [N, C]
    leak = -torch.einsum("ncpq,nc->npq", step.dz, gq) / (lr * (gq * gq).sum(dim=1)).view(-1, 1, 1)
    ratio = torch.linalg.vector_norm(step.dz[:, :, i, j], dim=1) / (lr * torch.linalg.vector_norm(gq, dim=1))
    return LocalStep(ratio=ratio, leak=leak, step=step)


def token_step(layer: nn.Module, x, token: int, *, lr: float = 0.01, seed: int = 0) -> LocalStep:
    """One SGD step per sample through a sequence layer ``[N, T, d] -> [N, T, d_out]`` with the gradient on one token.

    For :class:`~isodl.normalisation.layers.SingleHeadAttention` with
    :meth:`~isodl.normalisation.layers.SingleHeadAttention.freeze_pattern`
    the ratio is ``|sum_s A_ts x_s|^2 + 1``. ``leak`` has shape ``[N, T]``.
    Notebook 10.
    """
    x, z = _probe(layer, x, 3, "[N, T, d_out]")
    t = check_int("token", token, minimum=0, maximum=z.shape[1] - 1)
    g = _gradient_at(z, (slice(None), t, slice(None)), seed)
    step = one_step(layer, x, g, lr=lr, batch=False)
    gt = g[:, t, :]
    leak = -torch.einsum("nsc,nc->ns", step.dz, gt) / (lr * (gt * gt).sum(dim=1)).view(-1, 1)
    ratio = torch.linalg.vector_norm(step.dz[:, t, :], dim=1) / (lr * torch.linalg.vector_norm(gt, dim=1))
    return LocalStep(ratio=ratio, leak=leak, step=step)


# --------------------------------------------------------------------------- kernels (predictions)


def minibatch_kernel(x, bias: bool = True, normalised: bool = False) -> torch.Tensor:
    """The affine layer's tangent kernel on a batch: ``K = X~ X~^T``, i.e. ``K_nm = x_n . x_m + 1``.

    One SGD step on the batch's mean loss moves sample ``m`` by
    ``dz_m = -(lr/B) sum_n K_nm g_n``. ``bias=False`` drops the ``+ 1``.
    ``normalised=True`` gives the affine-like layer's kernel, the cosine
    similarities of the augmented inputs (unit diagonal). ``x`` is ``[B, d]``.
    Notebook 10.
    """
    x = check_tensor("x", x, ndim=2, floating=True)
    bias = check_bool("bias", bias)
    normalised = check_bool("normalised", normalised)
    xa = augment(x) if bias else x
    k = xa @ xa.T
    if normalised:
        s = torch.sqrt(torch.diagonal(k))
        k = k / (s[:, None] * s[None, :])
    return k


def predicted_minibatch_step(x, g, lr: float) -> torch.Tensor:
    """``-(lr/B) K g`` with ``K = X X^T + 1``: the exact step of ``z = W x + b`` under one SGD step on the mean loss.

    ``x`` is ``[B, d]``, ``g`` the per-sample loss gradients ``[B, out]``.
    The reference for notebook 10's exercise.
    """
    x = check_tensor("x", x, ndim=2, floating=True)
    g = check_tensor("g", g, ndim=2, floating=True)
    if g.shape[0] != x.shape[0]:
        raise ValueError(f"x and g must have one row per sample, got {x.shape[0]} and {g.shape[0]} rows")
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    return -(lr / x.shape[0]) * minibatch_kernel(x) @ g


def self_term_share(kernel) -> torch.Tensor:
    """For each sample ``m``, the share of its step's kernel weight that is its own: ``|K_mm| / sum_n |K_nm|``.

    1 at batch size 1; ``1 / (1 + (B - 1) c)`` when every off-diagonal entry
    has size ``c`` relative to the diagonal. For the affine-like layer
    (unit diagonal) it measures how much of sample ``m``'s step is the
    corrected, ideal term ``-lr g_m / B``; the rest is cross-sample
    interference, which the correction does not touch. Notebook 10.
    """
    k = check_tensor("kernel", kernel, ndim=2, floating=True)
    if k.shape[0] != k.shape[1]:
        raise ValueError(f"kernel must be square [B, B], got shape {tuple(k.shape)}")
    return torch.diagonal(k).abs() / k.abs().sum(dim=1)


def self_share_curve(
    x, batch_sizes: Sequence[int], *, kind: str = "affine_like", n_batches: int = 20, seed: int = 0
) -> np.ndarray:
    """Mean :func:`self_term_share` over ``n_batches`` random batches (drawn without replacement) of each size.

    ``kind``: ``"affine"`` (``K = X X^T + 1``), ``"l2"`` (L2 pre-normaliser
    then affine: ``K = X^ X^^T + 1``) or ``"affine_like"`` (cosines of the
    augmented inputs). Returns a NumPy array, one value per batch size.
    The mechanistic curve beside the batch-size experiment (notebooks 10, 11).
    """
    x = check_tensor("x", x, ndim=2, floating=True)
    kind = check_choice("kind", kind, ("affine", "l2", "affine_like"))
    n_batches = check_int("n_batches", n_batches, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty sequence of ints, got {batch_sizes!r}")
    sizes = [check_int(f"batch_sizes[{i}]", b, minimum=1, maximum=x.shape[0]) for i, b in enumerate(batch_sizes)]
    x = x.to(torch.float64)
    if kind == "l2":
        x = l2_normalize(x)
    gen = torch.Generator().manual_seed(seed)
    largest = max(sizes)
    totals = np.zeros(len(sizes))
    for _ in range(n_batches):
        # One random batch of the largest size; its first b samples are a random batch of size b.
        idx = torch.randperm(x.shape[0], generator=gen)[:largest]
        k = minibatch_kernel(x[idx], normalised=(kind == "affine_like")).abs()
        for i, b in enumerate(sizes):
            sub = k[:b, :b]
            totals[i] += float((torch.diagonal(sub) / sub.sum(dim=1)).mean())
    out = totals / n_batches
    return np.asarray(out)


def step_alignment(kernel, g) -> tuple[torch.Tensor, torch.Tensor]:
    """How a batch step ``dz_m ~ -sum_n K_nm g_n`` compares with the ideal step ``-g_m``, sample by sample.

    Returns ``(cosine, self_fraction)``: the cosine between ``(K g)_m`` and
    ``g_m`` (1 when the step points exactly at the ideal step), and the
    self-term's share of the step's *norm*, ``|K_mm| |g_m| / |(K g)_m|``.
    Unlike :func:`self_term_share` both look at the gradients, not only at the
    kernel: off-diagonal pushes by independent gradients partly cancel.
    ``kernel`` is ``[B, B]``, ``g`` is ``[B, out]``. Notebook 10.
    """
    k = check_tensor("kernel", kernel, ndim=2, floating=True)
    if k.shape[0] != k.shape[1]:
        raise ValueError(f"kernel must be square [B, B], got shape {tuple(k.shape)}")
    g = check_tensor("g", g, ndim=2, floating=True)
    if g.shape[0] != k.shape[0]:
        raise ValueError(f"g must have one row per kernel row ({k.shape[0]}), got {g.shape[0]} rows")
    kg = k @ g.to(k.dtype)
    g = g.to(k.dtype)
    gn = torch.linalg.vector_norm(g, dim=1)
    kn = torch.linalg.vector_norm(kg, dim=1)
    cosine = (kg * g).sum(dim=1) / (kn * gn)
    fraction = torch.diagonal(k).abs() * gn / kn
    return cosine, fraction


def exact_batch_correction(x, g, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The parameter step of ``z = W x + b`` that moves every sample of the batch by exactly ``-(lr/B) g_m``.

    Plain SGD on the mean loss steps ``W~ = [W b]`` by ``-(lr/B) G^T X~``, which
    moves the batch by ``-(lr/B) K G`` (``K = X~ X~^T``). Replacing ``X~`` by
    ``K^-1 X~`` undoes the kernel: ``dW~ = -(lr/B) G^T K^-1 X~`` gives
    ``dZ = X~ dW~^T = -(lr/B) G`` exactly, the ideal step for every sample,
    interference included. It needs ``K`` invertible (``B <= d + 1`` samples
    in general position); otherwise the pseudo-inverse gives the least-squares
    step, the closest the layer can get. Returns ``(dW, db)``. Notebook 10:
    the ideal that the affine-like layer approximates only on the diagonal.
    """
    x = check_tensor("x", x, ndim=2, floating=True)
    g = check_tensor("g", g, ndim=2, floating=True)
    if g.shape[0] != x.shape[0]:
        raise ValueError(f"x and g must have one row per sample, got {x.shape[0]} and {g.shape[0]} rows")
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    xa = augment(x)
    # G^T K^-1 X~ = (X~^+ G)^T when X~ has full row rank; the SVD-based pseudo-inverse is the better conditioned route
    # and gives the least-squares step otherwise.
    step = -(lr / x.shape[0]) * (torch.linalg.pinv(xa) @ g.to(xa.dtype)).T
    return step[:, :-1], step[:, -1]


def _curve_inputs(x, batch_sizes, n_out, seed):
    """Checked inputs of the batch-size curves: float64 ``x``, the batch sizes, ``n_out`` and a seeded generator."""
    x = check_tensor("x", x, ndim=2, floating=True)
    n_out = check_int("n_out", n_out, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty sequence of ints, got {batch_sizes!r}")
    sizes = [check_int(f"batch_sizes[{i}]", b, minimum=1, maximum=x.shape[0]) for i, b in enumerate(batch_sizes)]
    return x.to(torch.float64), sizes, n_out, torch.Generator().manual_seed(seed)


def alignment_curve(
    x, batch_sizes: Sequence[int], *, kind: str = "affine_like", n_out: int = 10, n_batches: int = 8, seed: int = 0
) -> np.ndarray:
    """Mean cosine between one SGD step's activation change and the ideal step ``-g_m``, against the batch size.

    Random batches of ``x`` (without replacement) and independent N(0, 1)
    gradients ``g`` with ``n_out`` outputs. ``kind``: ``"affine"``
    (``K = X~ X~^T``), ``"affine_like"`` (cosines of the augmented inputs) or
    ``"exact"`` (:func:`exact_batch_correction`: cosine 1 while the kernel is
    invertible, ``B <= d + 1``; beyond that the least-squares step). Returns
    one mean cosine per batch size. Notebook 10.
    """
    kind = check_choice("kind", kind, ("affine", "affine_like", "exact"))
    n_batches = check_int("n_batches", n_batches, minimum=1)
    x, sizes, n_out, gen = _curve_inputs(x, batch_sizes, n_out, seed)
    out = np.zeros(len(sizes))
    for i, b in enumerate(sizes):
        for _ in range(n_batches):
            xb = x[torch.randperm(x.shape[0], generator=gen)[:b]]
            g = torch.randn(b, n_out, generator=gen, dtype=torch.float64)
            if kind == "exact":
                dw, db = exact_batch_correction(xb, g, 1.0)
                step = -(xb @ dw.T + db)
                cos = (step * g).sum(1) / (torch.linalg.vector_norm(step, dim=1) * torch.linalg.vector_norm(g, dim=1))
            else:
                cos, _ = step_alignment(minibatch_kernel(xb, normalised=(kind == "affine_like")), g)
            out[i] += float(cos.mean()) / n_batches
    return out


def step_size_spread_curve(
    x, batch_sizes: Sequence[int], *, kind: str = "affine_like", n_out: int = 10, n_samples: int = 512, seed: int = 0
) -> np.ndarray:
    """How unequal the samples' step *sizes* are, against the batch size: ``log10(q90 / q10)`` of ``|(K g)_m| / |g_m|``.

    The quantity the per-sample correction fixes is the size of each sample's
    activation step relative to its ideal step. For random batches of ``x``
    with independent N(0, 1) gradients ``g`` (``n_out`` outputs), the ratio
    ``r_m = |(K g)_m| / |g_m|`` is pooled over at least ``n_samples`` samples
    per batch size, and its spread is the width of its middle 80 % in decades
    (0: every sample's step has the same size relative to its ideal step). At
    ``B = 1`` it is the spread of ``|x|^2 + 1`` for ``kind="affine"`` and
    exactly 0 for ``"affine_like"``. Unlike :func:`self_term_share` and the
    cosine of :func:`alignment_curve` it sees magnitudes. Notebook 10.
    """
    kind = check_choice("kind", kind, ("affine", "affine_like"))
    n_samples = check_int("n_samples", n_samples, minimum=10)
    x, sizes, n_out, gen = _curve_inputs(x, batch_sizes, n_out, seed)
    out = np.zeros(len(sizes))
    for i, b in enumerate(sizes):
        ratios = []
        for _ in range(math.ceil(n_samples / b)):
            xb = x[torch.randperm(x.shape[0], generator=gen)[:b]]
            g = torch.randn(b, n_out, generator=gen, dtype=torch.float64)
            kg = minibatch_kernel(xb, normalised=(kind == "affine_like")) @ g
            ratios.append(torch.linalg.vector_norm(kg, dim=1) / torch.linalg.vector_norm(g, dim=1))
        r = torch.cat(ratios).numpy()
        out[i] = float(np.log10(np.quantile(r, 0.9) / np.quantile(r, 0.1)))
    return out


def stack_step(model: nn.Module, layer: nn.Module, x, *, lr: float = 1e-4, only_layer: bool = False, seed: int = 0):
    """One SGD step through a whole network, measured at the output of one of its layers, sample by sample.

    For each sample (batch size 1, a fresh copy of ``model`` each time) the
    loss is ``L = g . model(x)`` with a random ``g`` (from ``seed``). The step
    moves *every* trainable parameter (or only ``layer``'s with
    ``only_layer=True``) and the returned :class:`OneStep` compares the change
    of ``layer``'s output with ``-lr dL/dz`` at that layer. With
    ``only_layer=True`` an affine-like layer gives ratio 1 exactly; with every
    layer stepping, the layers below also move its input, so the correction
    holds per layer, not per network. Through nonlinear layers the change is
    first order in ``lr``: keep ``lr`` small. Notebook 10.
    """
    if not isinstance(model, nn.Module) or not isinstance(layer, nn.Module):
        raise TypeError("model and layer must be torch.nn.Module instances (layer a submodule of model)")
    index = next((i for i, m in enumerate(model.modules()) if m is layer), None)
    if index is None:
        raise ValueError("layer must be a submodule of model")
    x = check_tensor("x", x, ndim=2, floating=True)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    only_layer = check_bool("only_layer", only_layer)
    seed = check_int("seed", seed, minimum=0)
    with torch.no_grad():
        out = model(x)
    gen = torch.Generator().manual_seed(seed)
    g_out = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)
    zs, dzs, grads = [], [], []
    for m in range(x.shape[0]):
        net = copy.deepcopy(model)
        target = list(net.modules())[index]
        seen = {}
        handle = target.register_forward_hook(lambda mod, inp, z: seen.__setitem__("z", z))
        try:
            out = net(x[m : m + 1])
            z = seen["z"]
            params = [p for p in (target if only_layer else net).parameters() if p.requires_grad]
            loss = (g_out[m : m + 1] * out).sum()
            *pgrads, dz_grad = torch.autograd.grad(loss, [*params, z])
            with torch.no_grad():
                for p, gp in zip(params, pgrads):
                    p.sub_(lr * gp)
                net(x[m : m + 1])
            z_new = seen["z"]
        finally:
            handle.remove()
        zs.append(z.detach())
        dzs.append((z_new - z).detach())
        grads.append(dz_grad.detach())
    return OneStep(z=torch.cat(zs), dz=torch.cat(dzs), grad=torch.cat(grads), lr=lr, batch=False)


def patch_matrix(x, kernel_size, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """The input patches of a 2-D convolution: ``[N, L, C * kh * kw]``, one row per output position (row-major).

    Row ``q`` is ``P_q``, the receptive field of output position ``q``
    (``torch.nn.functional.unfold``). Notebook 10.
    """
    x = check_tensor("x", x, ndim=4, floating=True)
    k = as_pair("kernel_size", kernel_size, 1)
    cols = F.unfold(
        x,
        k,
        dilation=as_pair("dilation", dilation, 1),
        padding=as_pair("padding", padding, 0),
        stride=as_pair("stride", stride, 1),
    )
    return cols.transpose(1, 2)


def patch_sq_norms(x, kernel_size, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """``|P_q|^2`` at every output position, ``[N, 1, H_out, W_out]``: a ones-kernel convolution of ``x^2``.

    The same computation :class:`~isodl.normalisation.layers.PatchNorm2d` does internally.
    """
    x = check_tensor("x", x, ndim=4, floating=True)
    k = as_pair("kernel_size", kernel_size, 1)
    ones = torch.ones(1, x.shape[1], *k, dtype=x.dtype, device=x.device)
    return F.conv2d(
        x * x,
        ones,
        None,
        stride=as_pair("stride", stride, 1),
        padding=as_pair("padding", padding, 0),
        dilation=as_pair("dilation", dilation, 1),
    )


def conv_kernel(
    x, kernel_size, stride=1, padding=0, dilation=1, *, bias: bool = True, normalised: bool = False
) -> torch.Tensor:
    """The convolution's tangent kernel over all (sample, position) pairs: ``K = P~ P~^T``, ``[N L, N L]``.

    Entry ``((n, p), (m, q))`` is ``P_{n,p} . P_{m,q} + 1``. One SGD step on the
    mean loss over the ``N`` samples moves output channel ``c`` by
    ``dz = -(lr/N) K g`` (flattened sample-major, positions row-major): weight
    sharing makes positions behave like extra samples. ``normalised=True`` is
    the affine-like :class:`~isodl.normalisation.layers.PatchNorm2d`'s kernel (cosines of augmented patches).
    """
    bias = check_bool("bias", bias)
    normalised = check_bool("normalised", normalised)
    p = patch_matrix(x, kernel_size, stride, padding, dilation)
    return minibatch_kernel(p.reshape(-1, p.shape[-1]), bias=bias, normalised=normalised)


def value_path_kernel(x, pattern, *, bias: bool = True) -> torch.Tensor:
    """The attention value path's kernel with the pattern held fixed, over all (sample, token) pairs.

    With ``r_t = sum_s A_ts x~_s`` the value output is ``W~ r_t``, so the
    kernel is ``R R^T`` (``[N T, N T]``); for rows of ``A`` summing to 1 it is
    ``A X X^T A^T + 1`` within a sample, and its diagonal is the factor
    ``|sum_s A_ts x_s|^2 + 1``. ``x``: ``[N, T, d]``, ``pattern``: ``[N, T, T]``.
    """
    x = check_tensor("x", x, ndim=3, floating=True)
    a = check_tensor("pattern", pattern, ndim=3, floating=True)
    if a.shape != (x.shape[0], x.shape[1], x.shape[1]):
        raise ValueError(
            f"pattern must have shape [N, T, T] = {[x.shape[0], x.shape[1], x.shape[1]]}, got {list(a.shape)}"
        )
    bias = check_bool("bias", bias)
    xa = augment(x) if bias else x
    r = (a.to(xa.dtype) @ xa).reshape(-1, xa.shape[-1])
    return r @ r.T


# --------------------------------------------------------------------------- widget (notebook 10)

_DATA_CACHE: dict = {}


def divergence_data(name: str = "mnist1d") -> torch.Tensor:
    """Inputs for :func:`~isodl.normalisation.plots.plot_divergence`: MNIST-1D training signals or isotropic Gaussian vectors (d = 40), float64."""
    name = check_choice("data", name, ("mnist1d", "gaussian"))
    if name not in _DATA_CACHE:
        if name == "mnist1d":
            from isodl.core.data import mnist1d

            x = mnist1d().x_train.to(torch.float64)
        else:
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(4000, 40, generator=gen, dtype=torch.float64)
        _DATA_CACHE[name] = x
    return _DATA_CACHE[name].clone()

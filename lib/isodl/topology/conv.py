"""Notebook 06: diagonalising convolutional layers whose activation is isotropic over the channels of each pixel.

A convolutional network with an isotropic activation applied to the channel
vector at every pixel (the author's isotropic convolution takes the norm over
channels per pixel) has the same symmetry as an MLP, one orthogonal ``Q`` per
hidden layer, shared by every pixel and every kernel tap:

* :func:`rotate_channels` -- ``K_k -> Q^T K_k`` on the output channels,
  ``b_k -> Q^T b_k``, ``K_(k+1) -> K_(k+1) Q`` on the input channels of every
  tap; the function is unchanged;
* :func:`left_partial_diagonalise_conv` -- ``Q = U`` from the SVD of the kernel
  reshaped to ``c_out x (c_in k_h k_w)``: the reshaped rows become orthogonal and
  ordered by strength, for any kernel size;
* :func:`full_diagonalise_1x1` -- full diagonalisation needs one input rotation
  that diagonalises every tap at once; a 1x1 kernel has one tap, so it works;
* :func:`full_diagonalise_conv` -- the attempt for any kernel size: ``(U, V)``
  from the SVD of a random combination of the taps; it makes every tap
  diagonal exactly when the taps share their singular vectors (a kernel built
  by :func:`common_diagonal_kernel`, the positive control), and generically it
  does not; it returns the off-diagonal fraction left;
* :func:`tap_obstruction` -- a common ``(U, V)`` with ``U^T A_t V`` diagonal
  for every tap ``A_t`` exists only if every ``A_s A_t^T`` and every
  ``A_s^T A_t`` is symmetric (necessary; that the two together are also
  sufficient is the Eckart-Young theorem on simultaneous SVDs, cited, not
  derived here); this measures how far a kernel is from that.

:func:`conv_forward` runs such a network (``same`` padding, isotropic tanh
over channels after every layer but the last). The derivation is the course's
own; the paper's abstract states that kernels diagonalise too.

Science: ``shared/science/isotropic_topologies.md`` (G. Bird, arXiv 2602.23405).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from isodl.core.validate import check_generator, check_int, check_tensor

__all__ = [
    "isotropic_tanh_channels",
    "conv_forward",
    "rotate_channels",
    "left_partial_diagonalise_conv",
    "full_diagonalise_1x1",
    "full_diagonalise_conv",
    "common_diagonal_kernel",
    "tap_obstruction",
]


def isotropic_tanh_channels(z: torch.Tensor) -> torch.Tensor:
    """Isotropic tanh of each pixel's channel vector: ``z [N, C, H, W] -> tanh(|z|) z / |z|`` over ``C`` (0 at 0)."""
    z = check_tensor("z", z, ndim=4, floating=True)
    r = torch.linalg.vector_norm(z, dim=1, keepdim=True)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    return torch.where(r > 0, torch.tanh(safe) / safe, torch.ones_like(r)) * z


def _check_net(kernels: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> None:
    if len(kernels) != len(biases) or len(kernels) < 2:
        raise ValueError("kernels and biases must be sequences of the same length, at least 2 layers")
    for i, (k, b) in enumerate(zip(kernels, biases)):
        check_tensor(f"kernels[{i}]", k, ndim=4, floating=True)
        check_tensor(f"biases[{i}]", b, ndim=1, floating=True)
        if b.shape[0] != k.shape[0] or k.shape[2] % 2 == 0 or k.shape[3] % 2 == 0:
            raise ValueError(f"layer {i}: need odd kernel sizes and one bias per output channel, got {list(k.shape)}")
        if i > 0 and k.shape[1] != kernels[i - 1].shape[0]:
            raise ValueError(
                f"kernels[{i}] reads {k.shape[1]} channels, but layer {i - 1} has {kernels[i - 1].shape[0]}"
            )


def conv_forward(
    kernels: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], x: torch.Tensor, *, elementwise: bool = False
) -> torch.Tensor:
    """Stride-1 ``same`` convolutions with isotropic tanh over channels after every layer but the last
    (``elementwise=True``: ordinary tanh, the control); returns the last layer's feature map."""
    _check_net(kernels, biases)
    h = check_tensor("x", x, ndim=4, floating=True)
    for i, (k, b) in enumerate(zip(kernels, biases)):
        h = F.conv2d(h, k, b, padding=(k.shape[2] // 2, k.shape[3] // 2))
        if i < len(kernels) - 1:
            h = torch.tanh(h) if elementwise else isotropic_tanh_channels(h)
    return h


def rotate_channels(kernels, biases, layer: int, q: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Re-express hidden layer ``layer``'s channels in the basis of ``q``'s columns (new lists; inputs untouched)."""
    _check_net(kernels, biases)
    k = check_int("layer", layer, minimum=0, maximum=len(kernels) - 2)
    c = kernels[k].shape[0]
    q = check_tensor("q", q, shape=(c, c), floating=True).to(kernels[k].dtype)
    ks, bs = [t.clone() for t in kernels], [t.clone() for t in biases]
    ks[k] = torch.einsum("oi,ojhw->ijhw", q, kernels[k])  # Q^T K on the output channels
    bs[k] = q.T @ biases[k]
    ks[k + 1] = torch.einsum("ojhw,ji->oihw", kernels[k + 1], q)  # K Q on the input channels, every tap
    return ks, bs


def left_partial_diagonalise_conv(kernels, biases, layer: int):
    """Rotate hidden layer ``layer`` by ``U`` of ``K_k`` reshaped to ``c_out x (c_in k_h k_w)``; returns
    ``(kernels, biases, singular values)``. Exact for every kernel size."""
    _check_net(kernels, biases)
    k = check_int("layer", layer, minimum=0, maximum=len(kernels) - 2)
    u, s, _ = torch.linalg.svd(kernels[k].reshape(kernels[k].shape[0], -1), full_matrices=True)
    ks, bs = rotate_channels(kernels, biases, k, u)
    return ks, bs, s


def full_diagonalise_1x1(kernels, biases, layer: int):
    """Make the 1x1 kernel ``K_layer`` (``1 <= layer <= L-2``) channel-diagonal by rotating hidden layers
    ``layer`` (by ``U``) and ``layer - 1`` (by ``V``); returns ``(kernels, biases, singular values)``."""
    _check_net(kernels, biases)
    k = check_int("layer", layer, minimum=1, maximum=len(kernels) - 2)
    if kernels[k].shape[2:] != (1, 1):
        raise ValueError(
            f"full_diagonalise_1x1 needs a 1x1 kernel, got {tuple(kernels[k].shape[2:])}: a larger kernel has one "
            "matrix per tap and one input rotation cannot diagonalise them all (see tap_obstruction)"
        )
    u, s, vh = torch.linalg.svd(kernels[k][:, :, 0, 0], full_matrices=True)
    ks, bs = rotate_channels(kernels, biases, k, u)
    ks, bs = rotate_channels(ks, bs, k - 1, vh.T)
    diag = torch.zeros_like(ks[k])
    r = s.numel()
    diag[torch.arange(r), torch.arange(r), 0, 0] = s
    ks[k] = diag  # exact zeros off the diagonal
    return ks, bs, s


def _offdiagonal_taps(kernel: torch.Tensor) -> float:
    """``|off-diagonal part|_F / |kernel|_F`` over all taps (channel indices ``(i, i)`` are the diagonal)."""
    total = float(torch.linalg.vector_norm(kernel))
    if total == 0.0:
        return 0.0
    off = kernel.clone()
    r = min(kernel.shape[0], kernel.shape[1])
    off[torch.arange(r), torch.arange(r)] = 0.0
    return float(torch.linalg.vector_norm(off)) / total


def full_diagonalise_conv(kernels, biases, layer: int, *, generator: torch.Generator | None = None):
    """Try to make every tap of ``K_layer`` (``1 <= layer <= L-2``, any odd kernel size) channel-diagonal.

    ``(U, V)`` come from the SVD of ``sum_t c_t A_t`` with Gaussian ``c_t``
    (``generator``); hidden layer ``layer`` is rotated by ``U`` and layer
    ``layer - 1`` by ``V`` (exact: the function is unchanged whatever the
    outcome). If the taps share singular vectors (and the combination's
    singular values are distinct, true with probability 1), every tap becomes
    diagonal; otherwise they stay far from it. Nothing is zeroed by hand.
    Returns ``(kernels, biases, off-diagonal fraction of the rotated kernel)``.
    """
    _check_net(kernels, biases)
    k = check_int("layer", layer, minimum=1, maximum=len(kernels) - 2)
    gen = check_generator(generator) or torch.Generator().manual_seed(0)
    kernel = kernels[k].detach()
    c = torch.randn(kernel.shape[2] * kernel.shape[3], generator=gen, dtype=torch.float64).to(kernel.dtype)
    combo = (kernel.reshape(kernel.shape[0], kernel.shape[1], -1) * c).sum(-1)
    u, _, vh = torch.linalg.svd(combo, full_matrices=True)
    ks, bs = rotate_channels(kernels, biases, k, u)
    ks, bs = rotate_channels(ks, bs, k - 1, vh.T)
    return ks, bs, _offdiagonal_taps(ks[k])


def common_diagonal_kernel(
    c_out: int, c_in: int, size: int = 3, *, generator: torch.Generator | None = None, dtype=torch.float64
) -> torch.Tensor:
    """A ``c_out x c_in x size x size`` kernel whose taps are ``U D_t V^T`` with one random ``(U, V)`` and random
    rectangular-diagonal ``D_t``: the positive control of :func:`full_diagonalise_conv`."""
    c_out = check_int("c_out", c_out, minimum=1)
    c_in = check_int("c_in", c_in, minimum=1)
    size = check_int("size", size, minimum=1)
    if size % 2 == 0:
        raise ValueError(f"size must be odd, got {size}")
    gen = check_generator(generator) or torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(c_out, c_out, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(c_in, c_in, generator=gen, dtype=torch.float64))
    r = min(c_out, c_in)
    taps = []
    for _ in range(size * size):
        d = torch.zeros(c_out, c_in, dtype=torch.float64)
        d[torch.arange(r), torch.arange(r)] = torch.randn(r, generator=gen, dtype=torch.float64) / c_in
        taps.append(u @ d @ v.T)
    return torch.stack(taps, dim=-1).reshape(c_out, c_in, size, size).to(dtype)


def tap_obstruction(kernel: torch.Tensor) -> float:
    """``max_(s,t)`` of ``|A_s A_t^T - A_t A_s^T|_F`` and ``|A_s^T A_t - A_t^T A_s|_F``, over ``|A_s|_F |A_t|_F``.

    The taps are ``A_t = K[:, :, i, j]``. If ``U^T A_t V = D_t`` (diagonal) for every tap, then
    ``A_s A_t^T = U D_s D_t^T U^T`` and ``A_s^T A_t = V D_s^T D_t V^T`` are symmetric, so a common full
    diagonalisation needs this to be 0 (necessary; sufficiency is the Eckart-Young theorem, cited). It is 0
    for a 1x1 kernel trivially (one tap), near round-off for :func:`common_diagonal_kernel`, and of order 1
    for a generic larger kernel.
    """
    kernel = check_tensor("kernel", kernel, ndim=4, floating=True).detach().to(torch.float64)
    taps = kernel.reshape(kernel.shape[0], kernel.shape[1], -1).permute(2, 0, 1)
    worst = 0.0
    for a in range(taps.shape[0]):
        for b in range(a + 1, taps.shape[0]):
            scale = float(torch.linalg.matrix_norm(taps[a]) * torch.linalg.matrix_norm(taps[b]))
            if scale > 0:
                for m in (taps[a] @ taps[b].T, taps[a].T @ taps[b]):
                    worst = max(worst, float(torch.linalg.matrix_norm(m - m.T)) / scale)
    return worst

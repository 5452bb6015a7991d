"""Tests of isodl.topology.conv: the channel-rotation symmetry of isotropic convolutions, in float64."""

from __future__ import annotations

import pytest
import torch

from isodl.topology import conv

F64 = torch.float64


def _net(sizes=((3, 5, 3), (5, 6, 1), (6, 4, 3)), seed=0):
    gen = torch.Generator().manual_seed(seed)
    ks = [torch.randn(o, i, k, k, generator=gen, dtype=F64) / (i * k) for i, o, k in sizes]
    bs = [0.3 * torch.randn(o, generator=gen, dtype=F64) for _, o, _ in sizes]
    x = torch.randn(4, sizes[0][0], 7, 7, generator=gen, dtype=F64)
    return ks, bs, x


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("seed", range(3))
def test_channel_rotation_is_exact_only_for_the_isotropic_activation(seed):
    ks, bs, x = _net(seed=seed)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(seed + 9), dtype=F64))
    r_ks, r_bs = conv.rotate_channels(ks, bs, 0, q)
    assert _rel(conv.conv_forward(r_ks, r_bs, x), conv.conv_forward(ks, bs, x)) < 1e-13
    el = _rel(conv.conv_forward(r_ks, r_bs, x, elementwise=True), conv.conv_forward(ks, bs, x, elementwise=True))
    assert el > 1e-3


def test_left_partial_works_for_3x3_kernels_and_orders_the_channels():
    ks, bs, x = _net()
    r_ks, r_bs, s = conv.left_partial_diagonalise_conv(ks, bs, 0)
    rows = r_ks[0].reshape(5, -1)
    torch.testing.assert_close(rows @ rows.T, torch.diag(s**2), atol=1e-12, rtol=0)
    assert _rel(conv.conv_forward(r_ks, r_bs, x), conv.conv_forward(ks, bs, x)) < 1e-13


def test_full_diagonalisation_needs_a_1x1_kernel():
    ks, bs, x = _net()
    d_ks, d_bs, s = conv.full_diagonalise_1x1(ks, bs, 1)
    m = d_ks[1][:, :, 0, 0].clone()
    r = min(m.shape)
    assert torch.equal(torch.diagonal(m)[:r], s)
    m[torch.arange(r), torch.arange(r)] = 0.0
    assert float(m.abs().max()) == 0.0
    assert _rel(conv.conv_forward(d_ks, d_bs, x), conv.conv_forward(ks, bs, x)) < 1e-13
    assert conv.tap_obstruction(ks[1]) == 0.0 and conv.tap_obstruction(ks[0]) > 0.05
    ks3, bs3, _ = _net(sizes=((3, 5, 3), (5, 5, 3), (5, 4, 3)))
    with pytest.raises(ValueError, match="1x1"):
        conv.full_diagonalise_1x1(ks3, bs3, 1)


def test_a_kernel_built_from_common_singular_vectors_has_no_obstruction():
    gen = torch.Generator().manual_seed(1)
    u, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=F64))
    v, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=F64))
    taps = [u @ torch.diag(torch.randn(4, generator=gen, dtype=F64)) @ v.T for _ in range(9)]
    kernel = torch.stack(taps, dim=-1).reshape(4, 4, 3, 3)
    assert conv.tap_obstruction(kernel) < 1e-12


def test_full_diagonalise_conv_works_on_the_positive_control_and_fails_on_a_generic_kernel():
    gen = torch.Generator().manual_seed(3)
    ks, bs, x = _net(sizes=((3, 5, 3), (5, 6, 3), (6, 4, 3)))
    before = conv.conv_forward(ks, bs, x)
    d_ks, d_bs, off = conv.full_diagonalise_conv(ks, bs, 1, generator=gen)
    assert off > 0.3  # a generic 3x3 kernel: no common (U, V)
    assert _rel(conv.conv_forward(d_ks, d_bs, x), before) < 1e-13  # exact all the same
    ks[1] = conv.common_diagonal_kernel(6, 5, 3, generator=gen)
    assert conv.tap_obstruction(ks[1]) < 1e-12
    before = conv.conv_forward(ks, bs, x)
    d_ks, d_bs, off = conv.full_diagonalise_conv(ks, bs, 1, generator=gen)
    assert off < 1e-12  # every tap diagonal: a 3x3 kernel can diagonalise when its taps share singular vectors
    assert _rel(conv.conv_forward(d_ks, d_bs, x), before) < 1e-13


def test_tap_obstruction_sees_both_sides():
    """One output channel: every A_s A_t^T is a 1 x 1 (symmetric) matrix, yet rows that are not parallel have no
    common V; only the A_s^T A_t side shows it."""
    gen = torch.Generator().manual_seed(4)
    kernel = torch.randn(1, 2, 3, 3, generator=gen, dtype=F64)
    taps = kernel.reshape(1, 2, -1).permute(2, 0, 1)
    assert max(float((a @ b.T - b @ a.T).abs().max()) for a in taps for b in taps) == 0.0
    assert conv.tap_obstruction(kernel) > 0.05
    ks = [torch.randn(2, 3, 1, 1, generator=gen, dtype=F64), kernel, torch.randn(3, 1, 1, 1, generator=gen, dtype=F64)]
    bs = [torch.zeros(k.shape[0], dtype=F64) for k in ks]
    _, _, off = conv.full_diagonalise_conv(ks, bs, 1, generator=gen)
    assert off > 0.05


def test_bad_arguments():
    ks, bs, x = _net()
    with pytest.raises(ValueError, match="layer"):
        conv.rotate_channels(ks, bs, 2, torch.eye(4, dtype=F64))
    with pytest.raises(ValueError, match="layer"):
        conv.full_diagonalise_1x1(ks, bs, 0)
    with pytest.raises(ValueError, match="kernels"):
        conv.conv_forward(ks[:1], bs[:1], x)
    assert float(conv.isotropic_tanh_channels(torch.zeros(1, 3, 2, 2, dtype=F64)).abs().max()) == 0.0
    with pytest.raises(ValueError, match="size"):
        conv.common_diagonal_kernel(3, 3, 2)
    with pytest.raises(ValueError, match="layer"):
        conv.full_diagonalise_conv(ks, bs, 0)

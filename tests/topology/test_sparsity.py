"""Tests of isodl.topology.sparsity against direct counts on real networks (notebook 09).

Every formula is compared with the number of exactly non-zero weights of an
:class:`IsotropicMLP` after the corresponding exact rotation, for odd and even
numbers of hidden-to-hidden matrices; the function must not change.
"""

from __future__ import annotations

import copy

import pytest
import torch

from isodl.topology import sparsity
from isodl.topology.network import IsotropicMLP

F64 = torch.float64


def dense_network(n, m, seed):
    """``[n] * (m + 3)``: ``m`` hidden-to-hidden matrices ``W_1..W_m``, random dense weights and biases."""
    gen = torch.Generator().manual_seed(seed)
    model = IsotropicMLP([n] * (m + 3), dtype=F64, generator=gen)
    with torch.no_grad():
        for p in list(model.weights) + list(model.biases):
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64))
    return model


def hidden_fraction(model, m, n):
    return sum(int((model.weights[k] != 0).sum()) for k in range(1, m + 1)) / (m * n * n)


def apply(model, construction, m):
    if construction == "alternating":
        model.diagonalise_alternating()
    elif construction == "qr_chain":
        for k in range(1, m + 1):
            model.triangularise(k)
    else:
        model.sparsify()


@pytest.mark.parametrize("m", range(1, 9))
@pytest.mark.parametrize("construction", sparsity.CONSTRUCTIONS)
def test_sparsity_limit_is_the_count_on_a_real_network(m, construction):
    n = 6
    model = dense_network(n, m, seed=m)
    x = torch.randn(20, n, generator=torch.Generator().manual_seed(1), dtype=F64)
    before = model(x).detach()
    apply(model, construction, m)
    assert hidden_fraction(model, m, n) == pytest.approx(sparsity.sparsity_limit(m, n, construction=construction))
    after = model(x).detach()
    assert float((after - before).abs().max() / before.abs().max()) < 1e-12


@pytest.mark.parametrize("m", [1, 3, 5, 7])
def test_the_swapped_formula_is_wrong_for_odd_depths(m):
    """The earlier formula put ceil(M/2) matrices dense: it disagrees with the count at every odd M."""
    n = 6
    model = dense_network(n, m, seed=m)
    model.diagonalise_alternating()
    swapped = (((m + 1) // 2) * n * n + (m // 2) * n) / (m * n * n)
    assert hidden_fraction(model, m, n) != pytest.approx(swapped)


@pytest.mark.parametrize("m", range(1, 9))
def test_sparsify_reaches_the_reparameterisation_bound(m):
    n = 5
    model = dense_network(n, m, seed=10 + m)
    model.sparsify()
    assert hidden_fraction(model, m, n) == pytest.approx(sparsity.reparameterisation_bound(m, n))
    assert sparsity.sparsity_limit(m, n, construction="alternating+qr") == pytest.approx(
        sparsity.reparameterisation_bound(m, n)
    )


def test_limits_without_width():
    assert sparsity.sparsity_limit(7) == pytest.approx(3 / 7)
    assert sparsity.sparsity_limit(8) == 0.5
    assert sparsity.sparsity_limit(8, construction="alternating+qr") == pytest.approx(3.5 / 8)
    assert sparsity.sparsity_limit(8, construction="qr_chain") == 0.5
    for m in range(1, 30):
        assert sparsity.sparsity_limit(m, 1000, construction="alternating+qr") <= 0.5


@pytest.mark.parametrize("n", [4, 6])
def test_odd_depths_are_below_one_half_only_while_m_is_below_n_minus_1(n):
    """Counted on real networks: for odd M the alternating fraction (and the bound) is < 1/2 iff M < n - 1."""
    for m in range(1, 2 * n + 2, 2):
        model = dense_network(n, m, seed=20 + m)
        model.diagonalise_alternating()
        fraction = hidden_fraction(model, m, n)
        assert fraction == pytest.approx(sparsity.sparsity_limit(m, n))
        assert (fraction < 0.5 - 1e-12) == (m < n - 1), (n, m, fraction)
        assert (sparsity.reparameterisation_bound(m, n) < 0.5 - 1e-12) == (m < n - 1)
    assert sparsity.sparsity_limit(5, 4) == pytest.approx(0.55)
    assert sparsity.sparsity_limit(7, 4) == pytest.approx(4 / 7)


def test_deep_limit_is_one_half_plus_one_over_2n():
    for n in (4, 16):
        limit = sparsity.deep_limit(n)
        assert limit == pytest.approx((1 + 1 / n) / 2)
        for construction in sparsity.CONSTRUCTIONS:
            assert abs(sparsity.sparsity_limit(20001, n, construction=construction) - limit) < 1e-3
        assert abs(sparsity.reparameterisation_bound(20001, n) - limit) < 1e-3
        assert sparsity.sparsity_limit(20001, n) < limit  # odd: from below
    assert sparsity.deep_limit() == 0.5
    with pytest.raises(ValueError, match="width"):
        sparsity.deep_limit(0)


def test_triangularise_keeps_an_earlier_diagonal_and_the_function():
    model = dense_network(5, 2, seed=3)
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    before = model(x).detach()
    model.full_diagonalise(1)
    model.triangularise(2)
    assert sparsity.offdiagonal_fraction(model.weights[1]) == 0.0
    w2 = model.weights[2].detach()
    assert torch.equal(w2, torch.triu(w2)) and bool((torch.diagonal(w2) != 0).all())
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-12, atol=1e-12)


def test_triangularise_carries_the_optimiser_state_and_works_on_rectangular_layers():
    model = IsotropicMLP([4, 7, 3, 2], dtype=F64, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(8, 4, dtype=F64)).sum().backward()
    opt.step()
    w = copy.deepcopy(model.weights[1].detach())
    m1 = opt.state[model.weights[1]]["momentum_buffer"].clone()
    q, _ = torch.linalg.qr(w, mode="complete")
    model.triangularise(1, optimizer=opt)
    t = model.weights[1].detach()
    assert t.shape == (3, 7) and torch.equal(t, torch.triu(t))
    assert int((t != 0).sum()) == sparsity.triangular_count(3, 7)
    torch.testing.assert_close(opt.state[model.weights[1]]["momentum_buffer"], q.T @ m1)


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match="construction"):
        sparsity.sparsity_limit(3, 4, construction="greedy")
    with pytest.raises(ValueError, match="n_matrices"):
        sparsity.reparameterisation_bound(0, 4)
    with pytest.raises(ValueError, match="n_in"):
        sparsity.triangular_count(3, 0)
    with pytest.raises(ValueError, match="layer"):
        dense_network(4, 1, seed=0).triangularise(3)

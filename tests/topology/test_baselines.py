"""Tests of isodl.topology.baselines: magnitude pruning with compensation, mean replacement, and the comparison."""

from __future__ import annotations

import copy

import pytest
import torch

from isodl.topology import baselines
from isodl.topology.network import ElementwiseTanhMLP, IsotropicMLP

F64 = torch.float64


def _random(cls, widths, seed):
    gen = torch.Generator().manual_seed(seed)
    model = cls(widths, dtype=F64, generator=gen)
    with torch.no_grad():
        for p in list(model.weights) + list(model.biases):
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64))
    return model


@pytest.mark.parametrize("seed", range(3))
def test_magnitude_prune_removes_the_smallest_row_and_is_exact_for_a_dead_neuron(seed):
    model = _random(IsotropicMLP, [5, 6, 6, 3], seed)
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(9), dtype=F64)
    with torch.no_grad():
        model.weights[1][2] = 0.0  # a neuron whose pre-activation is its bias only
        model.biases[1][2] = 0.7
        model.psis[0][2] = 0.0
    before = model(x).detach()
    removed = baselines.magnitude_prune(model, 1, 1)
    assert removed == [0.0] and model.widths == [5, 6, 5, 3]
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-12, atol=1e-12)


def test_magnitude_prune_keeps_the_native_basis():
    """No rotation: the kept rows are the original rows (unlike SVD neurodegeneration)."""
    model = _random(IsotropicMLP, [5, 6, 6, 3], 4)
    rows = model.weights[1].detach().clone()
    norms = torch.linalg.vector_norm(rows, dim=1)
    j = int(norms.argmin())
    baselines.magnitude_prune(model, 1, 1)
    keep = [i for i in range(6) if i != j]
    assert torch.equal(model.weights[1].detach(), rows[keep])


def test_mean_replacement_is_exact_for_a_constant_elementwise_neuron():
    model = _random(ElementwiseTanhMLP, [5, 6, 6, 3], 1)
    x = torch.randn(40, 5, generator=torch.Generator().manual_seed(2), dtype=F64)
    with torch.no_grad():
        model.weights[1][4] = 0.0  # constant output tanh(b)
    before = model(x).detach()
    baselines.magnitude_prune(model, 1, 1, x_reference=x)
    assert model.widths == [5, 6, 5, 3]
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-12, atol=1e-12)
    # without mean replacement the same removal changes the function
    plain = _random(ElementwiseTanhMLP, [5, 6, 6, 3], 1)
    with torch.no_grad():
        plain.weights[1][4] = 0.0
        plain.weights[1] = torch.nn.Parameter(plain.weights[1].detach()[[0, 1, 2, 3, 5]])
        plain.biases[1] = torch.nn.Parameter(plain.biases[1].detach()[[0, 1, 2, 3, 5]])
        plain.weights[2] = torch.nn.Parameter(plain.weights[2].detach()[:, [0, 1, 2, 3, 5]])
    assert float((plain(x).detach() - before).abs().max()) > 1e-3


def test_compare_removals_ranks_svd_first_on_a_low_rank_layer():
    """A layer whose weak directions are tiny in the SVD basis but spread over every native neuron."""
    gen = torch.Generator().manual_seed(0)
    iso = _random(IsotropicMLP, [6, 8, 8, 3], 0)
    el = _random(ElementwiseTanhMLP, [6, 8, 8, 3], 0)
    u, _, vh = torch.linalg.svd(torch.randn(8, 8, generator=gen, dtype=F64))
    s = torch.tensor([3.0, 2.5, 2.0, 1.5, 1.0, 1e-3, 1e-3, 1e-3], dtype=F64)
    with torch.no_grad():
        iso.weights[1].copy_(u @ torch.diag(s) @ vh)
    x = torch.randn(50, 6, generator=gen, dtype=F64)
    y = torch.randint(0, 3, (50,), generator=gen)
    iso_copy = copy.deepcopy(iso)
    out = baselines.compare_removals(iso, el, x, y, x, layer=1, counts=(3,))
    assert set(out) == set(baselines.REMOVAL_METHODS)
    assert out["svd"][3]["eps_scaled"] < 0.1 * out["magnitude"][3]["eps_scaled"]
    # with biases of order 1 on the removed directions, leaving out the o/psi compensation costs a lot
    assert out["svd_uncompensated"][3]["eps_scaled"] > 10 * out["svd"][3]["eps_scaled"]
    assert torch.equal(iso.weights[1], iso_copy.weights[1])  # inputs untouched


def test_bad_arguments():
    el = _random(ElementwiseTanhMLP, [4, 5, 5, 2], 0)
    with pytest.raises(ValueError, match="x_reference"):
        baselines.magnitude_prune(el, 0, 1)
    with pytest.raises(ValueError, match="count"):
        baselines.magnitude_prune(el, 0, 5, x_reference=torch.zeros(3, 4, dtype=F64))
    with pytest.raises(ValueError, match="layer"):
        baselines.magnitude_prune(el, 2, 1, x_reference=torch.zeros(3, 4, dtype=F64))
    with pytest.raises(TypeError, match="model"):
        baselines.magnitude_prune(torch.nn.Linear(3, 3), 0, 1)
    iso = _random(IsotropicMLP, [4, 5, 5, 2], 0)
    with pytest.raises(TypeError, match="counts"):
        baselines.compare_removals(
            iso,
            el,
            torch.zeros(2, 4, dtype=F64),
            torch.zeros(2, dtype=torch.long),
            torch.zeros(2, 4, dtype=F64),
            counts=3,
        )
    with pytest.raises(ValueError, match="index"):
        iso.remove_neuron(0, 7)

"""Tests of isodl.topology: the isotropic MLP, its exact structural operations, optimiser state and counting.

Exactness claims are checked in float64 on random architectures and seeds.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from isodl.core import train
from isodl.topology import network, schedules, sparsity
from isodl.topology.network import ElementwiseTanhMLP, IsotropicMLP

F64 = torch.float64


# --------------------------------------------------------------------------- helpers


def random_model(widths, seed=0, o="trainable", psi="trainable+decay", dtype=F64, scale=1.0):
    """An IsotropicMLP with random (non-trivial) weights, biases, psi and o."""
    gen = torch.Generator().manual_seed(seed)
    model = IsotropicMLP(widths, intrinsic_length=o, psi=psi, dtype=dtype, generator=gen)
    with torch.no_grad():
        for w in model.weights:
            w.copy_(scale * torch.randn(w.shape, generator=gen, dtype=F64) / math.sqrt(w.shape[1]))
        for b in model.biases:
            b.copy_(0.5 * torch.randn(b.shape, generator=gen, dtype=F64))
        for p in model.psis:
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=F64))
        for k, p in enumerate(model.o_params):
            value = 0.01 + 0.5 * float(torch.rand((), generator=gen, dtype=F64))
            p.fill_(math.log(value) if o == "trainable" else value)
    return model


def inputs(n_in, n=64, seed=1, dtype=F64):
    return torch.randn(n, n_in, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


def rel_change(before, after):
    before, after = before.detach(), after.detach()
    return float((torch.linalg.vector_norm(after - before, dim=-1) / torch.linalg.vector_norm(before, dim=-1)).max())


def blob_task(n_in=6, n_classes=3, n=240, seed=0, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(n_classes, n_in, generator=gen, dtype=F64)
    y = torch.arange(n) % n_classes
    x = centres[y] + torch.randn(n, n_in, generator=gen, dtype=F64)
    return x.to(dtype), y


def train_epoch(model, optimizer, x, y, batch_size=48, **kwargs):
    """One epoch of the course's training loop with the model's psi penalty; returns the mean training loss."""
    return train.train_epoch(model, optimizer, x, y, batch_size=batch_size, penalty=model.penalty, **kwargs).mean_loss


def ortho(n, seed):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=F64))
    return q


architectures = st.lists(st.integers(2, 9), min_size=3, max_size=6)
modes = st.sampled_from(
    [("trainable", "trainable+decay"), ("constant", "constant"), ("none", "none"), ("trainable", "expectation")]
)


# --------------------------------------------------------------------------- the activation


def test_gain_matches_formula_and_is_finite_at_origin():
    z = torch.randn(50, 7, dtype=F64) * torch.logspace(-6, 1, 50, dtype=F64).unsqueeze(1)
    for o in (0.0, 1e-6, 0.3):
        rho = torch.sqrt((z * z).sum(-1) + o)
        torch.testing.assert_close(network.isotropic_tanh_gain(z, o), torch.tanh(rho) / rho, rtol=1e-14, atol=0)
    zero = torch.zeros(3, 4, dtype=F64, requires_grad=True)
    g = network.isotropic_tanh_gain(zero, 0.0)
    assert torch.equal(g.detach(), torch.ones(3, dtype=F64))
    (g.unsqueeze(-1) * zero).sum().backward()
    assert torch.isfinite(zero.grad).all()
    torch.testing.assert_close(zero.grad, torch.ones(3, 4, dtype=F64))  # Jacobian at the origin is I


def test_isotropic_map_is_rotation_equivariant_and_output_norm_below_one():
    z = 3 * torch.randn(40, 6, dtype=F64)
    q = ortho(6, 3)
    f = lambda v: network.isotropic_tanh_gain(v, 0.2).unsqueeze(-1) * v  # noqa: E731
    assert float((f(z @ q.T) - f(z) @ q.T).abs().max()) < 1e-12
    assert float(torch.linalg.vector_norm(f(z), dim=-1).max()) < 1.0


@pytest.mark.parametrize("o", [0.0, 0.05, 2.0])
def test_jacobian_eigenvalues_match_autograd_and_are_in_unit_interval(o):
    gen = torch.Generator().manual_seed(4)
    for r in (1e-3, 0.3, 1.0, 4.0):
        z = torch.randn(5, generator=gen, dtype=F64)
        z = r * z / z.norm()
        jac = torch.autograd.functional.jacobian(lambda v: network.isotropic_tanh_gain(v, o) * v, z)
        eig = torch.linalg.eigvalsh(0.5 * (jac + jac.T))
        tangential, radial = network.isotropic_tanh_eigenvalues(r, o)
        expected = torch.sort(torch.cat([tangential.repeat(4), radial.reshape(1)])).values
        torch.testing.assert_close(eig, expected, rtol=1e-9, atol=1e-12)
        assert 0 < float(eig.min()) and float(eig.max()) <= 1.0 + 1e-12
        assert float(torch.linalg.matrix_norm(jac, ord=2)) <= 1.0 + 1e-12


def test_gain_agrees_with_isodl_functions_when_available():
    functions = pytest.importorskip("isodl.core.activations")
    if not hasattr(functions, "isotropic_tanh"):
        pytest.skip("isodl.core.activations has no isotropic_tanh yet")
    z = 2 * torch.randn(20, 5, dtype=F64)
    for o in (0.0, 0.3):
        ours = network.isotropic_tanh_gain(z, o).unsqueeze(-1) * z
        torch.testing.assert_close(functions.isotropic_tanh(z, o=o), ours, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- the network


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "o,psi",
    [
        ("none", "none"),
        ("constant", "constant"),
        ("trainable", "trainable"),
        ("trainable", "trainable+decay"),
        ("constant", "expectation"),
    ],
)
def test_forward_shapes_dtypes_and_orthogonal_init(dtype, o, psi):
    model = IsotropicMLP(
        [6, 5, 8, 3], intrinsic_length=o, psi=psi, dtype=dtype, generator=torch.Generator().manual_seed(0)
    )
    x = torch.randn(4, 6, dtype=dtype)
    out = model(x)
    assert out.shape == (4, 3) and out.dtype == dtype
    assert model(x[0]).shape == (3,)
    for k in range(3):
        torch.testing.assert_close(
            model.singular_values(k), torch.ones(min(model.weights[k].shape), dtype=F64), rtol=1e-5, atol=1e-5
        )
    assert all(float(b.detach().abs().max()) == 0 for b in model.biases)
    assert model.widths == [6, 5, 8, 3] and model.n_hidden == 2
    assert len(model.psis) == (2 if psi in ("constant", "trainable", "trainable+decay") else 0)
    if o != "none":
        assert abs(float(model.intrinsic_length(0)) - 1e-6) < 1e-9
    else:
        assert float(model.intrinsic_length(1)) == 0.0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("o_params") for n in trainable) == (o == "trainable")
    assert any(n.startswith("psis") for n in trainable) == (psi in ("trainable", "trainable+decay"))


def test_forward_matches_the_written_equations():
    model = random_model([4, 5, 3, 2], seed=3)
    x = inputs(4, 9)
    W, b, psi = model.weights, model.biases, model.psis
    o = [torch.exp(p) for p in model.o_params]

    def act(z, ok):
        rho = torch.sqrt((z * z).sum(-1, keepdim=True) + ok)
        return torch.tanh(rho) / rho

    z0 = x @ W[0].T + b[0]
    g0 = act(z0, o[0])
    z1 = (g0 * z0) @ W[1].T + b[1] + g0 * psi[0]
    g1 = act(z1, o[1])
    logits = (g1 * z1) @ W[2].T + b[2] + g1 * psi[1]
    torch.testing.assert_close(model(x), logits, rtol=1e-13, atol=1e-14)
    gains = model.gains(x)
    torch.testing.assert_close(gains[0], g0.squeeze(-1))
    model.psis[1].data.fill_(1.0)
    assert float(model.penalty().detach()) == pytest.approx(0.1 * (float((psi[0].detach() ** 2).sum()) + 2.0))


def test_elementwise_control():
    model = ElementwiseTanhMLP([5, 7, 7, 3], dtype=F64, generator=torch.Generator().manual_seed(0))
    x = inputs(5, 6)
    h = torch.tanh(torch.tanh(x @ model.weights[0].T) @ model.weights[1].T)
    torch.testing.assert_close(model(x), h @ model.weights[2].T)
    torch.testing.assert_close(model.singular_values(1), torch.ones(7, dtype=F64))
    assert float(model.penalty()) == 0.0
    # A rotation of a hidden layer changes its function: only signed permutations are symmetries.
    iso = random_model([5, 7, 7, 3], seed=1)
    el = ElementwiseTanhMLP([5, 7, 7, 3], dtype=F64)
    with torch.no_grad():
        for k in range(3):
            el.weights[k].copy_(iso.weights[k])
            el.biases[k].copy_(iso.biases[k])
    q = ortho(7, 2)
    before = el(x)
    with torch.no_grad():
        el.weights[0].copy_(q.T @ el.weights[0])
        el.biases[0].copy_(q.T @ el.biases[0])
        el.weights[1].copy_(el.weights[1] @ q)
    assert rel_change(before, el(x)) > 1e-3


# --------------------------------------------------------------------------- exact invariances


@settings(max_examples=15, deadline=None)
@given(widths=architectures, seed=st.integers(0, 10_000), mode=modes)
def test_diagonalisation_and_neurogenesis_leave_logits_unchanged(widths, seed, mode):
    model = random_model(widths, seed=seed, o=mode[0], psi=mode[1])
    x = inputs(widths[0], seed=seed + 1)
    before = model(x).detach()
    n_hidden = len(widths) - 2
    gen = torch.Generator().manual_seed(seed)
    for k in range(n_hidden):
        s = model.left_partial_diagonalise(k)
        assert torch.all(s[:-1] >= s[1:])
        assert rel_change(before, model(x).detach()) <= 1e-12
    for k in range(1, n_hidden):
        model.full_diagonalise(k)
        assert sparsity.offdiagonal_fraction(model.weights[k]) == 0.0
        assert rel_change(before, model(x).detach()) <= 1e-12
    for k in range(n_hidden):
        count = 1 + seed % 3
        width = model.weights[k].shape[0]
        assert model.neurogenesis(k, count, generator=gen) == width + count
        assert rel_change(before, model(x).detach()) <= 1e-12
        k2 = int(torch.randint(n_hidden, (1,), generator=gen))
        model.rotate_layer(k2, ortho(model.weights[k2].shape[0], seed + k))
        assert rel_change(before, model(x).detach()) <= 1e-12


def test_left_partial_rows_are_scaled_orthonormal_directions():
    model = random_model([6, 9, 4, 3], seed=2)
    s = model.left_partial_diagonalise(0)
    w = model.weights[0].detach()
    assert torch.equal(w[6:], torch.zeros(3, 6, dtype=F64)), "structural zero rows of a wider layer are exact"
    torch.testing.assert_close(w[:6] @ w[:6].T, torch.diag(s**2), atol=1e-12, rtol=0)
    strengths = model.neuron_strengths(0)
    assert strengths.shape == (9,) and int((strengths == 0).sum()) == 3
    assert model.count_weak(0, 0.0) == 3


def test_neurogenesis_scaffold_form():
    model = random_model([5, 6, 6, 4], seed=5)
    model.neurogenesis(1, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.weights[1][-2:].detach(), torch.zeros(2, 6, dtype=F64))
    assert torch.equal(model.biases[1][-2:].detach(), torch.zeros(2, dtype=F64))
    assert torch.equal(model.psis[0][-2:].detach(), torch.zeros(2, dtype=F64))
    column = model.weights[2][:, -2:].detach()
    assert float(column.abs().min()) > 0 and float(column.abs().max()) < 0.1
    assert model.psis[1].shape == (4,) and model.psis[0].shape == (8,)


def test_float32_invariance_is_at_float32_roundoff():
    model = random_model([8, 16, 16, 16, 5], seed=7, dtype=torch.float32)
    x = inputs(8, dtype=torch.float32)
    before = model(x).detach()
    model.diagonalise_alternating()
    model.left_partial_diagonalise(2)
    model.neurogenesis(0, 3)
    assert model.weights[1].dtype == torch.float32
    assert rel_change(before.double(), model(x).detach().double()) < 1e-5


# --------------------------------------------------------------------------- neurodegeneration


def make_zero_singular_neuron(model, k, bias=1.0):
    """Give hidden layer k a neuron with zero singular value, bias ``bias`` and zero incoming psi entry."""
    model.left_partial_diagonalise(k)
    with torch.no_grad():
        model.weights[k][-1].zero_()
        model.biases[k][-1] = bias
        if k > 0 and model.has_psi:
            model.psis[k - 1][-1] = 0.0


@pytest.mark.parametrize(
    "widths,k", [([6, 5, 4, 3], 0), ([6, 5, 4, 3], 1), ([7, 6, 6, 5, 4], 2), ([4, 8, 3], 0), ([5, 3, 7, 6, 2], 1)]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_zero_singular_value_removal_is_exact_only_with_both_compensations(widths, k, seed):
    model = random_model(widths, seed=seed)
    make_zero_singular_neuron(model, k)
    x = inputs(widths[0], seed=seed + 10)
    before = model(x).detach()
    errors = {}
    for co in (True, False):
        for cp in (True, False):
            m = copy.deepcopy(model)
            removed = m.neurodegeneration(k, compensate_o=co, compensate_psi=cp)
            assert removed == [pytest.approx(0.0, abs=1e-12)]
            assert m.widths[k + 1] == widths[k + 1] - 1
            errors[(co, cp)] = rel_change(before, m(x).detach())
    assert errors[(True, True)] <= 1e-12, errors
    for combo in ((True, False), (False, True), (False, False)):
        assert errors[combo] > 1e-6, (combo, errors)
    # The defaults follow the configuration: o trainable and psi trainable+decay compensate both.
    m = copy.deepcopy(model)
    m.neurodegeneration(k)
    assert rel_change(before, m(x).detach()) <= 1e-12


@pytest.mark.parametrize("o_mode,psi_mode", [("constant", "constant"), ("constant", "trainable")])
def test_zero_singular_removal_other_modes(o_mode, psi_mode):
    model = random_model([6, 5, 5, 3], seed=3, o=o_mode, psi=psi_mode)
    make_zero_singular_neuron(model, 1, bias=0.7)
    x = inputs(6)
    before = model(x).detach()
    o_before = float(model.intrinsic_length(1))
    model.neurodegeneration(1)
    assert rel_change(before, model(x).detach()) <= 1e-12
    assert float(model.intrinsic_length(1)) == pytest.approx(o_before + 0.49, rel=1e-12)


def test_nonzero_incoming_psi_entry_breaks_exactness():
    model = random_model([6, 5, 5, 3], seed=4)
    make_zero_singular_neuron(model, 1)
    with torch.no_grad():
        model.psis[0][-1] = 0.5
    x = inputs(6)
    before = model(x).detach()
    model.neurodegeneration(1)
    assert rel_change(before, model(x).detach()) > 1e-4


def test_expectation_mode_removal_is_approximate_but_better_than_nothing():
    model = random_model([6, 8, 8, 4], seed=6, o="trainable", psi="expectation")
    make_zero_singular_neuron(model, 1, bias=1.0)
    x = inputs(6, n=200)
    with pytest.raises(RuntimeError, match="forward"):
        copy.deepcopy(IsotropicMLP([6, 8, 8, 4], psi="expectation", dtype=F64)).neurodegeneration(0)
    before = model(x).detach()  # also records the mean gains
    errs = []
    for cp in (True, False):
        m = copy.deepcopy(model)
        m.neurodegeneration(1, compensate_psi=cp)
        errs.append(rel_change(before, m(x).detach()))
    assert errs[0] < errs[1]


def test_removal_error_is_linear_in_the_removed_singular_value():
    widths, k = [6, 7, 6, 4], 1
    base = random_model(widths, seed=11)
    make_zero_singular_neuron(base, k)
    x = inputs(6, n=128)
    # A direction orthogonal to the kept rows, so the new row's singular value is exactly s.
    v_dir = torch.linalg.svd(base.weights[k][:-1].detach(), full_matrices=True)[2][-1]
    errors = []
    sizes = [1e-5, 1e-4, 1e-3, 1e-2]
    for s in sizes:
        m = copy.deepcopy(base)
        with torch.no_grad():
            m.weights[k][-1] = s * v_dir
        before = m(x).detach()
        removed = m.neurodegeneration(k)
        assert removed[0] == pytest.approx(s, rel=1e-9)
        errors.append(float(torch.linalg.vector_norm(m(x).detach() - before, dim=-1).max()))
    ratios = [b / a for a, b in zip(errors, errors[1:])]
    assert all(9.0 < r < 11.0 for r in ratios), (errors, ratios)
    slope = [e / s for e, s in zip(errors, sizes)]
    assert max(slope) / min(slope) < 1.2


def test_removal_order_smallest_first_and_counts():
    model = random_model([6, 6, 5, 3], seed=8)
    s = model.singular_values(0)
    removed = model.neurodegeneration(0, 3)
    assert removed[0] == pytest.approx(float(s[-1]), rel=1e-9)
    assert model.widths == [6, 3, 5, 3]
    assert model.psis[0].shape == (5,)


def test_full_diagonalisation_of_adjacent_layers_redensifies_the_first():
    model = random_model([5, 8, 8, 8, 8, 3], seed=9)
    x = inputs(5)
    before = model(x).detach()
    model.full_diagonalise(1)
    assert sparsity.offdiagonal_fraction(model.weights[1]) == 0.0
    model.full_diagonalise(2)
    assert sparsity.offdiagonal_fraction(model.weights[2]) == 0.0
    assert sparsity.offdiagonal_fraction(model.weights[1]) > 0.3  # dense again
    assert rel_change(before, model(x).detach()) <= 1e-12
    # Alternating layers stay diagonal together.
    m = random_model([5, 8, 8, 8, 8, 3], seed=9)
    assert m.diagonalise_alternating() == [1, 3]
    assert sparsity.offdiagonal_fraction(m.weights[1]) == 0.0 and sparsity.offdiagonal_fraction(m.weights[3]) == 0.0


# --------------------------------------------------------------------------- buffer rule and task units


def test_auto_adapt_keeps_the_buffer_and_the_function():
    model = IsotropicMLP([6, 5, 5, 3], dtype=F64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for b in model.biases:
            b.copy_(torch.randn(b.shape, dtype=F64))
    x = inputs(6)
    before = model(x).detach()
    changes = model.auto_adapt(threshold=0.95, buffer=2)  # every singular value is 1: two scaffolds each
    assert changes == {0: 2, 1: 2}
    assert rel_change(before, model(x).detach()) <= 1e-12
    assert model.auto_adapt(threshold=0.95, buffer=2) == {0: 0, 1: 0}
    assert model.auto_adapt(threshold=0.95, buffer=1) == {0: -1, 1: -1}
    # A threshold above every strength: shrink to the buffer (all remaining are weak).
    changes = model.auto_adapt(threshold=100.0, buffer=3)
    assert changes == {0: -3, 1: -3}
    assert model.widths == [6, 3, 3, 3]


def test_auto_adapt_counts_structural_zeros_of_wide_layers():
    model = IsotropicMLP([4, 10, 6, 3], dtype=F64)  # layer 0 has 6 structural zero directions
    assert model.count_weak(0, 0.95) == 6
    changes = model.auto_adapt(threshold=0.95, buffer=2)
    assert changes == {0: -4, 1: 2}


def test_input_and_output_units():
    model = random_model([5, 6, 4, 3], seed=13)
    x = inputs(5)
    before = model(x).detach()
    assert model.add_inputs(2) == [7, 6, 4, 3]
    x2 = torch.cat([x, torch.randn(x.shape[0], 2, dtype=F64)], dim=1)
    assert rel_change(before, model(x2).detach()) <= 1e-14
    assert model.add_outputs(2) == [7, 6, 4, 5]
    out = model(x2).detach()
    assert rel_change(before, out[:, :3]) <= 1e-14 and torch.equal(out[:, 3:], torch.zeros(x.shape[0], 2, dtype=F64))
    model.remove_outputs([0, 4])
    torch.testing.assert_close(model(x2).detach(), out[:, [1, 2, 3]], rtol=1e-14, atol=1e-15)
    model.remove_inputs([5, 6])
    assert rel_change(before[:, 1:], model(x).detach()[:, :2]) <= 1e-14


# --------------------------------------------------------------------------- optimiser state


def make_optimizer(name, model):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=3e-3)
    return torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)


OPERATIONS = {
    "left_partial": lambda m, opt: m.left_partial_diagonalise(1, optimizer=opt),
    "full": lambda m, opt: m.full_diagonalise(1, optimizer=opt),
    "neurogenesis": lambda m, opt: m.neurogenesis(1, 3, optimizer=opt, generator=torch.Generator().manual_seed(0)),
    "neurodegeneration": lambda m, opt: m.neurodegeneration(0, 2, optimizer=opt),
    "auto_adapt": lambda m, opt: m.auto_adapt(0.95, 2, optimizer=opt),
    "outputs": lambda m, opt: (m.add_outputs(2, optimizer=opt), m.remove_outputs([3, 4], optimizer=opt)),
    "inputs": lambda m, opt: (m.add_inputs(1, optimizer=opt), m.remove_inputs([6], optimizer=opt)),
}


@pytest.mark.parametrize("op", list(OPERATIONS))
@pytest.mark.parametrize("opt_name", ["sgd", "adam", "adamw"])
def test_training_continues_after_each_operation(op, opt_name):
    x, y = blob_task()
    torch.manual_seed(0)
    model = IsotropicMLP([6, 10, 8, 3], dtype=F64, generator=torch.Generator().manual_seed(1))
    opt = make_optimizer(opt_name, model)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        train_epoch(model, opt, x, y, batch_size=60, generator=gen)
    before = train_epoch(model, opt, x, y, batch_size=60, generator=gen)
    OPERATIONS[op](model, opt)
    for p in model.parameters():
        state = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
            if isinstance(state.get(key), torch.Tensor):
                assert state[key].shape == p.shape, (op, key)
    losses = [train_epoch(model, opt, x, y, batch_size=60, generator=gen) for _ in range(3)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < before, (op, before, losses)


def test_sgd_momentum_state_is_rotated_exactly():
    """Rotating and then stepping equals stepping and then rotating (SGD with momentum)."""
    x, y = blob_task()
    model = random_model([6, 5, 5, 3], seed=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train_epoch(model, opt, x, y, batch_size=60, generator=torch.Generator().manual_seed(0))
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9)
    opt_a.load_state_dict(copy.deepcopy(opt.state_dict()))
    opt_b = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
    opt_b.load_state_dict(copy.deepcopy(opt.state_dict()))
    q = ortho(5, 7)
    a.rotate_layer(1, q, optimizer=opt_a)
    train_epoch(a, opt_a, x, y, batch_size=60, generator=torch.Generator().manual_seed(9))
    train_epoch(b, opt_b, x, y, batch_size=60, generator=torch.Generator().manual_seed(9))
    b.rotate_layer(1, q)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-12)


def test_adam_moments_rotate_like_the_parameters():
    x, y = blob_task()
    model = random_model([6, 5, 5, 3], seed=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_epoch(model, opt, x, y, generator=torch.Generator().manual_seed(0))
    w = model.weights[2]
    m_before = opt.state[w]["exp_avg"].clone()
    v_before = opt.state[w]["exp_avg_sq"].clone()
    step = opt.state[w]["step"].clone()
    q = ortho(5, 1)
    model.rotate_layer(1, q, optimizer=opt)
    torch.testing.assert_close(opt.state[w]["exp_avg"], m_before @ q)
    torch.testing.assert_close(opt.state[w]["exp_avg_sq"], v_before @ (q * q))
    assert torch.equal(opt.state[w]["step"], step)
    model.neurogenesis(1, 2, optimizer=opt)
    assert torch.equal(opt.state[w]["exp_avg"][:, -2:], torch.zeros(3, 2, dtype=F64))


def test_unsupported_or_foreign_optimizer_is_rejected():
    model = random_model([4, 5, 5, 2], seed=0)
    with pytest.raises(TypeError, match="SGD, Adam or AdamW"):
        model.neurogenesis(0, optimizer=torch.optim.RMSprop(model.parameters()))
    with pytest.raises(TypeError, match="SGD, Adam or AdamW"):
        model.left_partial_diagonalise(0, optimizer="adam")
    other = copy.deepcopy(model)
    with pytest.raises(ValueError, match="another copy"):
        model.neurodegeneration(0, optimizer=torch.optim.Adam(other.parameters()))


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_raise_clear_errors():
    model = random_model([4, 5, 5, 2], seed=0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        model.neurogenesis(2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        model.left_partial_diagonalise(-1)
    with pytest.raises(TypeError, match="layer"):
        model.neurodegeneration(1.0)
    with pytest.raises(ValueError, match="count must be >= 1"):
        model.neurogenesis(0, 0)
    with pytest.raises(ValueError, match="count must be >= 1"):
        model.neurodegeneration(0, 0)
    with pytest.raises(ValueError, match="at least one must remain"):
        model.neurodegeneration(0, 5)
    with pytest.raises(ValueError, match="at least one must remain"):
        model.neurodegeneration(1, 9)
    with pytest.raises(ValueError, match="reads the input"):
        model.full_diagonalise(0)
    with pytest.raises(ValueError, match="output matrix"):
        model.full_diagonalise(2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        model.full_diagonalise(5)
    with pytest.raises(ValueError, match="orthogonal"):
        model.rotate_layer(0, 2 * torch.eye(5, dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        model.rotate_layer(0, torch.eye(4, dtype=F64))
    with pytest.raises(ValueError, match="intrinsic length"):
        random_model([4, 5, 5, 2], o="none").neurodegeneration(0, compensate_o=True)
    with pytest.raises(ValueError, match="psi='none'"):
        random_model([4, 5, 5, 2], psi="none").neurodegeneration(0, compensate_psi=True)
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.zeros(3, 7, dtype=F64))
    with pytest.raises(TypeError, match="dtype"):
        model(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="indices"):
        model.remove_outputs([0, 0])
    with pytest.raises(ValueError, match="at least one must remain"):
        model.remove_outputs([0, 1])
    with pytest.raises(ValueError, match="indices"):
        model.remove_inputs([4])
    with pytest.raises(ValueError, match="threshold"):
        model.auto_adapt(-1.0)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden"):
        IsotropicMLP([4, 2])
    with pytest.raises(TypeError, match="widths"):
        IsotropicMLP("64,32,10")
    with pytest.raises(ValueError, match="widths\\[1\\]"):
        IsotropicMLP([4, 0, 2])
    with pytest.raises(ValueError, match="unknown intrinsic_length"):
        IsotropicMLP([4, 3, 2], intrinsic_length="learned")
    with pytest.raises(ValueError, match="unknown psi"):
        IsotropicMLP([4, 3, 2], psi="decay")
    with pytest.raises(TypeError, match="dtype"):
        IsotropicMLP([4, 3, 2], dtype=torch.float16)
    with pytest.raises(ValueError, match="o_init"):
        IsotropicMLP([4, 3, 2], o_init=0.0)
    with pytest.raises(TypeError, match="generator"):
        IsotropicMLP([4, 3, 2], generator=0)


# --------------------------------------------------------------------------- counting


@pytest.mark.parametrize(
    "widths,fraction",
    [
        ([3072, 500, 500, 10], 0.139),
        ([3072] + [500] * 4 + [10], 0.218),
        ([3072] + [1000] * 6 + [10], 0.370),
        ([64] + [64] * 4 + [10], 0.461),
        ([40] + [64] * 4 + [10], 0.505),
    ],
)
def test_expected_reductions_match_the_spec_table(widths, fraction):
    reduction = sparsity.expected_nonzero_reduction(widths) / sparsity.parameter_count(widths)["total"]
    assert reduction == pytest.approx(fraction, abs=6e-4)


@pytest.mark.parametrize("widths", [[6, 7, 7, 3], [5, 8, 8, 8, 8, 4], [4, 6, 9, 5, 7, 2], [3, 5, 5, 5, 5, 5, 5, 2]])
def test_count_nonzero_after_alternating_diagonalisation_matches_formula(widths):
    model = random_model(widths, seed=len(widths))
    x = inputs(widths[0])
    before_logits = model(x).detach()
    counts = sparsity.count_nonzero(model)
    assert counts == sparsity.parameter_count(widths)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    layers = model.diagonalise_alternating()
    after = sparsity.count_nonzero(model)
    assert counts["weights"] - after["weights"] == sparsity.expected_nonzero_reduction(widths, layers)
    assert counts["total"] - after["total"] == sparsity.expected_nonzero_reduction(widths, layers)
    assert rel_change(before_logits, model(x).detach()) <= 1e-12


def test_sparsity_limit_and_alternating_layers():
    assert sparsity.alternating_layers([4, 5, 5, 5, 5, 5, 2]) == [1, 3]
    assert sparsity.alternating_layers([4, 5, 2]) == []
    # ceil(M/2) diagonal, floor(M/2) dense (the counts on real networks are in test_sparsity.py)
    assert sparsity.sparsity_limit(1) == 0.0 and sparsity.sparsity_limit(2) == 0.5
    assert sparsity.sparsity_limit(3) == pytest.approx(1 / 3)
    assert sparsity.sparsity_limit(4, 64) == pytest.approx((2 * 64 * 64 + 2 * 64) / (4 * 64 * 64))
    assert sparsity.sparsity_limit(1, 16) == pytest.approx(1 / 16)
    assert sparsity.sparsity_limit(3, 16) == pytest.approx(0.375)
    assert 0.49 < sparsity.sparsity_limit(101) < 0.5
    with pytest.raises(ValueError, match="adjacent"):
        sparsity.expected_nonzero_reduction([4, 5, 5, 5, 5, 2], [1, 2])
    with pytest.raises(ValueError, match="layers\\[0\\]"):
        sparsity.expected_nonzero_reduction([4, 5, 5, 2], [0])
    assert sparsity.parameter_count([4, 5, 3], intrinsic_length="none", psi="none") == {
        "weights": 35,
        "biases": 8,
        "psi": 0,
        "o": 0,
        "total": 43,
    }
    assert sparsity.offdiagonal_fraction(torch.zeros(3, 3)) == 0.0
    with pytest.raises(TypeError, match="model"):
        sparsity.count_nonzero(torch.nn.Linear(3, 3))


# --------------------------------------------------------------------------- figures


def test_topology_figures_are_pure_and_labelled():
    from matplotlib.figure import Figure

    from isodl.topology import plots as TP

    figs = [
        TP.plot_gain_and_eigenvalues(),
        TP.plot_accuracy_curves({"a": {"m1": np.random.rand(2, 4), "m2": np.random.rand(2, 4)}}),
        TP.plot_spectrum_evolution({"iso": np.random.rand(4, 5) + 0.5}),
        TP.plot_weight_matrices([("W", torch.eye(3)), ("V", torch.randn(2, 3))]),
        TP.plot_removal_error([1e-3, 1e-2], {"both": [1e-4, 1e-3]}),
        TP.plot_sparsity_vs_depth([1, 2], {"a": [0.25, 0.6]}, {"a": [0.25, 0.6]}, width=4, bound=[0.25, 0.4]),
    ]
    tasks = [blob_task(n_in=4, seed=s) for s in (0, 1)]
    tasks = [(x[:180], y[:180], x[180:], y[180:]) for x, y in tasks]
    rec = schedules.run_task_schedule(tasks, [[0], [0, 1]], [6], seed=0)
    figs.append(TP.plot_adaptation(rec, 2))
    rec_b = schedules.run_task_schedule(tasks, [[0], [0, 1]], [6], seed=0, baseline=True)
    figs.append(TP.plot_task_schedule(rec_b, control=rec, null=rec, task_names=["A", "B"]))
    runs = [[0.5, 0.6, 0.7], [0.55, 0.65, 0.7]]
    grid = {
        "starts": [2],
        "targets": [2],
        "seeds": [0, 1],
        "epochs": 3,
        "warmup": 1,
        "adapt": 1,
        "settle": 1,
        "adaptive": {"2->2": runs},
        "static": {"2": runs},
        "elementwise": {"2": runs},
    }
    figs.append(TP.plot_grow_shrink_grid(grid, mark_epoch=2))
    with pytest.raises(ValueError, match="mark_epoch"):
        TP.plot_grow_shrink_grid(grid, mark_epoch=4)
    for fig in figs:
        assert isinstance(fig, Figure)
        assert all(ax.get_title() for ax in fig.axes if ax.get_label() != "<colorbar>")
    with pytest.raises(ValueError, match="epoch"):
        TP.plot_adaptation(rec, 3)
    with pytest.raises(TypeError):
        TP.plot_weight_matrices([])
    with pytest.raises(ValueError, match="sizes"):
        TP.plot_removal_error([1e-3], {"a": [1.0]})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_network_gain_is_the_shared_isotropic_gain(dtype):
    """The network's gains come from isodl.core.activations.isotropic_gain: values, gradients, edges."""
    from isodl.core import activations

    z = torch.randn(200, 7, dtype=F64) * torch.logspace(-9, 3, 200, dtype=F64).unsqueeze(1)
    z[0] = 0.0
    for o in (0.0, 1e-7, 0.4, torch.tensor(0.4, dtype=F64)):
        o_d = o.to(dtype) if isinstance(o, torch.Tensor) else o
        a = z.to(dtype).clone().requires_grad_(True)
        b = z.to(dtype).clone().requires_grad_(True)
        ga = network.isotropic_tanh_gain(a, o_d)
        gb = activations.isotropic_gain(b, "tanh", o=o_d).squeeze(-1)
        assert torch.equal(ga, gb)
        # against the formula tanh(rho) / rho, in float64 (rho > 0 except on the zero row with o = 0)
        rho = torch.sqrt((z * z).sum(-1) + float(o))
        ref = torch.where(rho > 0, torch.tanh(rho) / torch.where(rho > 0, rho, 1.0), 1.0)
        tol = 1e-6 if dtype == torch.float32 else 1e-13
        torch.testing.assert_close(ga.double(), ref, rtol=tol, atol=tol)
        (ga.unsqueeze(-1) * a).sum().backward()
        (gb.unsqueeze(-1) * b).sum().backward()
        assert torch.isfinite(a.grad).all()
        assert torch.equal(a.grad, b.grad)
    # rows far beyond float32's squared range take the guarded path and stay finite
    huge = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=dtype) * torch.tensor([[1e30], [1.0]], dtype=dtype)
    huge.requires_grad_(True)
    g = network.isotropic_tanh_gain(huge, 0.1)
    torch.testing.assert_close(g[0] * 5e30, torch.tensor(1.0, dtype=dtype))
    (g.unsqueeze(-1) * huge).sum().backward()
    assert torch.isfinite(huge.grad).all()
    # the model's forward and gains use it, layer by layer
    model = random_model([5, 6, 4, 3], seed=2, dtype=dtype)
    x = inputs(5, n=9, dtype=dtype)
    h, g_prev, expected = x, None, []
    for k in range(model.n_hidden):
        pre = torch.nn.functional.linear(h, model.weights[k], model.biases[k])
        if k > 0:
            pre = pre + g_prev.unsqueeze(-1) * model.psis[k - 1]
        g_prev = activations.isotropic_gain(pre, "tanh", o=model.intrinsic_length(k)).squeeze(-1)
        expected.append(g_prev)
        h = g_prev.unsqueeze(-1) * pre
    for got, want in zip(model.gains(x), expected):
        torch.testing.assert_close(got, want.detach())
    assert not hasattr(network, "_gain_fast")


def test_rotate_layer_accepts_float32_rotations():
    model = random_model([4, 5, 5, 2], seed=0, dtype=torch.float32)
    x = inputs(4, dtype=torch.float32)
    before = model(x).detach()
    model.rotate_layer(1, ortho(5, 1).float())
    assert rel_change(before.double(), model(x).detach().double()) < 1e-5

"""The references of the topology checks (notebooks 05-09) agree with the library they stand for."""

import pytest
import torch

from isodl.topology import checks, network

SEEDS = range(5)


def _orthogonal(n, gen):
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


@pytest.mark.parametrize("seed", SEEDS)
def test_rotate_neurons_reference_is_what_rotate_layer_does(seed):
    gen = torch.Generator().manual_seed(seed)
    model = network.IsotropicMLP([5, 4, 3], dtype=torch.float64, generator=gen)
    with torch.no_grad():
        model.biases[0].copy_(torch.randn(4, generator=gen, dtype=torch.float64))
    q = _orthogonal(4, gen)
    w_in, b, w_out = (p.detach().clone() for p in (model.weights[0], model.biases[0], model.weights[1]))
    expected = checks._rotate_neurons_reference(w_in, b, w_out, q)
    model.rotate_layer(0, q)
    got = (model.weights[0], model.biases[0], model.weights[1])
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.detach(), e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_remove_last_neuron_reference_is_what_neurodegeneration_does(seed):
    """A layer already in left-singular form, whose last neuron has no incoming weights (s = 0)."""
    gen = torch.Generator().manual_seed(seed)
    n, m, p = 4, 6, 3
    model = network.IsotropicMLP(
        [m, n, p], intrinsic_length="constant", psi="trainable", dtype=torch.float64, o_init=0.3
    )
    s = torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=torch.float64)
    v = _orthogonal(m, gen)[:n]
    w_in = s[:, None] * v  # rows orthogonal, norms decreasing, the last one zero
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    w_out = torch.randn(p, n, generator=gen, dtype=torch.float64)
    psi = torch.randn(p, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        model.weights[0].copy_(w_in)
        model.biases[0].copy_(b)
        model.weights[1].copy_(w_out)
        model.psis[0].copy_(psi)
    ref = checks._remove_last_neuron_reference(w_in, b, w_out, psi, 0.3)
    removed = model.neurodegeneration(0, compensate_o=True, compensate_psi=True)
    assert removed == [pytest.approx(0.0, abs=1e-12)]
    # The SVD may flip the sign of a neuron (row of W_in and b, column of W_out together): compare up to signs.
    signs = torch.sign((model.weights[0].detach() * ref[0]).sum(dim=1))
    assert torch.all(signs != 0)
    torch.testing.assert_close(model.weights[0].detach(), signs[:, None] * ref[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.biases[0].detach(), signs * ref[1], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.weights[1].detach(), ref[2] * signs[None, :], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.psis[0].detach(), ref[3], rtol=1e-10, atol=1e-10)
    assert float(model.intrinsic_length(0)) == pytest.approx(ref[4], rel=1e-12)


def test_iso_length_and_alternating_fraction_references_call_the_library():
    z = torch.randn(7, 5, dtype=torch.float64)
    torch.testing.assert_close(
        checks._iso_length_reference(z, 0.4), network.isotropic_tanh_gain(z, 0.4).unsqueeze(-1) * z
    )
    from isodl.topology import sparsity

    assert checks._alternating_fraction_reference(16, 3) == sparsity.sparsity_limit(3, 16)


@pytest.mark.parametrize("n, m", [(4, 1), (4, 5), (7, 2), (16, 3)])
def test_alternating_fraction_reference_counts_the_zeros_of_a_rotated_network(n, m):
    """The reference is what diagonalising W_1, W_3, ... of a random dense [n] * (m + 3) network leaves non-zero."""
    gen = torch.Generator().manual_seed(n * 10 + m)
    net = network.IsotropicMLP([n] * (m + 3), dtype=torch.float64, generator=gen)
    with torch.no_grad():
        for w in net.weights:
            w.copy_(torch.randn(w.shape, generator=gen, dtype=torch.float64))
    net.diagonalise_alternating()
    nonzero = sum(int((net.weights[k] != 0).sum()) for k in range(1, m + 1))
    assert checks._alternating_fraction_reference(n, m) == nonzero / (m * n * n)


def test_alternating_fraction_check_accepts_the_derivation_and_names_each_mistake():
    def derived(n, m):
        return ((m // 2) * n * n + ((m + 1) // 2) * n) / (m * n * n)

    assert checks.check_alternating_fraction(derived, verbose=False)
    mistakes = {
        "ceil(M/2) are diagonal": lambda n, m: (((m + 1) // 2) * n * n + (m // 2) * n) / (m * n * n),
        "outnumber the dense ones": lambda n, m: (1 + 1 / n) / 2,
        "keeps its n singular values": lambda n, m: (m // 2) / m,
        "not the fraction that becomes zero": lambda n, m: 1 - derived(n, m),
        "not the number of non-zeros": lambda n, m: derived(n, m) * m * n * n,
        "the width first": lambda n, m: derived(m, n),
    }
    for hint, wrong in mistakes.items():
        result = checks.check_alternating_fraction(wrong, verbose=False)
        assert not result and hint in result.message, (hint, result.message)


def test_rotate_neurons_check_names_the_step_each_mistake_of_the_draft_breaks():
    ref = checks._rotate_neurons_reference
    assert checks.check_rotate_neurons(ref, verbose=False)
    mistakes = {
        "the draft unchanged": lambda w, b, o, q: (q.T @ w, b, o @ q.T),
        "the bias becomes Q^T b": lambda w, b, o, q: (q.T @ w, b, o @ q),
        "not W_out Q^T": lambda w, b, o, q: (q.T @ w, q.T @ b, o @ q.T),
        "incoming weights become Q^T W_in": lambda w, b, o, q: (q @ w, q.T @ b, o @ q),
    }
    for hint, wrong in mistakes.items():
        result = checks.check_rotate_neurons(wrong, verbose=False)
        assert not result and hint in result.message, (hint, result.message)


@pytest.mark.parametrize("seed", SEEDS)
def test_buffer_change_reference_is_what_auto_adapt_does(seed):
    """The reference's width change equals auto_adapt's on a real layer (strengths from a trained-like spectrum)."""
    gen = torch.Generator().manual_seed(seed)
    model = network.IsotropicMLP([6, 9, 3], dtype=torch.float64, generator=gen)
    with torch.no_grad():
        model.weights[0].mul_(2.0 * torch.rand(9, 1, generator=gen, dtype=torch.float64))
    strengths = model.neuron_strengths(0)
    for buffer in (0, 2, 5):
        m = network.IsotropicMLP([6, 9, 3], dtype=torch.float64)
        m.load_state_dict(model.state_dict())
        expected = checks._buffer_change_reference(strengths, 0.95, buffer)
        assert m.auto_adapt(0.95, buffer, generator=torch.Generator().manual_seed(0)) == {0: expected}


def test_buffer_change_check_accepts_the_reference_and_rejects_mistakes():
    assert checks.check_buffer_change(checks._buffer_change_reference, verbose=False)
    assert not checks.check_buffer_change(lambda s, t, b: -checks._buffer_change_reference(s, t, b), verbose=False)
    assert not checks.check_buffer_change(lambda s, t, b: b - int((torch.as_tensor(s) <= t).sum()), verbose=False)

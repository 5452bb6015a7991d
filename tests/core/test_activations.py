"""Tests of isodl.core.activations: elementwise and isotropic maps, their Jacobians and symmetry tools."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from isodl import exercises
from isodl.core.activations import (
    ELEMENTWISE_ACTIVATIONS,
    ISOTROPIC_ACTIVATIONS,
    BasisActivation,
    IsotropicActivation,
    IsotropicTanh,
    elementwise,
    elementwise_jacobian,
    equivariance_error,
    isotropic,
    isotropic_gain,
    isotropic_gelu,
    isotropic_jacobian,
    isotropic_leaky_relu,
    isotropic_relu,
    isotropic_tanh,
    random_orthogonal,
    random_permutation,
    random_signed_permutation,
    scalar_activation,
    scalar_derivative,
)
from isodl.symmetry import checks

F64 = torch.float64
TORCH_FNS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
    "gelu": torch.nn.functional.gelu,
    "sigmoid": torch.sigmoid,
    "identity": lambda t: t,
}


def gaussian(n_rows, n, seed=0, scale=1.0):
    return torch.randn(n_rows, n, generator=torch.Generator().manual_seed(seed), dtype=F64) * scale


# --------------------------------------------------------------------------- elementwise maps


@pytest.mark.parametrize("name", ELEMENTWISE_ACTIVATIONS)
def test_elementwise_standard_basis_is_the_ordinary_function(name):
    x = gaussian(20, 5, seed=1, scale=2.0)
    expected = TORCH_FNS[name](x)
    torch.testing.assert_close(elementwise(x, name), expected)
    torch.testing.assert_close(elementwise(x, name, torch.eye(5, dtype=F64)), expected)
    torch.testing.assert_close(scalar_activation(name)(x), expected)


@pytest.mark.parametrize("name", ELEMENTWISE_ACTIVATIONS)
def test_scalar_derivative_matches_autograd(name):
    t = torch.linspace(-3, 3, 61, dtype=F64)[torch.arange(61) != 30].requires_grad_(True)  # skip the kink at 0
    (g,) = torch.autograd.grad(scalar_activation(name)(t).sum(), t)
    torch.testing.assert_close(scalar_derivative(name)(t.detach()), g)


def test_elementwise_in_rotated_basis_and_overcomplete_normalisation():
    q = random_orthogonal(4, seed=3)
    x = gaussian(10, 4, seed=2, scale=2.0)
    torch.testing.assert_close(elementwise(x, "tanh", q), torch.tanh(x @ q.T) @ q)
    # Row lengths do not matter: the basis is normalised inside.
    torch.testing.assert_close(elementwise(x, "tanh", 3.0 * q), elementwise(x, "tanh", q))
    # Doubling every direction (K = 2n, each row twice) gives the same map thanks to n / K.
    torch.testing.assert_close(elementwise(x, "relu", torch.cat([q, q])), elementwise(x, "relu", q))
    # Antipodal copies (a cross-polytope) with an odd sigma: again Q^T tanh(Q x).
    torch.testing.assert_close(elementwise(x, "tanh", torch.cat([q, -q])), torch.tanh(x @ q.T) @ q)


def test_elementwise_dim_and_numpy():
    x = gaussian(3, 4, seed=4).reshape(3, 4, 1).expand(3, 4, 2).contiguous()
    q = random_orthogonal(4, seed=5)
    y = elementwise(x, "tanh", q, dim=1)
    torch.testing.assert_close(y[..., 0], elementwise(x[..., 0], "tanh", q))
    arr = x[..., 0].numpy()
    out = elementwise(arr, "gelu", q.numpy())
    assert isinstance(out, np.ndarray) and out.shape == arr.shape
    np.testing.assert_allclose(out, elementwise(x[..., 0], "gelu", q).numpy())


@pytest.mark.parametrize("name", ["tanh", "gelu", "sigmoid", "leaky_relu"])
def test_elementwise_jacobian_matches_autograd(name):
    b = gaussian(7, 4, seed=6)
    x = gaussian(1, 4, seed=7)[0]
    for basis in (None, b):
        auto = torch.autograd.functional.jacobian(lambda z: elementwise(z, name, basis), x)
        torch.testing.assert_close(elementwise_jacobian(x, name, basis), auto)


def test_elementwise_jacobian_eigenvectors_are_the_basis():
    q = random_orthogonal(5, seed=8)
    for seed in range(3):
        x = gaussian(1, 5, seed=seed, scale=2.0)[0]
        jac = elementwise_jacobian(x, "tanh", q)
        # Each basis vector is an eigenvector, whatever x is.
        lam = (q @ jac @ q.T).diagonal()
        torch.testing.assert_close(q @ jac, lam[:, None] * q)


# --------------------------------------------------------------------------- isotropic maps


def test_isotropic_tanh_formula_and_bounds():
    x = gaussian(50, 6, seed=9, scale=3.0)
    r = x.norm(dim=1, keepdim=True)
    y = isotropic_tanh(x)
    torch.testing.assert_close(y, torch.tanh(r) * x / r)
    assert (y.norm(dim=1) < 1).all()
    # With an intrinsic length: rho = sqrt(|x|^2 + o).
    rho = torch.sqrt(r**2 + 0.7)
    torch.testing.assert_close(isotropic_tanh(x, o=0.7), torch.tanh(rho) * x / rho)
    torch.testing.assert_close(isotropic_gain(x), torch.tanh(r) / r)


def test_other_isotropic_maps():
    x = gaussian(200, 3, seed=10, scale=1.5)
    r = x.norm(dim=1, keepdim=True)
    xhat = x / r
    torch.testing.assert_close(isotropic_relu(x), torch.clamp(r - 1.0, min=0) * xhat)
    assert torch.equal(isotropic_relu(x)[(r < 1).squeeze()], torch.zeros_like(x[(r < 1).squeeze()]))
    leaky = (torch.clamp(r - 1.0, min=0) + 0.1 * torch.minimum(r, torch.ones_like(r))) * xhat
    torch.testing.assert_close(isotropic_leaky_relu(x, negative_slope=0.1), leaky)
    torch.testing.assert_close(isotropic_gelu(x), torch.nn.functional.gelu(r) * xhat)
    torch.testing.assert_close(isotropic(x, "identity"), x)
    torch.testing.assert_close(isotropic_relu(x, radius=0.0), x)
    # Continuity of the leaky variant at the shell |x| = R.
    shell = xhat * 2.0
    inner, outer = (
        isotropic_leaky_relu(shell * (1 - 1e-9), radius=2.0),
        isotropic_leaky_relu(shell * (1 + 1e-9), radius=2.0),
    )
    torch.testing.assert_close(inner, outer, atol=1e-8, rtol=0)


def test_isotropic_along_another_dim_and_numpy():
    x = gaussian(4, 3, seed=11)
    torch.testing.assert_close(isotropic_tanh(x.T.contiguous(), dim=0), isotropic_tanh(x).T)
    out = isotropic_tanh(x.numpy().astype(np.float32))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", ISOTROPIC_ACTIVATIONS)
@pytest.mark.parametrize("o", [0.0, 1e-30, 0.5])
def test_isotropic_values_and_gradients_finite_at_extremes(dtype, activation, o):
    base = torch.tensor([[0.3, -0.4, 1.2], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]], dtype=F64)
    for magnitude in (0.0, 1e-30, 1e-12, 1.0, 1e12, 1e30):
        x = (base * magnitude).to(dtype).requires_grad_(True)
        y = isotropic(x, activation, o=o)
        assert y.dtype == dtype and y.shape == x.shape
        (g,) = torch.autograd.grad((y * torch.arange(1.0, 4.0, dtype=dtype)).sum(), x)
        assert torch.isfinite(y).all(), (magnitude, y)
        assert torch.isfinite(g).all(), (magnitude, g)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_isotropic_tanh_extreme_norms_values(dtype):
    x = torch.tensor([[3e30, 4e30], [3e-30, 4e-30], [0.0, 0.0]], dtype=dtype)
    y = isotropic_tanh(x)
    torch.testing.assert_close(y[0], torch.tensor([0.6, 0.8], dtype=dtype))
    torch.testing.assert_close(y[1], x[1])  # tanh(r)/r = 1 to first order
    assert torch.equal(y[2], torch.zeros(2, dtype=dtype))


@pytest.mark.parametrize("activation", ISOTROPIC_ACTIVATIONS)
@pytest.mark.parametrize("o", [0.0, 0.3])
def test_isotropic_gradcheck_away_from_and_at_the_origin(activation, o):
    away = gaussian(3, 4, seed=12, scale=1.3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: isotropic(z, activation, o=o, radius=0.5), (away,))
    origin = torch.zeros(2, 4, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: isotropic(z, activation, o=o), (origin,))
    tiny = (gaussian(2, 4, seed=13) * 1e-7).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: isotropic(z, activation, o=o), (tiny,))


def test_isotropic_tanh_gradcheck_near_the_series_switch():
    for radius in (0.9e-3, 1.1e-3, 1e-2):
        x = (torch.tensor([[0.6, 0.8, 0.0]], dtype=F64) * radius).requires_grad_(True)
        assert torch.autograd.gradcheck(isotropic_tanh, (x,))


def test_trainable_intrinsic_length_gets_a_gradient():
    o = torch.tensor(0.4, dtype=F64, requires_grad=True)
    x = gaussian(5, 3, seed=14)
    assert torch.autograd.gradcheck(lambda oo: isotropic_tanh(x, o=oo), (o,))
    module = IsotropicTanh(o=1e-6, learn_o=True).double()
    module(x).sum().backward()
    assert module.log_o.grad is not None and torch.isfinite(module.log_o.grad)
    torch.testing.assert_close(module(x), isotropic_tanh(x, o=1e-6))


def test_modules():
    x = gaussian(6, 4, seed=15)
    torch.testing.assert_close(IsotropicTanh()(x), isotropic_tanh(x))
    torch.testing.assert_close(IsotropicActivation("relu", radius=0.5)(x), isotropic_relu(x, radius=0.5))
    q = random_orthogonal(4, seed=16)
    act = BasisActivation("tanh", q)
    torch.testing.assert_close(act(x), elementwise(x, "tanh", q))
    assert "basis" in dict(act.named_buffers())
    torch.testing.assert_close(BasisActivation("sigmoid")(x), torch.sigmoid(x))
    assert "tanh" in repr(act) and "trainable" in repr(IsotropicTanh(o=0.1, learn_o=True))
    # Works inside a model and trains.
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), IsotropicTanh(), torch.nn.Linear(4, 1)).double()
    model(x).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


# --------------------------------------------------------------------------- Jacobians


@pytest.mark.parametrize("activation", ISOTROPIC_ACTIVATIONS)
@pytest.mark.parametrize("o", [0.0, 0.25])
def test_isotropic_jacobian_matches_autograd(activation, o):
    pts = [gaussian(1, 5, seed=s, scale=sc)[0] for s, sc in ((17, 1.0), (18, 0.3), (19, 3.0), (20, 1e-4))]
    pts.append(torch.zeros(5, dtype=F64))
    for x in pts:
        auto = torch.autograd.functional.jacobian(lambda z: isotropic(z, activation, o=o, radius=0.5), x)
        closed = isotropic_jacobian(x, activation, o=o, radius=0.5)
        torch.testing.assert_close(closed, auto, atol=1e-12, rtol=1e-10)


def test_isotropic_tanh_jacobian_eigenvalues_in_unit_interval_and_co_rotate():
    x = gaussian(200, 6, seed=21, scale=2.0)
    for o in (0.0, 0.5):
        eig = torch.linalg.eigvalsh(isotropic_jacobian(x, "tanh", o=o))
        assert (eig > 0).all() and (eig <= 1 + 1e-12).all()
    # Radial eigenvalue sech^2(r), tangential tanh(r)/r, and the radial eigenvector is x_hat.
    x0 = x[0]
    r = x0.norm()
    jac = isotropic_jacobian(x0)
    torch.testing.assert_close(jac @ (x0 / r), (1 - torch.tanh(r) ** 2) * x0 / r)
    tangent = torch.linalg.svd(x0[None]).Vh[1:]  # orthonormal complement of x0
    torch.testing.assert_close(tangent @ jac, (torch.tanh(r) / r) * tangent)
    # Equivariance of the Jacobian: J(Rx) = R J(x) R^T.
    q = random_orthogonal(6, seed=22)
    torch.testing.assert_close(isotropic_jacobian(q @ x0), q @ jac @ q.T)
    torch.testing.assert_close(isotropic_jacobian(torch.zeros(6, dtype=F64)), torch.eye(6, dtype=F64))


# --------------------------------------------------------------------------- symmetry


def test_symmetry_matrices():
    q = random_orthogonal(7, seed=23)
    torch.testing.assert_close(q @ q.T, torch.eye(7, dtype=F64))
    assert torch.equal(q, random_orthogonal(7, seed=23)) and not torch.equal(q, random_orthogonal(7, seed=24))
    p = random_permutation(6, seed=1)
    assert torch.equal(p.abs().sum(0), torch.ones(6, dtype=F64)) and torch.equal(p.sum(1), torch.ones(6, dtype=F64))
    s = random_signed_permutation(6, seed=2)
    torch.testing.assert_close(s @ s.T, torch.eye(6, dtype=F64))
    assert set(s.unique().tolist()) <= {-1.0, 0.0, 1.0} and (s < 0).any()
    assert random_orthogonal(3, dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("activation", ISOTROPIC_ACTIVATIONS)
def test_isotropic_maps_are_orthogonally_equivariant(activation):
    x = gaussian(300, 6, seed=25, scale=2.0)
    for seed in range(5):
        q = random_orthogonal(6, seed=seed)
        assert equivariance_error(lambda z: isotropic(z, activation), q, x) < 1e-12


@pytest.mark.parametrize("name", ELEMENTWISE_ACTIVATIONS)
def test_elementwise_maps_discrete_symmetry_only(name):
    x = gaussian(300, 6, seed=26, scale=2.0)
    fn = scalar_activation(name)
    for seed in range(3):
        assert equivariance_error(fn, random_permutation(6, seed=seed), x) == 0.0
    odd = name in ("tanh", "identity")
    signed_err = max(equivariance_error(fn, random_signed_permutation(6, seed=seed), x) for seed in range(3))
    assert (signed_err < 1e-15) if odd else (signed_err > 0.05)
    if name != "identity":
        assert equivariance_error(fn, random_orthogonal(6, seed=27), x) > 0.05


def test_basis_activation_symmetry_follows_its_basis():
    q = random_orthogonal(5, seed=28)
    x = gaussian(200, 5, seed=29, scale=2.0)
    fn = BasisActivation("tanh", q)
    sp = random_signed_permutation(5, seed=30)
    g = q.T @ sp @ q  # permutes and flips the rotated basis vectors
    assert equivariance_error(fn, g, x) < 1e-12
    assert equivariance_error(fn, sp, x) > 0.05  # the standard basis is no longer special


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 9), seed=st.integers(0, 10_000), log_scale=st.floats(-8, 8), o=st.sampled_from([0.0, 0.1, 2.0]))
def test_isotropic_tanh_equivariance_property(n, seed, log_scale, o):
    x = gaussian(16, n, seed=seed, scale=10.0**log_scale)
    q = random_orthogonal(n, seed=seed + 1)
    y = isotropic_tanh(x, o=o)
    assert equivariance_error(lambda z: isotropic_tanh(z, o=o), q, x) < 1e-12
    assert (y.norm(dim=1) <= 1 + 1e-15).all()  # < 1 exactly; tanh rounds to 1.0 for long rows
    # The direction is kept.
    torch.testing.assert_close((y * x).sum(1), y.norm(dim=1) * x.norm(dim=1))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "error", "word"),
    [
        (lambda: isotropic_tanh([[1.0, 2.0]]), TypeError, "x"),
        (lambda: isotropic_tanh(torch.tensor([[1, 2]])), TypeError, "x"),
        (lambda: isotropic_tanh(torch.tensor(1.0)), ValueError, "x"),
        (lambda: isotropic_tanh(torch.ones(2, 3), o=-1.0), ValueError, "o"),
        (lambda: isotropic_tanh(torch.ones(2, 3), o=float("nan")), ValueError, "o"),
        (lambda: isotropic_tanh(torch.ones(2, 3), o=torch.ones(2)), ValueError, "o"),
        (lambda: isotropic_tanh(torch.ones(2, 3), dim=2), ValueError, "dim"),
        (lambda: isotropic(torch.ones(2, 3), "sigmoid"), ValueError, "activation"),
        (lambda: isotropic(torch.ones(2, 3), "relu", radius=-1.0), ValueError, "radius"),
        (lambda: isotropic(torch.ones(2, 3), "leaky_relu", negative_slope=2.0), ValueError, "negative_slope"),
        (lambda: elementwise(torch.ones(2, 3), "swish"), ValueError, "activation"),
        (lambda: elementwise(torch.ones(2, 3), "tanh", torch.eye(4)), ValueError, "basis"),
        (lambda: elementwise(torch.ones(2, 3), "tanh", torch.ones(2, 3)), ValueError, "basis"),
        (lambda: elementwise(torch.ones(2, 3), "tanh", torch.zeros(3, 3)), ValueError, "basis"),
        (lambda: elementwise(torch.ones(2, 3), "tanh", torch.eye(3).int()), TypeError, "basis"),
        (lambda: IsotropicTanh(o=0.0, learn_o=True), ValueError, "o"),
        (lambda: IsotropicActivation("tanh", learn_o=1), TypeError, "learn_o"),
        (lambda: random_orthogonal(0), ValueError, "n"),
        (lambda: random_orthogonal(3, seed=-1), ValueError, "seed"),
        (lambda: random_permutation(3, dtype=torch.int64), TypeError, "dtype"),
        (
            lambda: equivariance_error(torch.tanh, torch.eye(4, dtype=F64), torch.ones(2, 3, dtype=F64)),
            ValueError,
            "transform",
        ),
        (lambda: equivariance_error("tanh", torch.eye(3, dtype=F64), torch.ones(2, 3, dtype=F64)), TypeError, "fn"),
    ],
)
def test_bad_inputs_name_the_argument(call, error, word):
    with pytest.raises(error, match=rf"\b{word}\b"):
        call()


# --------------------------------------------------------------------------- the notebook-01 exercise check


def iso_correct(x):
    r = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    return torch.where(r > 0, torch.tanh(safe) / safe, torch.ones_like(r)) * x


def iso_stub(x):
    raise NotImplementedError("Exercise: write your solution here, then run the check cell below.")


def iso_nan_at_origin(x):
    r = x.norm(dim=-1, keepdim=True)
    return torch.tanh(r) * x / r


def iso_nan_gradient(x):
    r = x.norm(dim=-1, keepdim=True)
    return torch.where(r > 0, torch.tanh(r) / r, torch.ones_like(r)) * x


def iso_elementwise(x):
    return torch.tanh(x)


def iso_no_division(x):
    r = x.norm(dim=-1, keepdim=True)
    return torch.tanh(r) * x


def iso_wrong_dim(x):
    r = x.norm(dim=0, keepdim=True)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    return torch.tanh(safe) / safe * x


def test_check_isotropic_tanh_passes_reference_and_fails_mistakes(capsys):
    assert exercises.CHECKS["isotropic_tanh"] is checks.check_isotropic_tanh
    assert checks.check_isotropic_tanh(iso_correct)
    assert checks.check_isotropic_tanh(isotropic_tanh)
    assert "PASS" in capsys.readouterr().out
    expectations = {
        iso_stub: "not done yet",
        iso_nan_at_origin: "origin",
        iso_nan_gradient: "gradient",
        iso_elementwise: "length",
        iso_no_division: "direction",
        iso_wrong_dim: "dim=-1",
    }
    for fn, words in expectations.items():
        result = checks.check_isotropic_tanh(fn, verbose=False)
        assert not result, fn.__name__
        assert words in result.message, (fn.__name__, result.message)

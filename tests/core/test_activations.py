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


# --------------------------------------------------------------------------- one implementation: edges, reference, paths

F32 = torch.float32
DTYPES = [F32, F64]
EDGE_NORMS = (0.0, 1e-30, 1.0, 1e30)
# A batch whose squared length overflows the dtype takes the guarded path for every row.
OVERFLOWING_NORM = {F32: 1e30, F64: 1e200}
DIRECTIONS = torch.tensor([[0.6, -0.8, 0.0, 0.0], [0.5, 0.5, 0.5, -0.5], [0.0, 0.0, 0.0, 1.0]], dtype=F64)
# the limit h(0) of the gain sigma(rho) / rho at the origin, radius 0.5 and negative_slope 0.1
H0 = {"tanh": 1.0, "relu": 0.0, "leaky_relu": 0.1, "gelu": 0.5, "identity": 1.0}


def rows_of_norm(norm, dtype):
    """Three rows of Euclidean length ``norm`` (exactly representable directions), in ``dtype``."""
    return (DIRECTIONS * norm).to(dtype)


def reference_isotropic(x, activation, o=0.0, radius=0.5, slope=0.1):
    """The textbook formula sigma(rho) x / rho, rho = sqrt(|x|^2 + o), in float64 (limit h(0) where rho = 0)."""
    x = x.double()
    rho = torch.sqrt((x * x).sum(-1, keepdim=True) + float(o))
    safe = torch.where(rho > 0, rho, torch.ones_like(rho))
    sigma = {
        "tanh": lambda r: torch.tanh(r),
        "relu": lambda r: torch.clamp(r - radius, min=0.0),
        "leaky_relu": lambda r: torch.clamp(r - radius, min=0.0) + slope * torch.clamp(r, max=radius),
        "gelu": lambda r: torch.nn.functional.gelu(r),
        "identity": lambda r: r,
    }[activation]
    h = torch.where(rho > 0, sigma(safe) / safe, torch.full_like(rho, H0[activation]))
    return h * x, h


def o_value(o, dtype):
    """``o`` for a call: a float, or a fresh 0-d tensor of ``dtype`` that takes a gradient."""
    return torch.tensor(o[0], dtype=dtype, requires_grad=True) if isinstance(o, tuple) else o


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ISOTROPIC_ACTIVATIONS)
@pytest.mark.parametrize("o", [0.0, 1e-30, 0.5, (0.5,)], ids=["o=0", "o=1e-30", "o=0.5", "o=tensor"])
def test_edge_rows_give_finite_values_and_gradients(dtype, activation, o):
    """Rows of length 0, 1e-30, 1 and 1e30, alone and together: finite values and gradients, right limits."""
    weights = torch.arange(1.0, 5.0, dtype=dtype)
    batches = {norm: rows_of_norm(norm, dtype) for norm in EDGE_NORMS}
    batches["all together"] = torch.cat(list(batches.values()))
    for label, batch in batches.items():
        oo = o_value(o, dtype)
        x = batch.clone().requires_grad_(True)
        y = isotropic(x, activation, o=oo, radius=0.5, negative_slope=0.1)
        h = isotropic_gain(x, activation, o=oo, radius=0.5, negative_slope=0.1)
        assert y.dtype == dtype and y.shape == x.shape and h.shape == (x.shape[0], 1), label
        assert torch.isfinite(y).all() and torch.isfinite(h).all(), (label, y, h)
        leaves = [x] + ([oo] if isinstance(oo, torch.Tensor) else [])
        grads = torch.autograd.grad((y * weights).sum() + (h * 3.0).sum(), leaves, allow_unused=True)
        for g in grads:
            assert g is None or torch.isfinite(g).all(), (label, g)
        # values against the textbook formula, computed in float64 (no overflow at 1e30 there)
        ref_y, ref_h = reference_isotropic(batch, activation, float(o[0] if isinstance(o, tuple) else o))
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == F32 else dict(rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(h.detach().double(), ref_h, **tol, msg=label)
        scale = batch.double().norm(dim=1, keepdim=True).clamp(min=1.0)  # outputs as long as 1e30 for gelu, relu
        torch.testing.assert_close(y.detach().double() / scale, ref_y / scale, **tol, msg=label)
    # At the origin and at 1e-30 (o = 0 or tiny) the Jacobian is h(0) I: the gradient is h(0) * weights.
    if not isinstance(o, tuple) and o < 1e-20:
        for norm in (0.0, 1e-30):
            x = rows_of_norm(norm, dtype).requires_grad_(True)
            (g,) = torch.autograd.grad(
                (isotropic(x, activation, o=o, radius=0.5, negative_slope=0.1) * weights).sum(), x
            )
            torch.testing.assert_close(g, (H0[activation] * weights).expand_as(g), msg=str(norm))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ISOTROPIC_ACTIVATIONS)
@pytest.mark.parametrize("o", [0.0, 0.3])
def test_isotropic_and_gain_match_the_reference_formula_with_gradients(dtype, activation, o):
    """Ordinary inputs: values and gradients equal the textbook formula's (float64 autograd) to rounding."""
    x64 = torch.cat([gaussian(40, 6, seed=31 + k, scale=s) for k, s in enumerate((0.01, 0.3, 1.0, 3.0, 30.0))])
    x64 = x64[(x64.norm(dim=1) - 0.5).abs() > 1e-3]  # away from the kink of the shifted ReLUs
    w = gaussian(len(x64), 6, seed=40)
    x = x64.to(dtype).requires_grad_(True)
    y = isotropic(x, activation, o=o, radius=0.5, negative_slope=0.1)
    h = isotropic_gain(x, activation, o=o, radius=0.5, negative_slope=0.1)
    (g,) = torch.autograd.grad((y * w.to(dtype)).sum(), x)
    xr = x64.to(dtype).double().requires_grad_(True)
    ref_y, ref_h = reference_isotropic(xr, activation, o)
    (ref_g,) = torch.autograd.grad((ref_y * w).sum(), xr)
    tol = dict(rtol=2e-6, atol=2e-6) if dtype == F32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y.detach().double(), ref_y.detach(), **tol)
    torch.testing.assert_close(h.double(), ref_h.detach(), **tol)
    torch.testing.assert_close(g.double(), ref_g, **tol)
    torch.testing.assert_close(y, h * x)


@pytest.mark.parametrize("activation", ISOTROPIC_ACTIVATIONS)
def test_gradcheck_of_the_map_and_the_gain_with_a_trainable_o(activation):
    """torch.autograd.gradcheck in float64, with respect to x and to a tensor o, at ordinary, tiny and zero rows."""
    x = torch.cat([gaussian(3, 4, seed=41, scale=1.3), gaussian(1, 4, seed=42) * 1e-7, torch.zeros(1, 4, dtype=F64)])
    x.requires_grad_(True)
    o = torch.tensor(0.3, dtype=F64, requires_grad=True)
    kwargs = dict(radius=0.5, negative_slope=0.1)
    assert torch.autograd.gradcheck(lambda z, oo: isotropic(z, activation, o=oo, **kwargs), (x, o))
    assert torch.autograd.gradcheck(lambda z, oo: isotropic_gain(z, activation, o=oo, **kwargs), (x, o))
    # With o = 0 the gain of gelu, Phi(|x|), is a cone at the origin (the map Phi(|x|) x is smooth): no tiny row.
    x0 = torch.cat([x[:3], x[4:]]).detach().requires_grad_(True) if activation == "gelu" else x
    assert torch.autograd.gradcheck(lambda z: isotropic_gain(z, activation, **kwargs), (x0,))
    # second derivatives too (the map is built from differentiable operations only)
    away = gaussian(3, 4, seed=43, scale=1.3).requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda z: isotropic(z, activation, o=0.2, **kwargs), (away,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ISOTROPIC_ACTIVATIONS)
@pytest.mark.parametrize("o", [0.0, 0.5])
def test_plain_and_guarded_paths_agree(dtype, activation, o):
    """A batch with one overflowing row takes the guarded path: its other rows come out as on the plain path."""
    x = torch.cat([gaussian(30, 5, seed=44, scale=2.0), torch.zeros(1, 5, dtype=F64), gaussian(2, 5, seed=45) * 1e-4])
    x = x.to(dtype)
    long_row = (torch.tensor([[3.0, 0.0, -4.0, 0.0, 0.0]], dtype=F64) / 5 * OVERFLOWING_NORM[dtype]).to(dtype)
    w = gaussian(len(x) + 1, 5, seed=46).to(dtype)
    kwargs = dict(o=o, radius=0.5, negative_slope=0.1)
    a = x.clone().requires_grad_(True)
    mixed = torch.cat([x, long_row]).requires_grad_(True)
    ya, yb = isotropic(a, activation, **kwargs), isotropic(mixed, activation, **kwargs)
    (ga,) = torch.autograd.grad((ya * w[:-1]).sum(), a)
    (gb,) = torch.autograd.grad((yb * w).sum(), mixed)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == F32 else dict(rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(yb[:-1], ya, **tol)
    torch.testing.assert_close(gb[:-1], ga, **tol)
    torch.testing.assert_close(
        isotropic_gain(mixed, activation, **kwargs)[:-1], isotropic_gain(x, activation, **kwargs)
    )
    assert torch.isfinite(yb).all() and torch.isfinite(gb).all()
    expected_long = {"tanh": long_row / OVERFLOWING_NORM[dtype]}.get(activation, long_row)  # sigma(rho) / rho -> ...
    torch.testing.assert_close(yb[-1:], expected_long)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # inside torch.func
def test_works_under_torch_func_transforms():
    """vmap, jacrev and jacfwd give the closed-form Jacobian (vmap takes the guarded path)."""
    x = gaussian(5, 4, seed=47, scale=1.5)
    x[0] = 0.0
    for activation in ("tanh", "gelu"):
        fn = lambda z: isotropic(z, activation, o=0.1)  # noqa: E731
        closed = isotropic_jacobian(x, activation, o=0.1)
        torch.testing.assert_close(torch.func.vmap(torch.func.jacrev(fn))(x), closed)
        torch.testing.assert_close(torch.func.jacfwd(fn)(x[1]), closed[1])
        torch.testing.assert_close(torch.func.vmap(fn)(x), fn(x))


def test_benchmark_runs_with_tiny_sizes(capsys):
    """Smoke test of benchmarks/bench_activations.py (not a timing test: only that it runs and reports)."""
    import importlib.util

    from tools.course import ROOT

    spec = importlib.util.spec_from_file_location("bench_activations", ROOT / "benchmarks" / "bench_activations.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        rows = bench.main(["--sizes", "6x3", "--repeats", "2", "--no-mallopt"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "old special case" in out and "new/old" in out
    assert len(rows) == 6 and {r["case"] for r in rows} == {"autoencoder", "network", "guarded"}
    assert {r["dtype"] for r in rows} == {"float32", "float64"}
    for r in rows:
        assert r["new_us"] > 0 and r["old_us"] > 0 and r["ratio"] > 0
        if r["case"] != "guarded":
            assert r["max_diff"] == 0.0, r  # the shared function computes exactly what the special cases did
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "512by256"])


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

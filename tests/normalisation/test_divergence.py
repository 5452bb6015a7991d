"""Tests of isodl.affine: the one-step identities (float64), kernels, layers and bad input."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from isodl.normalisation import checks, divergence, layers
from isodl.normalisation import plots as norm_plots

F64 = torch.float64


def _inputs(n=6, d=12, seed=0, lo=-1.0, hi=1.5):
    """Rows with norms spread over more than two orders of magnitude."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=F64)
    return x * torch.logspace(lo, hi, n, dtype=F64)[:, None]


def _seeded(module_fn, seed=0):
    torch.manual_seed(seed)
    return module_fn().to(F64)


# --------------------------------------------------------------------------- the one-step identities


def test_linear_ratio_is_norm_squared_plus_one():
    x = _inputs()
    step = divergence.one_step(_seeded(lambda: nn.Linear(12, 5)), x, lr=0.01)
    torch.testing.assert_close(step.ratio, layers.affine_factor(x), rtol=0, atol=1e-10)
    # The same factor for every output unit, and the step points straight downhill.
    factor = layers.affine_factor(x)[:, None].expand(-1, 5)
    torch.testing.assert_close(step.unit_ratios, factor, rtol=0, atol=1e-10)
    torch.testing.assert_close(step.cosine, torch.ones(6, dtype=F64), rtol=0, atol=1e-12)


def test_linear_without_bias_ratio_is_norm_squared():
    x = _inputs()
    step = divergence.one_step(_seeded(lambda: nn.Linear(12, 5, bias=False)), x)
    torch.testing.assert_close(step.ratio, layers.affine_factor(x, bias=False), rtol=0, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    d=st.integers(1, 30),
    out=st.integers(1, 6),
    log_scale=st.floats(-2.0, 2.0),
    lr=st.sampled_from([1e-3, 0.1, 3.0]),
    seed=st.integers(0, 2**16),
)
def test_linear_ratio_property(d, out, log_scale, lr, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, d, generator=gen, dtype=F64) * 10.0**log_scale
    torch.manual_seed(seed)
    layer = nn.Linear(d, out).to(F64)
    step = divergence.one_step(layer, x, lr=lr, seed=seed)
    factor = layers.affine_factor(x)
    assert torch.allclose(step.ratio, factor, rtol=1e-12, atol=1e-10)


def test_affine_like_ratio_is_one():
    x = _inputs(lo=-2.0, hi=2.0)
    step = divergence.one_step(_seeded(lambda: layers.AffineLike(12, 5)), x, lr=0.5)
    torch.testing.assert_close(step.ratio, torch.ones(6, dtype=F64), rtol=0, atol=1e-10)
    torch.testing.assert_close(step.unit_ratios, torch.ones(6, 5, dtype=F64), rtol=0, atol=1e-10)


def test_affine_like_without_bias_factor():
    x = _inputs()
    step = divergence.one_step(_seeded(lambda: layers.AffineLike(12, 5, bias=False)), x)
    sq = (x * x).sum(dim=1)
    torch.testing.assert_close(step.ratio, sq / (sq + 1), rtol=0, atol=1e-10)


def test_l2_then_linear_ratio_is_two():
    x = _inputs()
    layer = _seeded(lambda: nn.Sequential(layers.L2Norm(), nn.Linear(12, 5)))
    step = divergence.one_step(layer, x)
    torch.testing.assert_close(step.ratio, torch.full((6,), 2.0, dtype=F64), rtol=0, atol=1e-10)


def test_rms_then_linear_ratio_is_d_plus_one():
    d = 12
    x = _inputs(d=d)
    layer = _seeded(lambda: nn.Sequential(layers.RMSNorm(d, elementwise_affine=False), nn.Linear(d, 5)))
    assert isinstance(layer[0], nn.RMSNorm), "torch's RMSNorm is used when present"
    step = divergence.one_step(layer, x)
    torch.testing.assert_close(step.ratio, torch.full((6,), d + 1.0, dtype=F64), rtol=0, atol=1e-10)


def test_rms_gain_brings_back_a_sample_dependent_factor():
    d = 12
    x = _inputs(d=d)
    norm = nn.RMSNorm(d, elementwise_affine=True).to(F64)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.2, 2.0, d, dtype=F64))
    norm.weight.requires_grad_(False)  # a fixed, non-uniform gain
    layer = nn.Sequential(norm, _seeded(lambda: nn.Linear(d, 5)))
    step = divergence.one_step(layer, x)
    xhat = layers.rms_normalize(x)
    predicted = (norm.weight**2 * xhat**2).sum(dim=1) + 1
    torch.testing.assert_close(step.ratio, predicted, rtol=0, atol=1e-10)
    assert float(predicted.max() - predicted.min()) > 1.0


def test_conv_position_ratio_and_leak():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 7, 6, generator=gen, dtype=F64) * torch.tensor([0.3, 3.0], dtype=F64).view(2, 1, 1, 1)
    conv = _seeded(lambda: nn.Conv2d(3, 4, 3, padding=1))
    local = divergence.conv_position_step(conv, x, (2, 3))
    n2 = divergence.patch_sq_norms(x, 3, padding=1)[:, 0, 2, 3]
    torch.testing.assert_close(local.ratio, n2 + 1, rtol=0, atol=1e-10)
    for n in range(2):
        k = divergence.conv_kernel(x[n : n + 1], 3, padding=1)
        q = 2 * 6 + 3
        torch.testing.assert_close(local.leak[n].reshape(-1), k[q], rtol=0, atol=1e-10)


def test_patchnorm_affine_like_ratio_is_one_and_leak_is_cosine():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 7, 6, generator=gen, dtype=F64) * torch.tensor([0.1, 10.0], dtype=F64).view(2, 1, 1, 1)
    layer = _seeded(lambda: layers.PatchNorm2d(3, 4, 3, padding=1))
    local = divergence.conv_position_step(layer, x, (4, 1))
    torch.testing.assert_close(local.ratio, torch.ones(2, dtype=F64), rtol=0, atol=1e-10)
    k = divergence.conv_kernel(x[1:], 3, padding=1, normalised=True)
    torch.testing.assert_close(local.leak[1].reshape(-1), k[4 * 6 + 1], rtol=0, atol=1e-10)


def test_patchnorm_normaliser_ratio_is_two():
    x = torch.randn(2, 2, 6, 6, generator=torch.Generator().manual_seed(3), dtype=F64)
    layer = _seeded(
        lambda: layers.PatchNorm2d(2, 3, (3, 2), stride=(2, 1), dilation=(1, 2), form="normaliser", eps=0.0)
    )
    local = divergence.conv_position_step(layer, x, (1, 1))
    torch.testing.assert_close(local.ratio, torch.full((2,), 2.0, dtype=F64), rtol=0, atol=1e-10)


def test_attention_value_path_ratio():
    x = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(4), dtype=F64) * 2.0
    att = _seeded(lambda: layers.SingleHeadAttention(6, d_key=4)).freeze_pattern()
    pattern = att.pattern(x).detach()
    for t in (0, 3):
        local = divergence.token_step(att, x, t)
        predicted = ((pattern @ x)[:, t] ** 2).sum(dim=-1) + 1
        torch.testing.assert_close(local.ratio, predicted, rtol=0, atol=1e-10)
        for n in range(3):
            k = divergence.value_path_kernel(x[n : n + 1], pattern[n : n + 1])
            torch.testing.assert_close(local.leak[n], k[t], rtol=0, atol=1e-10)
    # Rows of a softmax pattern sum to 1, so the kernel is A X X^T A^T + 1.
    k = divergence.value_path_kernel(x[:1], pattern[:1])
    ax = pattern[0] @ x[0]
    torch.testing.assert_close(k, ax @ ax.T + 1, rtol=0, atol=1e-12)


def test_attention_with_trainable_pattern_is_not_the_value_identity():
    x = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(5), dtype=F64) * 2.0
    att = _seeded(lambda: layers.SingleHeadAttention(6, d_key=4))
    pattern = att.pattern(x).detach()
    local = divergence.token_step(att, x, 1, lr=0.1)
    predicted = ((pattern @ x)[:, 1] ** 2).sum(dim=-1) + 1
    assert float((local.ratio - predicted).abs().max()) > 1e-6


# --------------------------------------------------------------------------- mini-batch kernels


@pytest.mark.parametrize(
    "layer_fn,normalised", [(lambda: nn.Linear(8, 3), False), (lambda: layers.AffineLike(8, 3), True)]
)
def test_minibatch_step_follows_the_kernel(layer_fn, normalised):
    x = _inputs(n=7, d=8, lo=-0.5, hi=0.5)
    g = torch.randn(7, 3, generator=torch.Generator().manual_seed(6), dtype=F64)
    step = divergence.one_step(_seeded(layer_fn), x, g, lr=0.1, batch=True)
    k = divergence.minibatch_kernel(x, normalised=normalised)
    torch.testing.assert_close(step.dz, -(0.1 / 7) * k @ g, rtol=0, atol=1e-12)
    torch.testing.assert_close(step.grad, g / 7)
    if normalised:
        torch.testing.assert_close(torch.diagonal(k), torch.ones(7, dtype=F64), rtol=0, atol=1e-15)
        assert float(k.abs().max()) <= 1 + 1e-15
    else:
        torch.testing.assert_close(step.dz, divergence.predicted_minibatch_step(x, g, 0.1), rtol=0, atol=1e-12)


def test_conv_minibatch_step_follows_the_kernel():
    x = torch.randn(2, 2, 5, 5, generator=torch.Generator().manual_seed(7), dtype=F64)
    conv = _seeded(lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1))
    step = divergence.one_step(conv, x, lr=0.1, batch=True)
    k = divergence.conv_kernel(x, 3, stride=2, padding=1)
    g = step.grad * 2  # per-sample gradients g_m; the mean loss divides by N = 2
    gf = g.permute(0, 2, 3, 1).reshape(-1, 3)
    pred = (-(0.1 / 2) * k @ gf).reshape(2, 3, 3, 3).permute(0, 3, 1, 2)
    torch.testing.assert_close(step.dz, pred, rtol=0, atol=1e-12)


def test_self_term_share():
    k = torch.tensor([[2.0, 1.0, -1.0], [1.0, 1.0, 0.0], [-1.0, 0.0, 3.0]], dtype=F64)
    torch.testing.assert_close(divergence.self_term_share(k), torch.tensor([0.5, 0.5, 0.75], dtype=F64))
    assert float(divergence.self_term_share(torch.eye(4, dtype=F64)).min()) == 1.0
    x = torch.randn(500, 10, generator=torch.Generator().manual_seed(8), dtype=F64) + 0.5
    sizes = [1, 2, 8, 32, 128]
    for kind in ("affine", "l2", "affine_like"):
        curve = divergence.self_share_curve(x, sizes, kind=kind, n_batches=5)
        assert curve[0] == 1.0 and all(curve[i + 1] < curve[i] for i in range(len(sizes) - 1)), (kind, curve)


# --------------------------------------------------------------------------- the layers


def test_affine_like_matches_its_definition_and_linear_interface():
    torch.manual_seed(0)
    layer = layers.AffineLike(12, 5).to(F64)
    ref = nn.Linear(12, 5)
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert layer.weight.shape == ref.weight.shape and layer.bias.shape == ref.bias.shape
    x = _inputs()
    expected = (x @ layer.weight.T + layer.bias) / torch.sqrt((x * x).sum(dim=1, keepdim=True) + 1)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-14)
    w_tilde = torch.cat([layer.weight, layer.bias[:, None]], dim=1)
    torch.testing.assert_close(layer(x), layers.augmented_sphere(x) @ w_tilde.T, rtol=0, atol=1e-13)
    # Leading batch dimensions work like nn.Linear's.
    assert layer(torch.randn(2, 3, 12, dtype=F64)).shape == (2, 3, 5)
    assert "init='normal'" in repr(layer)


def test_affine_like_is_injective_and_not_scale_invariant():
    x = _inputs(n=8, lo=-2, hi=2)
    u = layers.augmented_sphere(x)
    torch.testing.assert_close(torch.linalg.vector_norm(u, dim=1), torch.ones(8, dtype=F64))
    torch.testing.assert_close(layers.recover_input(u), x, rtol=1e-12, atol=1e-12)
    # x/|x| forgets the norm: 2x and x give the same point.
    torch.testing.assert_close(layers.l2_normalize(2 * x), layers.l2_normalize(x))
    assert float((layers.augmented_sphere(2 * x) - u).abs().max()) > 1e-3
    torch.manual_seed(0)
    layer = layers.AffineLike(12, 5).to(F64).requires_grad_(False)
    assert float((layer(3 * x) - layer(x)).abs().max()) > 1e-2
    # Its two regimes: nearly affine for small inputs, nearly W x/|x| for large ones.
    small = 1e-6 * x
    torch.testing.assert_close(layer(small), small @ layer.weight.T + layer.bias, rtol=1e-6, atol=1e-7)
    big = 1e6 * x
    torch.testing.assert_close(layer(big), layers.l2_normalize(big) @ layer.weight.T, rtol=1e-5, atol=1e-6)


def test_affine_like_initialisations():
    torch.manual_seed(0)
    layer = layers.AffineLike(256, 128).requires_grad_(False)
    assert abs(float(layer.weight.std()) - 1.0) < 0.02 and abs(float(layer.weight.mean())) < 0.02
    assert torch.equal(layer.bias, torch.zeros(128))
    torch.manual_seed(0)
    lin_like = layers.AffineLike(256, 128, init="linear").requires_grad_(False)
    bound = 1 / math.sqrt(256)
    assert float(lin_like.weight.abs().max()) <= bound and float(lin_like.weight.std()) < 0.05
    assert float(lin_like.bias.abs().max()) <= bound and float(lin_like.bias.abs().max()) > 0
    # The pitfall: with nn.Linear's scale every layer shrinks its input.
    x = torch.randn(200, 256)
    assert float(lin_like(x).std()) < 0.1 < 0.8 < float(layer(x).std())


def test_patchnorm_matches_patches_and_fused_forms():
    x = torch.randn(2, 3, 8, 7, generator=torch.Generator().manual_seed(9), dtype=F64)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    p = divergence.patch_matrix(x, (3, 2), **kw)
    n2 = divergence.patch_sq_norms(x, (3, 2), **kw)
    torch.testing.assert_close(n2.reshape(2, -1), (p * p).sum(dim=-1), rtol=0, atol=1e-12)
    torch.manual_seed(0)
    layer = layers.PatchNorm2d(3, 4, (3, 2), **kw).to(F64).requires_grad_(False)
    torch.testing.assert_close(layer.patch_sq_norms(x), n2)
    z = layer(x)
    w = layer.weight.reshape(4, -1)
    expected = ((p @ w.T + layer.bias) / torch.sqrt((p * p).sum(-1, keepdim=True) + 1)).transpose(1, 2)
    torch.testing.assert_close(z.reshape(2, 4, -1), expected, rtol=0, atol=1e-12)
    # Normaliser form: bias outside, scale-invariant.
    torch.manual_seed(0)
    norm = (
        layers.PatchNorm2d(3, 4, (3, 2), form="normaliser", eps=0.0, **{**kw, "padding": 0})
        .to(F64)
        .requires_grad_(False)
    )
    torch.testing.assert_close(norm(5 * x), norm(x), rtol=0, atol=1e-12)
    assert float((layer(5 * x) - layer(x)).abs().max()) > 1e-2


def test_patchnorm_1x1_is_a_pixelwise_affine_like_layer():
    x = torch.randn(2, 5, 4, 3, generator=torch.Generator().manual_seed(10), dtype=F64)
    torch.manual_seed(0)
    pn = layers.PatchNorm2d(5, 6, 1).to(F64)
    al = layers.AffineLike(5, 6).to(F64)
    with torch.no_grad():
        al.weight.copy_(pn.weight.reshape(6, 5))
        al.bias.copy_(pn.bias)
    torch.testing.assert_close(pn(x), al(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), rtol=0, atol=1e-13)


def test_float32_and_dtype_kept():
    layer = layers.AffineLike(4, 3)
    assert layer(torch.randn(2, 4)).dtype == torch.float32
    assert layers.PatchNorm2d(2, 3, 3)(torch.randn(1, 2, 5, 5)).dtype == torch.float32
    step = divergence.one_step(layer, torch.randn(3, 4), lr=0.1)
    assert torch.allclose(step.ratio, torch.ones(3), atol=1e-4)


def test_plot_divergence_returns_a_figure():
    fig = norm_plots.plot_divergence(input_norm=2.0, batch_size=24, data="gaussian")
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    layer = layers.AffineLike(4, 3)
    with pytest.raises(ValueError, match="4 features"):
        layer(torch.randn(2, 5))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(2, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="x must be"):
        layer([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="in_features"):
        layers.AffineLike(0, 3)
    with pytest.raises(ValueError, match="init"):
        layers.AffineLike(4, 3, init="xavier")
    pn = layers.PatchNorm2d(2, 3, 3)
    with pytest.raises(ValueError, match="4-D input"):
        pn(torch.randn(2, 5, 5))
    with pytest.raises(ValueError, match="2 channels"):
        pn(torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="form"):
        layers.PatchNorm2d(2, 3, 3, form="batch")
    with pytest.raises(ValueError, match="kernel_size"):
        layers.PatchNorm2d(2, 3, (3, 3, 3))
    with pytest.raises(TypeError, match="layer must be"):
        divergence.one_step(lambda x: x, torch.randn(2, 3))
    with pytest.raises(ValueError, match="grad_out must have the shape"):
        divergence.one_step(nn.Linear(3, 2), torch.randn(2, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="no trainable parameters"):
        divergence.one_step(layers.L2Norm(), torch.randn(2, 3))
    with pytest.raises(ValueError, match="lr must be > 0"):
        divergence.one_step(nn.Linear(3, 2), torch.randn(2, 3), lr=0.0)
    with pytest.raises(ValueError, match="position\\[0\\]"):
        divergence.conv_position_step(nn.Conv2d(1, 1, 3), torch.randn(1, 1, 5, 5), (3, 0))
    with pytest.raises(ValueError, match="square"):
        divergence.self_term_share(torch.randn(2, 3))
    with pytest.raises(ValueError, match="2 dimensions"):
        divergence.minibatch_kernel(torch.randn(3))
    with pytest.raises(ValueError, match="upper hemisphere"):
        layers.recover_input(torch.tensor([[0.6, -0.8]]))
    with pytest.raises(ValueError, match="pattern must have shape"):
        divergence.value_path_kernel(torch.randn(1, 4, 3), torch.rand(1, 3, 3))
    with pytest.raises(ValueError, match="kind"):
        divergence.self_share_curve(torch.randn(10, 3), [1, 2], kind="batchnorm")
    with pytest.raises(ValueError, match="batch_sizes\\[1\\]"):
        divergence.self_share_curve(torch.randn(10, 3), [1, 20])
    with pytest.raises(ValueError, match="x must have shape"):
        layers.SingleHeadAttention(4)(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="data"):
        norm_plots.plot_divergence(data="cifar")


# --------------------------------------------------------------------------- exercise checks (notebooks 10, 11)


def _stub(*args):
    raise NotImplementedError("Exercise: write your solution here, then run the check cell below.")


def test_check_predicted_step():
    def good(x, g, lr, bias=True):
        return -(lr / x.shape[0]) * (x @ x.T + float(bias)) @ g

    assert checks.check_predicted_step(good, verbose=False)
    # the reference is a measured step, and it agrees with the library's formula where there is a bias
    gen = torch.Generator().manual_seed(3)
    x, g, lr, bias = checks._predicted_step_inputs(gen, 0)
    assert bias
    torch.testing.assert_close(
        checks._measured_batch_step(x, g, lr, bias), divergence.predicted_minibatch_step(x, g, lr)
    )
    stub = checks.check_predicted_step(_stub, verbose=False)
    assert not stub and "not done yet" in stub.message
    mistakes = {
        "minus the learning rate": lambda x, g, lr, bias=True: -good(x, g, lr, bias),
        "adds 1 to every": lambda x, g, lr, bias=True: -(lr / x.shape[0]) * (x @ x.T) @ g,
        "no + 1": lambda x, g, lr, bias=True: -(lr / x.shape[0]) * (x @ x.T + 1) @ g,
        "factor 1/B": lambda x, g, lr, bias=True: x.shape[0] * good(x, g, lr, bias),
        "own term": lambda x, g, lr, bias=True: -(lr / x.shape[0]) * ((x * x).sum(1, keepdim=True) + float(bias)) * g,
    }
    for hint, fn in mistakes.items():
        result = checks.check_predicted_step(fn, verbose=False)
        assert not result and hint in result.message, result.message


def test_check_affine_like():
    pass

    def good(x, weight, bias):
        return (x @ weight.T + bias) / torch.sqrt((x * x).sum(-1, keepdim=True) + 1)

    assert checks.check_affine_like(good, verbose=False)

    def via_library(x, weight, bias):
        layer = layers.AffineLike(weight.shape[1], weight.shape[0]).to(F64)
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
            return layer(x)

    assert checks.check_affine_like(via_library, verbose=False), "the check's reference is the library layer"
    assert "not done yet" in checks.check_affine_like(_stub, verbose=False).message
    mistakes = {
        "plain affine map": lambda x, w, b: x @ w.T + b,
        "not by |x|": lambda x, w, b: (x @ w.T + b) / x.norm(dim=-1, keepdim=True),
        "inside the division": lambda x, w, b: (x @ w.T) / torch.sqrt((x * x).sum(-1, keepdim=True) + 1) + b,
        "square root": lambda x, w, b: (x @ w.T + b) / ((x * x).sum(-1, keepdim=True) + 1),
    }
    for hint, fn in mistakes.items():
        result = checks.check_affine_like(fn, verbose=False)
        assert not result and hint in result.message, result.message


def test_check_bias_outside_factor():
    def good(x):
        n = (x * x).sum(-1)
        return (2 * n + 1) / (n + 1)

    assert checks.check_bias_outside_factor(good, verbose=False)
    # the layer itself: its forward map, and its measured factor is the derived one (between 1 and 2)
    layer = checks.BiasOutsideAffineLike(5, 3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(6, 5, dtype=F64) * torch.logspace(-2, 2, 6, dtype=F64)[:, None]
    s = torch.sqrt((x * x).sum(-1, keepdim=True) + 1)
    torch.testing.assert_close(layer(x), x @ layer.weight.T / s + layer.bias)
    ratio = divergence.one_step(layer, x, lr=0.1, seed=0).ratio
    torch.testing.assert_close(ratio, good(x))
    assert float(ratio.min()) < 1.01 and float(ratio.max()) > 1.99, "sample-dependent: 1 for tiny inputs, 2 for huge"
    assert "not done yet" in checks.check_bias_outside_factor(_stub, verbose=False).message
    mistakes = {
        "bias inside": lambda x: torch.ones(x.shape[0], dtype=F64),
        "plain affine": lambda x: (x * x).sum(-1) + 1,
        "share only": lambda x: (x * x).sum(-1) / ((x * x).sum(-1) + 1),
        "L2 normaliser": lambda x: torch.full((x.shape[0],), 2.0, dtype=F64),
        "not |x| / s": lambda x: 1 + x.norm(dim=-1) / torch.sqrt((x * x).sum(-1) + 1),
    }
    for hint, fn in mistakes.items():
        result = checks.check_bias_outside_factor(fn, verbose=False)
        assert not result and hint in result.message, result.message
    with pytest.raises(ValueError, match="in_features"):
        checks.BiasOutsideAffineLike(0, 3)


# --------------------------------------------------------------------------- the batch step beside its ideal


def test_step_alignment_by_hand():
    k = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=F64)
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    cos, frac = divergence.step_alignment(k, g)
    # (K g)_0 = (2, 1): cosine with (1, 0) is 2 / sqrt(5); self-term norm 2 over |(2, 1)| = sqrt(5).
    torch.testing.assert_close(cos, torch.full((2,), 2 / math.sqrt(5), dtype=F64))
    torch.testing.assert_close(frac, torch.full((2,), 2 / math.sqrt(5), dtype=F64))
    cos_i, frac_i = divergence.step_alignment(torch.eye(2, dtype=F64), g)  # no interference: the ideal step
    torch.testing.assert_close(cos_i, torch.ones(2, dtype=F64))
    torch.testing.assert_close(frac_i, torch.ones(2, dtype=F64))


@pytest.mark.parametrize("batch", [1, 5, 13])
def test_exact_batch_correction_gives_the_ideal_step(batch):
    x = _inputs(n=batch, d=12, seed=batch)
    g = torch.randn(batch, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    layer = _seeded(lambda: nn.Linear(12, 4))
    dw, db = divergence.exact_batch_correction(x, g, 0.1)
    with torch.no_grad():
        z0 = layer(x)
        layer.weight += dw
        layer.bias += db
        dz = layer(x) - z0
    torch.testing.assert_close(dz, -(0.1 / batch) * g, rtol=0, atol=1e-12)
    # The plain SGD step does not (beyond one sample), so the check could fail.
    plain = divergence.predicted_minibatch_step(x, g, 0.1)
    if batch > 1:
        assert (plain + (0.1 / batch) * g).abs().max() > 1e-3


def test_exact_batch_correction_beyond_d_plus_one_is_least_squares():
    x = _inputs(n=20, d=3, seed=2)
    g = torch.randn(20, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    dw, db = divergence.exact_batch_correction(x, g, 1.0)
    dz = x @ dw.T + db
    xa = layers.augment(x)
    target = -(1.0 / 20) * g
    best = xa @ torch.linalg.lstsq(xa, target).solution  # the closest a linear map of x~ can get
    torch.testing.assert_close(dz, best, rtol=0, atol=1e-12)
    assert (dz - target).abs().max() > 1e-3


def test_alignment_curve_separates_the_exact_correction_only():
    x = torch.randn(300, 10, generator=torch.Generator().manual_seed(0), dtype=F64) * 3
    sizes = [1, 4, 8, 64]
    affine = divergence.alignment_curve(x, sizes, kind="affine", seed=1)
    like = divergence.alignment_curve(x, sizes, kind="affine_like", seed=1)
    exact = divergence.alignment_curve(x, sizes, kind="exact", seed=1)
    assert affine[0] == pytest.approx(1.0) and like[0] == pytest.approx(1.0)
    assert exact[:3] == pytest.approx([1.0, 1.0, 1.0], abs=1e-9)  # B <= d + 1 = 11
    assert exact[3] < 0.9 and affine[1] < 0.99 and like[1] < 0.99
    assert all(a > b for a, b in zip(like, like[1:]))


def test_stack_step_per_layer_and_per_network():
    torch.manual_seed(0)
    net = nn.Sequential(layers.AffineLike(6, 8), nn.Tanh(), layers.AffineLike(8, 5), nn.Tanh(), layers.AffineLike(5, 3))
    net = net.to(F64)
    x = _inputs(n=5, d=6, seed=4)
    alone = divergence.stack_step(net, net[2], x, lr=1e-6, only_layer=True)
    torch.testing.assert_close(alone.ratio, torch.ones(5, dtype=F64), rtol=0, atol=1e-8)
    every = divergence.stack_step(net, net[2], x, lr=1e-6)
    assert (every.ratio - 1).abs().max() > 0.05
    # Through a plain Linear layer alone the ratio is |a|^2 + 1 of that layer's input.
    plain = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).to(F64)
    step = divergence.stack_step(plain, plain[2], x, lr=1e-6, only_layer=True)
    with torch.no_grad():
        a = torch.tanh(plain[0](x))
    torch.testing.assert_close(step.ratio, layers.affine_factor(a), rtol=1e-6, atol=0)


def test_batch_step_functions_reject_bad_input():
    x = _inputs(n=4, d=3)
    with pytest.raises(ValueError, match="kernel must be square"):
        divergence.step_alignment(torch.zeros(2, 3, dtype=F64), torch.zeros(2, 1, dtype=F64))
    with pytest.raises(ValueError, match="g must have one row per kernel row"):
        divergence.step_alignment(torch.eye(2, dtype=F64), torch.zeros(3, 1, dtype=F64))
    with pytest.raises(ValueError, match="one row per sample"):
        divergence.exact_batch_correction(x, torch.zeros(3, 2, dtype=F64), 0.1)
    with pytest.raises(ValueError, match="lr"):
        divergence.exact_batch_correction(x, torch.zeros(4, 2, dtype=F64), 0.0)
    with pytest.raises(ValueError, match="kind"):
        divergence.alignment_curve(x, [1], kind="nope")
    with pytest.raises(TypeError, match="batch_sizes"):
        divergence.alignment_curve(x, 3)
    with pytest.raises(ValueError, match="submodule"):
        divergence.stack_step(nn.Linear(3, 2), nn.Linear(3, 2), x)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        divergence.stack_step("net", nn.Linear(3, 2), x)


def test_plot_batch_alignment_returns_a_figure():
    matplotlib.use("Agg")
    sizes = [1, 2, 4]
    fig = norm_plots.plot_batch_alignment(sizes, {"a": [1, 0.5, 0.3]}, {"a": [1, 0.9, 0.8], "b": [1, 1, 1]}, d=3)
    assert len(fig.axes) == 2 and fig.axes[0].get_lines()


def test_step_size_spread_curve_sees_magnitudes():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=gen, dtype=F64) * torch.logspace(-1, 1, 300, dtype=F64)[:, None]
    plain = divergence.step_size_spread_curve(x, [1, 8], kind="affine", n_samples=200)
    like = divergence.step_size_spread_curve(x, [1, 8], kind="affine_like", n_samples=200)
    # at B = 1 the ratio is K_mm: |x|^2 + 1 for the plain layer (spread as computed by hand), exactly 1 for affine-like
    factor = (x * x).sum(1) + 1
    assert like[0] == pytest.approx(0.0, abs=1e-12) and plain[0] > 1.0
    assert plain[0] == pytest.approx(math.log10(float(factor.quantile(0.9) / factor.quantile(0.1))), rel=0.3)
    assert 0 < like[1] < plain[1], "a batch spreads the affine-like steps, still less than the plain ones"
    with pytest.raises(ValueError, match="kind"):
        divergence.step_size_spread_curve(x, [1], kind="exact")

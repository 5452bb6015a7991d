"""Tests for isodl.superposition.models: the toy models, their data, training and determinism."""

from __future__ import annotations

import pytest
import torch

from isodl.core.activations import isotropic
from isodl.superposition import models

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_sample_features_sparsity_and_range():
    s = torch.tensor([0.0, 0.5, 0.9])
    x = models.sample_features(s, 50, 4000, generator=_gen())
    assert x.shape == (3, 4000, 50)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    zero_share = (x == 0).double().mean((1, 2))
    assert torch.allclose(zero_share, s.double(), atol=0.01)
    present = x[1][x[1] > 0]
    assert float(present.mean()) == pytest.approx(0.5, abs=0.01)  # uniform in [0, 1] when present


def test_geometric_importance():
    assert torch.allclose(models.geometric_importance(4, 0.5, dtype=D), torch.tensor([1, 0.5, 0.25, 0.125], dtype=D))
    assert torch.equal(models.geometric_importance(3, 1.0), torch.ones(3))


def test_radial_relu_matches_the_library_isotropic_relu():
    y = torch.randn(7, 20, generator=_gen(1), dtype=D) * torch.logspace(-2, 1, 7, dtype=D)[:, None]
    for r in (0.0, 0.3, 2.0):
        ours = models.radial_relu(y, torch.tensor(r, dtype=D))
        assert torch.allclose(ours, isotropic(y, "relu", radius=r), atol=1e-12)
    zero = torch.zeros(1, 3, dtype=D, requires_grad=True)
    radius = torch.tensor(0.5, dtype=D, requires_grad=True)
    models.radial_relu(zero, radius).sum().backward()
    assert bool(torch.isfinite(zero.grad).all()) and float(radius.grad) == 0.0


@pytest.mark.parametrize("output", models.OUTPUTS)
@pytest.mark.parametrize("hidden", models.HIDDENS)
def test_forward_shapes_and_each_instance_is_independent(output, hidden):
    model = models.ToyModels(3, 6, 2, output=output, hidden=hidden, generator=_gen(2), dtype=D)
    x = models.sample_features(torch.tensor([0.0, 0.5, 0.9]), 6, 8, generator=_gen(3), dtype=D)
    out = model(x)
    assert out.shape == (3, 8, 6) and bool(torch.isfinite(out).all())
    loss = models.weighted_loss(x, out, torch.ones(6, dtype=D))
    (grad,) = torch.autograd.grad(loss[1], model.W)
    assert float(grad[0].abs().max()) == 0.0 and float(grad[2].abs().max()) == 0.0  # no cross-talk


def test_output_maps_do_what_they_say():
    model = models.ToyModels(2, 5, 3, output="rotated_relu", generator=_gen(4), dtype=D)
    Q = model.Q
    assert torch.allclose(Q @ Q.transpose(1, 2), torch.eye(5, dtype=D).expand(2, 5, 5), atol=1e-12)
    x = torch.rand(2, 4, 5, generator=_gen(5), dtype=D)
    y = torch.bmm(model.hidden_activations(x), model.W) + model.b[:, None, :]
    assert torch.allclose(model(x), torch.bmm(torch.relu(torch.bmm(y, Q.transpose(1, 2))), Q))
    # the bias d after the nonlinearity lets the rotated ReLU copy the linear model exactly:
    # b = c Q^T 1 keeps every rotated coordinate positive, d = -b removes it again
    with torch.no_grad():
        model.b.copy_(10.0 * Q.sum(1))
        model.d.copy_(-model.b)
    assert torch.allclose(model(x), torch.bmm(model.hidden_activations(x), model.W), atol=1e-10)
    linear = models.ToyModels(2, 5, 3, output="linear", generator=_gen(4), dtype=D)
    assert torch.allclose(linear(x), torch.bmm(linear.hidden_activations(x), linear.W))


def test_training_reproduces_the_dense_and_sparse_regimes():
    # F = 6, m = 2, importance falls: dense -> 2 features; very sparse ReLU -> more than 2 (superposition)
    from isodl.superposition import metrics

    imp = models.geometric_importance(6, 0.8)
    model = models.ToyModels(2, 6, 2, generator=_gen(6))
    res = models.train_toy_models(model, [0.0, 0.97], imp, steps=800, batch=256, lr=1e-2, generator=_gen(7))
    rep = metrics.features_represented(model.W.detach())
    assert int(rep[0]) == 2 and int(rep[1]) > 2, rep
    assert res.history.shape == (16, 2) and res.loss.shape == (2,)
    assert float(res.history[-1, 0]) < float(res.history[0, 0])


def test_determinism_per_seed():
    def run(seed):
        model = models.ToyModels(3, 8, 3, output="isotropic_relu", hidden="tanh", generator=_gen(seed))
        models.train_toy_models(model, 0.7, torch.ones(8), steps=30, batch=16, lr=1e-2, generator=_gen(seed + 1))
        return model.W.detach().clone()

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_one_hot_outputs():
    model = models.ToyModels(2, 4, 2, output="linear", generator=_gen(8), dtype=D)
    out = models.one_hot_outputs(model)
    expected = model.W.detach().transpose(1, 2) @ model.W.detach() + model.b.detach()[:, None, :]
    assert torch.allclose(out, expected)


@pytest.mark.parametrize(
    ("call", "error", "word"),
    [
        (lambda: models.ToyModels(0, 3, 2, generator=_gen()), ValueError, "n_instances"),
        (lambda: models.ToyModels(1, 3, 2, output="gelu", generator=_gen()), ValueError, "output"),
        (lambda: models.ToyModels(1, 3, 2, hidden="softmax", generator=_gen()), ValueError, "hidden"),
        (lambda: models.ToyModels(1, 3, 2, generator=None), TypeError, "generator"),
        (lambda: models.ToyModels(1, 3, 2, generator=_gen(), dtype=torch.int64), TypeError, "dtype"),
        (lambda: models.sample_features(torch.tensor([1.0]), 3, 2, generator=_gen()), ValueError, "sparsity"),
        (lambda: models.sample_features(torch.tensor([0.1]), 3, 0, generator=_gen()), ValueError, "batch"),
        (lambda: models.geometric_importance(3, 0.0), ValueError, "decay"),
        (lambda: models.geometric_importance(3, 1.5), ValueError, "decay"),
    ],
)
def test_bad_input_names_the_argument(call, error, word):
    with pytest.raises(error, match=word):
        call()


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"sparsity": [0.1, 0.2]}, ValueError, "sparsity must hold one value per instance"),
        ({"sparsity": 1.0}, ValueError, "sparsity must lie in"),
        ({"importance": torch.ones(4)}, ValueError, "importance must have shape"),
        ({"importance": -torch.ones(3)}, ValueError, "importance must be >= 0"),
        ({"steps": 0}, ValueError, "steps"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"optimiser": "rmsprop"}, ValueError, "optimiser"),
        ({"generator": None}, TypeError, "generator"),
    ],
)
def test_training_rejects_bad_arguments(kwargs, error, word):
    model = models.ToyModels(1, 3, 2, generator=_gen())
    args = {"sparsity": 0.5, "importance": torch.ones(3), "steps": 2, "batch": 4, "lr": 0.01, "generator": _gen()}
    with pytest.raises(error, match=word):
        models.train_toy_models(model, **{**args, **kwargs})


def test_post_bias_trained_only_by_the_rotated_relu():
    imp = torch.ones(4)
    for output in ("rotated_relu", "relu"):
        model = models.ToyModels(2, 4, 2, output=output, generator=_gen(8))
        models.train_toy_models(model, 0.5, imp, steps=5, batch=16, lr=1e-2, generator=_gen(9))
        moved = float(model.d.detach().abs().max()) > 0
        assert moved == (output == "rotated_relu")


@pytest.mark.parametrize("optimiser", ["sgd", "adam"])
def test_per_instance_learning_rate_equals_separate_rates(optimiser):
    imp = models.geometric_importance(6, 0.8, dtype=D)
    kw = dict(steps=20, batch=16, optimiser=optimiser)
    rates = (0.1, 0.04) if optimiser == "sgd" else (1e-2, 4e-3)
    runs = {}
    for name, lr in (("mixed", list(rates)), ("fast", rates[0]), ("slow", rates[1])):
        model = models.ToyModels(2, 6, 2, generator=_gen(10), dtype=D)
        models.train_toy_models(model, [0.5, 0.5], imp, lr=lr, generator=_gen(11), **kw)
        runs[name] = model.W.detach()
    assert torch.allclose(runs["mixed"][0], runs["fast"][0], atol=1e-12)  # the fastest takes the plain step
    assert torch.allclose(runs["mixed"][1], runs["slow"][1], atol=1e-10)  # the other its own rate
    assert not torch.allclose(runs["mixed"][1], runs["fast"][1], atol=1e-4)
    with pytest.raises(ValueError, match="lr"):
        models.train_toy_models(models.ToyModels(2, 6, 2, generator=_gen()), 0.5, imp, lr=[0.1], generator=_gen(), **kw)

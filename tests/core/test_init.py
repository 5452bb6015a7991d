"""isodl.core.init: PyTorch's default initialisation drawn from an explicit generator."""

import pytest
import torch
from torch import nn

from isodl.core import init
from isodl.core.train import MLP
from isodl.normalisation import experiments, layers


@pytest.mark.parametrize("bias", [True, False])
def test_linear_with_a_generator_draws_what_manual_seed_draws(bias):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        expected = nn.Linear(7, 3, bias=bias)
    state = torch.random.get_rng_state()
    got = init.linear(7, 3, bias=bias, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), state), "the global stream must be untouched"
    assert torch.equal(got.weight, expected.weight)
    assert (got.bias is None) == (not bias)
    if bias:
        assert torch.equal(got.bias, expected.bias)
    other = init.linear(7, 3, bias=bias, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(other.weight, got.weight)


def test_linear_builds_subclasses_and_checks_its_arguments():
    layer = init.linear(4, 2, generator=torch.Generator().manual_seed(0), cls=experiments.RescaledGradLinear)
    assert isinstance(layer, experiments.RescaledGradLinear) and layer.weight.shape == (2, 4)
    assert init.linear(4, 2, dtype=torch.float64).weight.dtype == torch.float64
    with pytest.raises(TypeError, match="cls"):
        init.linear(4, 2, cls=nn.Conv2d)
    with pytest.raises(TypeError, match="generator"):
        init.linear(4, 2, generator=0)
    with pytest.raises(ValueError, match="in_features"):
        init.linear(0, 2)
    with pytest.raises(ValueError, match="fan_in"):
        init.default_init_(torch.empty(2, 2), None, 0)


def test_models_built_from_a_generator_are_repeatable_and_leave_the_global_stream_alone():
    state = torch.random.get_rng_state()
    a = MLP([6, 5, 3], generator=torch.Generator().manual_seed(1))
    b = MLP([6, 5, 3], generator=torch.Generator().manual_seed(1))
    pn = [layers.PatchNorm2d(2, 3, 3, init=i, generator=torch.Generator().manual_seed(2)) for i in ("normal", "conv")]
    pn2 = [layers.PatchNorm2d(2, 3, 3, init=i, generator=torch.Generator().manual_seed(2)) for i in ("normal", "conv")]
    att = [layers.SingleHeadAttention(6, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(torch.random.get_rng_state(), state)
    for x, y in [(a, b), (pn[0], pn2[0]), (pn[1], pn2[1]), (att[0], att[1])]:
        for p, q in zip(x.parameters(), y.parameters()):
            assert torch.equal(p, q)
    assert float(pn[0].weight.std()) > 0.5 > float(pn[1].weight.std())  # N(0, 1) against the conv default

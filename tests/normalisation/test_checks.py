"""The references of the normalisation checks (notebooks 10-11) agree with the library they stand for."""

import pytest
import torch

from isodl.normalisation import checks, layers


@pytest.mark.parametrize("seed", range(4))
def test_affine_like_reference_is_the_layer(seed):
    gen = torch.Generator().manual_seed(seed)
    layer = layers.AffineLike(7, 5, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(5, 7, generator=gen, dtype=torch.float64))
        layer.bias.copy_(torch.randn(5, generator=gen, dtype=torch.float64))
    x = torch.randn(9, 7, generator=gen, dtype=torch.float64) * torch.logspace(-2, 2, 9, dtype=torch.float64)[:, None]
    torch.testing.assert_close(
        checks._affine_like_reference(x, layer.weight.detach(), layer.bias.detach()), layer(x).detach()
    )


def test_paired_reference_is_the_library_and_the_check_can_fail():
    from scipy import stats

    from isodl.normalisation import experiments as nc

    gen = torch.Generator().manual_seed(0)
    a, b = checks._paired_inputs(gen)
    d = nc.paired_difference(dict(enumerate(a.tolist())), dict(enumerate(b.tolist())))
    torch.testing.assert_close(
        checks._paired_reference(a, b), torch.tensor([d["mean"], d["lo"], d["hi"]], dtype=torch.float64)
    )

    def solution(a, b):
        diff = a - b
        half = stats.t.ppf(0.975, len(diff) - 1) * diff.std() / len(diff) ** 0.5
        return torch.stack([diff.mean(), diff.mean() - half, diff.mean() + half])

    def normal(a, b):
        diff = a - b
        half = 1.96 * diff.std() / len(diff) ** 0.5
        return torch.stack([diff.mean(), diff.mean() - half, diff.mean() + half])

    assert checks.check_paired_interval(solution, verbose=False).passed
    result = checks.check_paired_interval(normal, verbose=False)
    assert not result.passed and "t quantile" in str(result)

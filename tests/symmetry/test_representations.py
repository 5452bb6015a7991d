"""isodl.symmetry.representations: the scalar summaries of notebooks 03 and 04."""

import math

import pytest
import torch

from isodl.core import data
from isodl.symmetry import representations as rep
from isodl.symmetry import srm


def test_angular_entropy_limits():
    uniform = torch.arange(7200, dtype=torch.float64) * (2 * math.pi / 7200) - math.pi
    assert rep.angular_entropy(uniform) == pytest.approx(1.0, abs=1e-5)
    assert rep.angular_entropy(torch.full((50,), 0.3, dtype=torch.float64)) == 0.0
    four = torch.tensor([0.01, math.pi / 2 + 0.01, math.pi + 0.01, -math.pi / 2 + 0.01] * 10, dtype=torch.float64)
    assert rep.angular_entropy(four) == pytest.approx(math.log(4) / math.log(72))
    assert math.isnan(rep.angular_entropy(torch.zeros(0)))
    # angles are periodic
    a = torch.rand(100, dtype=torch.float64) * 6
    assert rep.angular_entropy(a) == pytest.approx(rep.angular_entropy(a + 2 * math.pi))


def test_c4_on_axes_diagonals_and_uniform():
    axes = torch.tensor([0, math.pi / 2, math.pi, -math.pi / 2], dtype=torch.float64)
    assert rep.c4(axes) == pytest.approx(1.0)
    assert rep.c4(axes + math.pi / 4) == pytest.approx(-1.0)
    gen = torch.Generator().manual_seed(0)
    uni = torch.rand(100_000, generator=gen, dtype=torch.float64) * 2 * math.pi
    assert abs(rep.c4(uni)) < 0.02
    assert math.isnan(rep.c4(torch.zeros(0)))


def test_srm_harmonic_and_enrichment():
    theta = srm.srm_angles(72)
    assert rep.srm_harmonic(1 + torch.cos(4 * theta), theta) == pytest.approx(0.5)
    assert rep.srm_harmonic(torch.ones(72, dtype=torch.float64), theta) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(rep.srm_harmonic(torch.zeros(72), theta))
    x = data.isotropic_gaussian(20_000, 8, seed=0)
    res = srm.spotlight_resonance(torch.tanh(2 * x), torch.eye(8), 0.7, 72)
    assert rep.srm_harmonic(res.mean(), res.angles) < -0.5  # tanh: mass on the diagonals
    iso = srm.spotlight_resonance(x, torch.eye(8), 0.7, 72)
    assert abs(rep.srm_harmonic(iso.mean(), iso.angles)) < 0.05
    e = rep.srm_enrichment(iso.mean(), 8, 0.7)
    assert abs(float(e.mean()) - 1.0) < 0.05
    assert rep.curve_modulation(torch.ones(5)) == 0.0
    assert rep.curve_modulation(torch.tensor([1.0, 3.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same length"):
        rep.srm_harmonic(torch.ones(5), torch.ones(6))
    with pytest.raises(ValueError, match="NaN"):
        rep.srm_enrichment(torch.tensor([float("nan")]), 8, 0.5)


def test_purity_functions():
    acts = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [0.0, 5.0]], dtype=torch.float64)
    labels = torch.tensor([1, 1, 1, 2])
    assert rep.top_along(acts, torch.tensor([1.0, 0.0]), 2).tolist() == [2, 1]
    assert rep.class_purity(torch.tensor([3, 3, 1])) == (pytest.approx(2 / 3), 3)
    pur = rep.direction_purity(acts, labels, torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]), k=2)
    assert pur.tolist() == pytest.approx([1.0, 0.5, 0.5])  # top 2: rows (2, 1), (3, 0), (3, 0)
    # chance of the top class among 50 random draws from 10 balanced classes is ~0.2, not 0.1
    y = torch.arange(1000) % 10
    ch = rep.chance_purity(y, 50, seed=0)
    assert 0.16 < ch < 0.24
    assert rep.chance_purity(y, 50, seed=0) == ch


def test_random_directions_are_unit_and_seeded():
    d = rep.random_directions(20, 5, seed=2)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(20, dtype=torch.float64))
    assert torch.equal(d, rep.random_directions(20, 5, seed=2))
    assert not torch.equal(d, rep.random_directions(20, 5, seed=3))


def test_bad_input():
    with pytest.raises(ValueError, match="angles"):
        rep.angular_entropy(torch.ones(3, 2))
    with pytest.raises(ValueError, match="bins"):
        rep.angular_entropy(torch.ones(3), bins=1)
    with pytest.raises(ValueError, match="dimension mismatch"):
        rep.top_along(torch.ones(4, 3), torch.ones(2), 1)
    with pytest.raises(ValueError, match="zero vector"):
        rep.top_along(torch.ones(4, 3), torch.zeros(3), 1)
    with pytest.raises(ValueError, match="k must be <="):
        rep.top_along(torch.ones(4, 3), torch.ones(3), 5)
    with pytest.raises(TypeError, match="labels"):
        rep.class_purity(torch.ones(3))
    with pytest.raises(ValueError, match="one entry per activation"):
        rep.direction_purity(torch.ones(4, 2), torch.zeros(3, dtype=torch.int64), torch.ones(1, 2))
    with pytest.raises(ValueError, match="NaN"):
        rep.c4(torch.tensor([float("nan")]))


def test_rank_correlation_against_scipy_and_permutation_p():
    from scipy.stats import spearmanr

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, generator=gen, dtype=torch.float64)
    y = x + 0.5 * torch.randn(30, generator=gen, dtype=torch.float64)
    y[3] = y[4]  # a tie
    rho, p = rep.rank_correlation(x, y, n_permutations=2000)
    assert rho == pytest.approx(spearmanr(x.numpy(), y.numpy()).statistic)
    assert p < 0.01
    rho0, p0 = rep.rank_correlation(x, torch.randn(30, generator=gen, dtype=torch.float64), n_permutations=2000)
    assert abs(rho0) < 0.5 and p0 > 0.01
    # nan pairs are dropped
    xn = torch.cat([x, torch.tensor([float("nan")], dtype=torch.float64)])
    yn = torch.cat([y, torch.tensor([1.0], dtype=torch.float64)])
    assert rep.rank_correlation(xn, yn, n_permutations=10)[0] == pytest.approx(rho)
    with pytest.raises(ValueError, match="at least 3"):
        rep.rank_correlation(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="same length"):
        rep.rank_correlation(torch.ones(3), torch.ones(4))


def test_pppm_metrics():
    from isodl.symmetry import pppm

    res = pppm.privileged_plane_projection(data.isotropic_gaussian(5000, 4, seed=0), None, 0.8)
    m = rep.pppm_metrics(res)
    assert set(m) == {"entropy", "c4", "points", "expected", "ratio"}
    assert m["entropy"] > 0.97 and abs(m["ratio"] - 1) < 0.05 and m["points"] == len(res)
    empty = pppm.privileged_plane_projection(torch.ones(3, 8), None, 0.9)
    assert len(empty) == 0 and math.isnan(rep.pppm_metrics(empty)["entropy"])
    with pytest.raises(TypeError, match="PPPMResult"):
        rep.pppm_metrics("x")

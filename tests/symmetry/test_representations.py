"""isodl.symmetry.representations: the scalar summaries of notebooks 03 and 04."""

import math

import pytest
import torch

from isodl.core import data
from isodl.core.activations import random_orthogonal
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


# --------------------------------------------------------------------------- diagnostics and nulls (notebooks 03, 04)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_unit_diagnostics_finds_the_stuck_units():
    g = _gen()
    z = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    z[:, 1] = z[:, 1] * 0.5 - 8.0  # always negative: stuck
    z[:, 3] = z[:, 3].abs() + 0.1  # always positive, though not far from 0: stuck too
    d = rep.unit_diagnostics(z)
    assert d.stuck.tolist() == [False, True, False, True]
    assert (d.n_stuck, d.n_live) == (2, 2) and d.live.tolist() == [True, False, True, False]
    assert float(d.mean[1]) == pytest.approx(-8.0, abs=0.05) and float(d.sd[1]) == pytest.approx(0.5, abs=0.05)
    assert 0.45 < float(d.majority[0]) < 0.55 and float(d.majority[1]) == 1.0
    assert "stuck" in d.table() and len(d.table().splitlines()) == 5
    # in a rotated basis the offset spreads over every coordinate
    q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
    assert rep.unit_diagnostics(z @ q, q).stuck.tolist() == d.stuck.tolist()
    with pytest.raises(ValueError, match="latent"):
        rep.unit_diagnostics(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="threshold"):
        rep.unit_diagnostics(z, threshold=0.2)


def test_moment_matched_gaussian_matches_mean_and_covariance():
    g = _gen(1)
    z = torch.randn(5000, 3, generator=g, dtype=torch.float64) @ torch.tensor(
        [[2.0, 0.5, 0], [0, 1, 0], [0, 0, 0.1]], dtype=torch.float64
    )
    z = z + torch.tensor([5.0, -1.0, 0.0], dtype=torch.float64)
    w = rep.moment_matched_gaussian(z, 40_000, generator=_gen(2))
    assert w.shape == (40_000, 3)
    assert torch.allclose(w.mean(0), z.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(w.T), torch.cov(z.T), rtol=0.05, atol=0.01)
    assert torch.equal(
        rep.moment_matched_gaussian(z, generator=_gen(3)), rep.moment_matched_gaussian(z, generator=_gen(3))
    )
    # a constant column (zero variance) stays constant and finite
    z[:, 2] = 4.0
    w = rep.moment_matched_gaussian(z, generator=_gen(4))
    assert torch.isfinite(w).all() and torch.allclose(w[:, 2], torch.full((z.shape[0],), 4.0, dtype=torch.float64))


def test_rotated_copies_keep_lengths_and_angles():
    z = torch.randn(300, 5, generator=_gen(), dtype=torch.float64) + 2
    copies = rep.rotated_copies(z, 3, generator=_gen(1))
    assert len(copies) == 3
    for c in copies:
        assert torch.allclose(c @ c.T, z @ z.T, atol=1e-10)
        assert not torch.allclose(c, z)
    assert not torch.allclose(copies[0], copies[1])


def test_uniform_entropy_null_is_biased_low_for_few_points():
    few = rep.uniform_entropy_null(36, n_draws=400, generator=_gen())
    many = rep.uniform_entropy_null(20_000, n_draws=5, generator=_gen())
    assert 0.72 < float(few.mean()) < 0.82  # 36 random angles in 72 bins: far from 1
    assert float(many.min()) > 0.99
    assert rep.uniform_entropy_null(0).numel() == 0
    with pytest.raises(ValueError, match="n_draws"):
        rep.uniform_entropy_null(5, n_draws=0)


def test_beyond_null():
    null = [0.5, 0.6, 0.55, float("nan")]
    assert rep.beyond_null(0.4, null) and not rep.beyond_null(0.48, null, margin=0.03)
    assert not rep.beyond_null(0.52, null)
    assert rep.beyond_null(0.7, null, side="greater") and not rep.beyond_null(0.62, null, side="greater", margin=0.05)
    assert not rep.beyond_null(float("nan"), null) and not rep.beyond_null(0.1, [float("nan")])
    with pytest.raises(ValueError, match="side"):
        rep.beyond_null(0.1, null, side="below")


def test_quantisation_nulls_tell_clusters_from_a_gaussian():
    g = _gen(5)
    gauss = torch.randn(1500, 6, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2, 1, 0.5, 1, 1.5])
    out = rep.quantisation_nulls(gauss, None, 0.8, n_draws=4, n_rotations=6, generator=_gen(6))
    assert set(out) == {
        "entropy",
        "c4",
        "points",
        "ratio",
        "gauss_entropy",
        "gauss_c4",
        "rot_entropy",
        "rot_c4",
        "uniform_entropy",
    }
    assert len(out["gauss_entropy"]) == 4 and len(out["rot_c4"]) == 6 and len(out["uniform_entropy"]) == 4
    # a Gaussian is its own null: the check does not fire
    assert not rep.beyond_null(out["entropy"], out["gauss_entropy"], margin=0.03)
    # ten discrete points plus a little noise: far less entropy than the Gaussian with the same moments
    centres = torch.randn(10, 6, generator=g, dtype=torch.float64) * 2
    clusters = centres[torch.randint(0, 10, (1500,), generator=g)] + 0.05 * torch.randn(
        1500, 6, generator=g, dtype=torch.float64
    )
    cl = rep.quantisation_nulls(clusters, None, 0.8, n_draws=4, n_rotations=6, generator=_gen(7))
    assert rep.beyond_null(cl["entropy"], cl["gauss_entropy"], margin=0.03)


def test_one_blob_gives_c4_of_two_over_pi_on_average():
    # the rotated-copy null of |c4|: a single compact blob at a random angle
    phi = torch.rand(200_000, generator=_gen(), dtype=torch.float64) * 2 * math.pi
    assert float(torch.cos(4 * phi).abs().mean()) == pytest.approx(2 / math.pi, abs=0.005)


def test_excess_kurtosis_and_its_rotated_null():
    g = _gen(8)
    n = 40_000
    assert float(rep.excess_kurtosis(torch.randn(n, 3, generator=g, dtype=torch.float64)).abs().max()) < 0.1
    uniform = torch.rand(n, 2, generator=g, dtype=torch.float64)
    assert torch.allclose(rep.excess_kurtosis(uniform), torch.full((2,), -1.2, dtype=torch.float64), atol=0.05)
    laplace = torch.distributions.Laplace(0.0, 1.0).icdf(
        torch.rand(n, 4, generator=g, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)
    )
    k = rep.excess_kurtosis(laplace)
    assert torch.allclose(k, torch.full((4,), 3.0, dtype=torch.float64), atol=0.35)
    # a sparse code aligned with the basis: its kurtosis is far above that of its rotated copies
    null = rep.kurtosis_rotated_null(laplace, n_copies=8, generator=_gen(9))
    assert null.shape == (8,) and float(k.mean()) > float(null.max()) + 0.5
    # measured in the basis the code lives in, the alignment is back
    q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
    assert torch.allclose(rep.excess_kurtosis(laplace @ q, q), k, atol=1e-8)
    const = torch.ones(10, 2, dtype=torch.float64)
    assert torch.isnan(rep.excess_kurtosis(const)).all()


def test_partial_rank_correlation_removes_a_shared_cause():
    g = _gen(10)
    c = torch.randint(0, 6, (60,), generator=g).to(torch.float64)
    x = c + 0.1 * torch.randn(60, generator=g, dtype=torch.float64)
    y = -c + 0.1 * torch.randn(60, generator=g, dtype=torch.float64)
    rho, _ = rep.rank_correlation(x, y)
    prho, p = rep.partial_rank_correlation(x, y, c, n_permutations=500)
    assert rho < -0.9 and abs(prho) < 0.35 and p > 0.01
    noise = torch.randn(60, generator=g, dtype=torch.float64)
    prho, p = rep.partial_rank_correlation(
        noise, noise + 0.1 * torch.randn(60, generator=g, dtype=torch.float64), c, n_permutations=500
    )
    assert prho > 0.9 and p < 0.01
    with pytest.raises(ValueError, match="same length"):
        rep.partial_rank_correlation(x, y[:5], c)


def test_mean_and_se():
    m, se = rep.mean_and_se([1.0, 2.0, 3.0, float("nan")])
    assert m == pytest.approx(2.0) and se == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(rep.mean_and_se([1.0])[1]) and math.isnan(rep.mean_and_se([])[0])


def test_mean_difference_test():
    g = _gen(11)
    a = torch.randn(40, generator=g, dtype=torch.float64) + 1.0
    b = torch.randn(40, generator=g, dtype=torch.float64)
    diff, p = rep.mean_difference_test(a, b, alternative="greater", n_permutations=2000)
    assert diff > 0.5 and p < 0.01
    _, p_less = rep.mean_difference_test(a, b, alternative="less", n_permutations=2000)
    assert p_less > 0.9
    same = rep.mean_difference_test(b[:20], b[20:], n_permutations=2000)[1]
    assert same > 0.05
    with pytest.raises(ValueError, match="alternative"):
        rep.mean_difference_test(a, b, alternative="bigger")
    with pytest.raises(ValueError, match="at least 2"):
        rep.mean_difference_test(a[:1], b)


# --------------------------------------------------------------------------- k-means and its nulls


def _clusters(noise, gen, n=1200, d=8, k=10):
    centres = 1.5 * torch.randn(k, d, generator=gen, dtype=torch.float64)
    pick = torch.arange(n) % k
    return centres[pick] + noise * torch.randn(n, d, generator=gen, dtype=torch.float64), pick


def test_kmeans_finds_separated_clusters_and_is_deterministic():
    gen = torch.Generator().manual_seed(1)
    x, pick = _clusters(0.01, gen, k=4, d=3)
    inertia, labels, centres = rep.kmeans(x, 4, generator=torch.Generator().manual_seed(0))
    assert inertia < 1e-3 and centres.shape == (4, 3)
    # every true cluster maps onto one k-means cluster
    for c in range(4):
        assert len(torch.unique(labels[pick == c])) == 1
    again = rep.kmeans(x, 4, generator=torch.Generator().manual_seed(0))
    assert again[0] == inertia and torch.equal(again[1], labels)
    # one cluster: the inertia is the total variance
    one = rep.kmeans(x, 1)[0]
    assert one == pytest.approx(float(((x - x.mean(0)) ** 2).sum(1).mean()))


def test_kmeans_ratio_small_for_clusters_and_one_for_a_gaussian():
    gen = torch.Generator().manual_seed(2)
    tight = rep.kmeans_nulls(_clusters(0.05, gen)[0], 10, generator=gen)
    assert tight["ratio"] < 0.4
    assert all(abs(r - 1) < 0.03 for r in tight["null_ratio"])
    assert rep.beyond_null(tight["ratio"], tight["null_ratio"], side="less", margin=0.02)
    g = rep.kmeans_nulls(torch.randn(1200, 8, generator=gen, dtype=torch.float64), 10, generator=gen)
    assert abs(g["ratio"] - 1) < 0.03
    assert not rep.beyond_null(g["ratio"], g["null_ratio"], side="less", margin=0.02)
    # whitening: an affine map of the cloud (scales, offsets, rotation) leaves the inertia unchanged
    x = _clusters(0.3, gen)[0]
    a = (
        torch.diag(torch.tensor([1.0, 10, 0.1, 3, 1, 1, 5, 2], dtype=torch.float64))
        @ random_orthogonal(8, seed=3).double()
    )
    i1 = rep.kmeans_inertia(x, 10, generator=torch.Generator().manual_seed(0))
    i2 = rep.kmeans_inertia(x @ a.T + 7.0, 10, generator=torch.Generator().manual_seed(0))
    assert i1 == pytest.approx(i2, rel=1e-6)


def test_kmeans_rejects_bad_input_and_survives_a_constant_unit():
    with pytest.raises(ValueError, match="k must be at most"):
        rep.kmeans(torch.randn(5, 2, dtype=torch.float64), 6)
    with pytest.raises(ValueError, match="k"):
        rep.kmeans(torch.randn(5, 2, dtype=torch.float64), 0)
    with pytest.raises(ValueError, match="points"):
        rep.kmeans(torch.randn(5), 2)
    with pytest.raises(TypeError, match="generator"):
        rep.kmeans(torch.randn(5, 2, dtype=torch.float64), 2, generator=3)
    with pytest.raises(ValueError, match="n_draws"):
        rep.kmeans_nulls(torch.randn(50, 2, dtype=torch.float64), 2, n_draws=1)
    z = torch.randn(300, 4, dtype=torch.float64)
    z[:, 2] = -9.0  # a dead unit: zero variance
    q = rep.kmeans_nulls(z, 5)
    assert math.isfinite(q["ratio"]) and abs(q["ratio"] - 1) < 0.1


def test_snap_to_centres_is_a_graded_control():
    gen = torch.Generator().manual_seed(4)
    labels = torch.arange(600) % 6
    offsets = 2.0 * torch.randn(6, 5, generator=gen, dtype=torch.float64)
    z = offsets[labels] + torch.randn(600, 5, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2, 3, 4, 5])
    exact = rep.snap_to_centres(z, labels, 0.0, generator=gen)
    assert len(torch.unique(exact, dim=0)) == 6
    ratios = [
        rep.kmeans_nulls(rep.snap_to_centres(z, labels, s, generator=gen), 6, generator=gen)["ratio"]
        for s in (0.01, 0.5)
    ]
    assert ratios[0] < 0.05 < ratios[1]
    with pytest.raises(ValueError, match="noise"):
        rep.snap_to_centres(z, labels, -1.0)
    with pytest.raises(ValueError, match="labels"):
        rep.snap_to_centres(z, labels[:10], 0.1)


def test_live_subspace_in_the_standard_and_a_thomson_basis():
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(500, 4, generator=gen, dtype=torch.float64)
    z[:, 1] = z[:, 1] * 0.1 - 5.0  # stuck
    live, b = rep.live_subspace(z)
    assert b is None and torch.equal(live, z[:, [0, 2, 3]])
    basis = srm.thomson_basis(8, 4, seed=0)
    z2 = torch.randn(500, 4, generator=gen, dtype=torch.float64) + 6.0 * basis[0].double()  # pushes some rows one-sided
    d = rep.unit_diagnostics(z2, basis)
    zl, bl = rep.live_subspace(z2, basis)
    assert bl.shape[0] == d.n_live and zl.shape[1] == bl.shape[1] <= 4
    # the live rows' coordinates of the latent are unchanged by the change of coordinates
    assert torch.allclose(zl @ bl.T, z2 @ srm.unit_basis(basis, 4)[d.live].T, atol=1e-9)
    with pytest.raises(ValueError, match="live units"):
        rep.live_subspace(torch.ones(10, 3, dtype=torch.float64) + 0.01 * torch.rand(10, 3, dtype=torch.float64))


def test_label_permutation_test_fires_on_labels_and_not_on_shuffled_labels():
    gen = torch.Generator().manual_seed(6)
    y = torch.arange(400) % 4
    x = y.double() + 0.3 * torch.randn(400, generator=gen, dtype=torch.float64)

    def stat(labels):  # between-class share of the variance of x
        means = torch.stack([x[labels == c].mean() for c in range(4)])
        return float(means.var())

    real = rep.label_permutation_test(stat, y, n_permutations=100, seed=0)
    assert real["p"] < 0.02 and real["z"] > 5
    shuffled = y[torch.randperm(400, generator=gen)]
    null = rep.label_permutation_test(stat, shuffled, n_permutations=100, seed=0)
    assert null["p"] > 0.02
    with pytest.raises(TypeError, match="callable"):
        rep.label_permutation_test(3, y)
    with pytest.raises(TypeError, match="labels"):
        rep.label_permutation_test(stat, y.double())


def test_stratified_difference_test_permutes_within_strata():
    gen = torch.Generator().manual_seed(7)
    # strata with very different levels; within each, a is higher than b by 0.5
    a = [(torch.randn(8, generator=gen, dtype=torch.float64) * 0.1 + 10 * i + 0.5).tolist() for i in range(5)]
    b = [(torch.randn(16, generator=gen, dtype=torch.float64) * 0.1 + 10 * i).tolist() for i in range(5)]
    d, p = rep.stratified_difference_test(a, b, alternative="greater", n_permutations=500)
    assert d == pytest.approx(0.5, abs=0.1) and p < 0.01
    # the pooled test drowns it in the spread between strata
    _, p_pooled = rep.mean_difference_test(sum(a, []), sum(b, []), alternative="greater", n_permutations=500)
    assert p_pooled > 0.05
    # no difference within strata: not significant
    same = [(torch.randn(8, generator=gen, dtype=torch.float64) * 0.1 + 10 * i).tolist() for i in range(5)]
    assert rep.stratified_difference_test(same, b, alternative="greater", n_permutations=500)[1] > 0.05
    with pytest.raises(ValueError, match="strata"):
        rep.stratified_difference_test(a, b[:2])
    with pytest.raises(TypeError, match="lists"):
        rep.stratified_difference_test(torch.zeros(3), b)


def test_harmonic_nulls_separates_an_axis_aligned_cloud_from_its_nulls():
    gen = torch.Generator().manual_seed(0)
    n = 8
    basis = torch.eye(n, dtype=torch.float64)
    # each sample near one signed basis vector: h4 beyond every rotated copy and beyond the moment-matched Gaussian
    axes = torch.zeros(2000, n, dtype=torch.float64)
    axes[torch.arange(2000), torch.randint(0, n, (2000,), generator=gen)] = (
        torch.randn(2000, generator=gen).double().sign()
    )
    axes += 0.05 * torch.randn(2000, n, generator=gen, dtype=torch.float64)
    own, rotated, gauss = rep.harmonic_nulls(axes, basis, 0.9, 32, n_rotated=8, n_gauss=3, generator=gen)
    assert len(rotated) == 8 and len(gauss) == 3
    assert own > max(rotated) + 0.2 and own > max(gauss) + 0.2
    # the null itself: an isotropic Gaussian cloud sits inside the spread of its rotated copies
    cloud = torch.randn(2000, n, generator=gen, dtype=torch.float64)
    own0, rotated0, _ = rep.harmonic_nulls(cloud, basis, 0.9, 32, n_rotated=12, n_gauss=1, generator=gen)
    assert min(rotated0) - 0.05 < own0 < max(rotated0) + 0.05 and own0 < own - 0.2
    # determinism per generator, and bad input named
    a = rep.harmonic_nulls(cloud, basis, 0.9, 32, n_rotated=2, n_gauss=2, generator=torch.Generator().manual_seed(3))
    b = rep.harmonic_nulls(cloud, basis, 0.9, 32, n_rotated=2, n_gauss=2, generator=torch.Generator().manual_seed(3))
    assert a == b
    with pytest.raises(ValueError, match="n_rotated"):
        rep.harmonic_nulls(cloud, basis, 0.9, 32, n_rotated=0, n_gauss=1)
    with pytest.raises(TypeError, match="generator"):
        rep.harmonic_nulls(cloud, basis, 0.9, 32, n_rotated=1, n_gauss=1, generator=3)

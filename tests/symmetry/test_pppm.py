"""isodl.symmetry.pppm: the Privileged Plane Projective Method, its isotropic null and the density images."""

import math

import numpy as np
import pytest
import torch

from isodl import exercises
from isodl.core import data
from isodl.symmetry import checks, pppm, srm


def _literal_pppm(x, basis, eps, pairs="perm"):
    """Straight from the definition: Gram-Schmidt per plane, raw projections, keep by angle."""
    B = basis / basis.norm(dim=1, keepdim=True)
    out = []
    for i, j in srm.pair_indices(B.shape[0], pairs).tolist():
        e1 = B[i]
        w = B[j] - (B[j] @ e1) * e1
        if w.norm() < 1e-6:
            continue
        e2 = w / w.norm()
        for row in x:
            u, v = float(row @ e1), float(row @ e2)
            r = float(row.norm())
            if r > 0 and math.hypot(u, v) / r >= eps:
                out.append((u, v))
    return torch.tensor(out, dtype=torch.float64).reshape(-1, 2)


def test_matches_the_literal_definition_for_a_non_orthogonal_basis():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 4, generator=gen, dtype=torch.float64) * 3
    basis = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    for pairs in ("perm", "comb"):
        res = pppm.privileged_plane_projection(x, basis, 0.7, pairs)
        ref = _literal_pppm(x, basis, 0.7, pairs)
        assert len(res) == ref.shape[0] > 0
        torch.testing.assert_close(res.points, ref)


def test_raw_activations_keep_their_radius_and_angle_is_polar():
    x = torch.tensor([[3.0, 4.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    res = pppm.privileged_plane_projection(x, None, 0.9, "comb")
    # only the first sample is in a plane (the (0, 1) plane), at radius 5
    assert len(res) == 1 and res.pairs.tolist()[res.plane[0]] == [0, 1]
    assert float(res.radii[0]) == pytest.approx(5.0)
    assert float(res.angles[0]) == pytest.approx(math.atan2(4.0, 3.0))
    assert res.sample.tolist() == [0]


def test_perm_mode_pools_each_plane_twice_with_axes_swapped():
    x = data.isotropic_gaussian(300, 4, seed=1)
    res = pppm.privileged_plane_projection(x, None, 0.6, "perm")
    pts = {tuple(np.round(p, 10)) for p in res.points.tolist()}
    assert all((v, u) in pts for u, v in pts)


def test_antipodal_pairs_are_skipped():
    b = srm.thomson_basis(8, 4, seed=0)  # K = 2n: antipodal pairs
    res = pppm.privileged_plane_projection(data.isotropic_gaussian(100, 4, seed=0), b, 0.5)
    assert res.skipped.shape[0] == 8  # 4 antipodal pairs, both orders
    assert res.n_planes == 8 * 7 - 8


@pytest.mark.parametrize("n,eps", [(4, 0.85), (8, 0.8), (6, 0.5), (2, 0.9)])
def test_isotropic_count_matches_the_formula(n, eps):
    N = 40_000
    x = data.isotropic_gaussian(N, n, seed=3)
    res = pppm.privileged_plane_projection(x, None, eps, "comb")
    p = pppm.isotropic_keep_fraction(n, eps)
    expected = pppm.isotropic_expected_count(N, n, res.n_planes, eps)
    assert expected == pytest.approx(N * res.n_planes * (1 - eps**2) ** ((n - 2) / 2))
    # planes are correlated, so use a generous but finite bound: 4 binomial std per plane times the planes
    std = math.sqrt(N * p * (1 - p)) * res.n_planes
    assert abs(len(res) - expected) < 4 * std + 1
    assert abs(res.count_ratio - 1) < 0.05


def test_keep_fraction_edges():
    assert pppm.isotropic_keep_fraction(8, 0.0) == 1.0
    assert pppm.isotropic_keep_fraction(8, -0.5) == 1.0
    assert pppm.isotropic_keep_fraction(8, 1.0) == 0.0
    assert pppm.isotropic_keep_fraction(2, 0.99) == 1.0
    assert pppm.isotropic_keep_fraction(16, 0.85) == pytest.approx(0.2775**7)


def test_zero_rows_and_extreme_norms():
    x = torch.tensor([[0.0, 0.0, 0.0], [1e30, 0.0, 0.0], [1e-30, 1e-30, 0.0]], dtype=torch.float32)
    res = pppm.privileged_plane_projection(x, None, 0.5)
    assert torch.isfinite(res.points).all()
    assert 0 not in res.sample.tolist()  # the zero row is never kept for epsilon > 0
    assert 1 in res.sample.tolist() and 2 in res.sample.tolist()
    res0 = pppm.privileged_plane_projection(x, None, 0.0)
    assert 0 in res0.sample.tolist()  # ... and kept for epsilon <= 0, as SRM counts it


def test_bad_input_is_rejected_with_clear_errors():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="epsilon"):
        pppm.privileged_plane_projection(x, None, 1.5)
    with pytest.raises(ValueError, match="epsilon"):
        pppm.privileged_plane_projection(x, None, -1.01)
    with pytest.raises(ValueError, match="dimension mismatch"):
        pppm.privileged_plane_projection(x, torch.eye(4))
    with pytest.raises(ValueError, match="pairs"):
        pppm.privileged_plane_projection(x, None, 0.5, "all")
    with pytest.raises(ValueError, match="NaN"):
        pppm.privileged_plane_projection(torch.full((2, 3), float("nan")), None, 0.5)
    with pytest.raises(ValueError, match="n_dim"):
        pppm.isotropic_keep_fraction(1, 0.5)
    with pytest.raises(ValueError, match="points"):
        pppm.density_image(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="extent"):
        pppm.density_image(torch.zeros(5, 2), extent=0.0)
    with pytest.raises(ValueError, match="floor"):
        pppm.pppm_density(x, None, 0.5, floor=0.0)


def test_density_image_orientation_and_mass():
    pts = torch.tensor([[0.5, 0.5]] * 10 + [[-0.5, -0.5]] * 30, dtype=torch.float64)
    img, m = pppm.density_image(pts, 1.0, resolution=40, bandwidth=0.02)
    assert m == 1.0 and img.shape == (40, 40)
    assert float(img.sum()) == pytest.approx(1.0, abs=1e-9)
    # origin lower: the upper-right point is in the upper (high row) right (high column) quarter
    assert float(img[20:, 20:].sum()) == pytest.approx(0.25, abs=1e-6)
    assert float(img[:20, :20].sum()) == pytest.approx(0.75, abs=1e-6)
    assert float(img[20:, :20].sum()) == pytest.approx(0.0, abs=1e-9)
    # an asymmetric point: u > 0, v < 0 is in the lower right
    img2, _ = pppm.density_image(torch.tensor([[0.6, -0.6]], dtype=torch.float64), 1.0, resolution=40)
    assert float(img2[:20, 20:].sum()) == pytest.approx(1.0, abs=1e-9)


def test_density_kernel_width_scales_with_the_extent():
    pts = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    small, _ = pppm.density_image(pts, 1.0, resolution=101, bandwidth=0.05)
    large, _ = pppm.density_image(pts * 10, 10.0, resolution=101, bandwidth=0.05)
    torch.testing.assert_close(small, large)  # same picture in units of the extent


def test_volume_normalisation_is_flat_for_isotropic_data():
    x = data.isotropic_gaussian(20_000, 4, seed=5) * 3
    d = pppm.pppm_density(x, None, 0.8, n_reference=40_000, resolution=40, bandwidth=0.05, seed=1)
    assert d.normalised and d.reference is not None
    # where the reference has mass, data/reference is about 1
    mask = d.reference > 0.3 * d.reference.max()
    ratio = d.image[mask]
    assert 0.8 < float(ratio.median()) < 1.2
    raw = pppm.pppm_density(x, None, 0.8, normalise_volume=False, resolution=40)
    assert float(raw.image.max()) == pytest.approx(1.0)


def test_volume_normalisation_reveals_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0]], dtype=torch.float64)
    x = centres[torch.randint(0, 2, (3000,), generator=gen)] + 0.3 * torch.randn(
        3000, 4, generator=gen, dtype=torch.float64
    )
    d = pppm.pppm_density(x, None, 0.8)
    assert float(d.image.max()) > 5.0  # far denser than an isotropic cloud with the same radii
    # each point is near b_0 (or b_1), so 6 of the 12 ordered planes keep it: 0.5 / 0.36 = 1.39 x isotropic
    assert d.result.count_ratio == pytest.approx(0.5 / pppm.isotropic_keep_fraction(4, 0.8), rel=0.02)


def test_reference_cloud_keeps_radii_and_is_deterministic():
    x = data.isotropic_gaussian(500, 6, seed=0) * torch.linspace(1, 4, 500, dtype=torch.float64)[:, None]
    a = pppm.isotropic_reference_cloud(x, 2000, seed=3)
    b = pppm.isotropic_reference_cloud(x, 2000, seed=3)
    assert torch.equal(a, b)
    radii = set(np.round(x.norm(dim=1).numpy(), 8))
    assert set(np.round(a.norm(dim=1).numpy(), 8)) <= radii


def _pp_correct(z, i, j, epsilon):
    u, v = z[:, i], z[:, j]
    norms = torch.linalg.vector_norm(z, dim=1)
    frac = torch.where(
        norms > 0, torch.hypot(u, v) / torch.where(norms > 0, norms, torch.ones_like(norms)), torch.zeros_like(norms)
    )
    keep = frac >= epsilon
    return torch.stack([u[keep], v[keep]], dim=1)


def test_check_plane_points_passes_reference_and_fails_mistakes():
    pass

    assert exercises.CHECKS["plane_points"] is checks.check_plane_points
    assert checks.check_plane_points(_pp_correct, verbose=False)

    def stub(z, i, j, epsilon):
        raise NotImplementedError("Exercise: write your solution here, then run the check cell below.")

    def swapped(z, i, j, epsilon):
        return _pp_correct(z, i, j, epsilon)[:, [1, 0]]

    def normalised(z, i, j, epsilon):
        n = torch.linalg.vector_norm(z, dim=1, keepdim=True)
        return _pp_correct(z / torch.where(n > 0, n, torch.ones_like(n)), i, j, epsilon)

    def strict(z, i, j, epsilon):
        u, v = z[:, i], z[:, j]
        keep = torch.hypot(u, v) > epsilon * torch.linalg.vector_norm(z, dim=1)
        return torch.stack([u[keep], v[keep]], dim=1)

    def plane_only_norm(z, i, j, epsilon):  # compares with the in-plane length itself: keeps everything
        u, v = z[:, i], z[:, j]
        return torch.stack([u, v], dim=1)

    res = checks.check_plane_points(stub, verbose=False)
    assert not res and "not done yet" in res.message
    for wrong, hint in (
        (swapped, "first coordinate"),
        (normalised, "raw coordinates"),
        (strict, None),
        (plane_only_norm, None),
    ):
        res = checks.check_plane_points(wrong, verbose=False)
        assert not res, wrong.__name__
        if hint:
            assert hint in res.message, (wrong.__name__, res.message)
